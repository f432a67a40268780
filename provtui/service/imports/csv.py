"""HR CSV imports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput
from provtui.domain.hr_import import parse_csv
from provtui.domain.hr_mapping import DEFAULT_MAPPING, load_mapping
from provtui.domain.import_plan import plan_import
from provtui.domain.roles import Action
from provtui.model.schema import SOURCES, USERS

if TYPE_CHECKING:
    pass
from provtui.service.imports.common import ImportBase

DEFAULT_CSV_SOURCE = "csv"


class CsvImports(ImportBase):
    def import_csv(
        self,
        data: bytes,
        *,
        source: str | None,
        dry_run: bool,
        confirm: bool,
        full: bool = True,
        allow_empty: bool = False,
        strict: bool = False,
    ) -> dict[str, Any]:
        """Import an HR export.  Dry run: the plan only.  Held (exit 3) when it would deprovision too many;
        refused (ImportRefused, exit 2) when a full import yields no valid person (unless ``allow_empty``)
        or, ``strict``, when any row is rejected.  The dry run raises what the real run would."""
        self.access.authorise(None, Action.MANAGE_SOURCES)
        name = source or DEFAULT_CSV_SOURCE
        doc = self.store.get(SOURCES, name)
        if doc is None and source is not None:
            raise InvalidInput("--source", f"no source named {source!r} (add it: provtui source add-csv {source})")
        if doc is not None and doc["kind"] != "csv":
            raise InvalidInput("--source", f"{name} is a {doc['kind']} source, not a CSV one")
        mapping = load_mapping(doc["settings"]["mapping"]) if doc and doc["settings"].get("mapping") else DEFAULT_MAPPING
        parsed = parse_csv(data, mapping)
        plan = plan_import(parsed, self.store.all(USERS), source=name, full=full, priorities=self.priorities(), allow_empty=allow_empty)
        result = {**self._result(plan), "ignored_columns": list(parsed.ignored_columns), "unmapped_columns": list(parsed.unmapped_columns)}
        if dry_run:
            result.update(dry_run=True, actions=plan.details())
        started = utc_now_iso()
        self._gate(
            plan,
            result,
            dry_run=dry_run,
            confirm=confirm,
            strict=strict,
            record=lambda outcome, message, details: self._record_attempt(name, outcome, message, started, details),
        )
        if dry_run:
            return result
        self.apply(plan, source_kind="csv", attributes=sorted(parsed.columns), create_source=doc is None)
        return result
