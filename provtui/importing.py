"""Imports through the service: sources of truth, dry runs, the safeguard, one transaction.

The parsing and planning are pure (provtui.domain.hr_import); this module is
the part of the service that reads the store to plan, holds a mass
deprovisioning for confirmation, and applies a plan as one change, audited
and followed by the provisioning it implies.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.directory import CONFIG, SOURCES, USERS
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.hr_import import DEFAULT_MAPPING, ImportPlan, deprovision_ratio, load_mapping, parse_csv, plan_import
from provtui.domain.lifecycle import State
from provtui.domain.roles import Action
from provtui.ids import new_id

if TYPE_CHECKING:
    from provtui.service import Service

DEFAULT_CSV_SOURCE = "csv"
DEFAULT_THRESHOLD = 0.2  # Okta's: an import that deprovisions more than 20% of the org is held
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_source_name(name: str) -> str:
    if not _SOURCE_NAME.match(name or "") or name == "provtui":
        raise InvalidInput("NAME", f"{name!r} is not a source name (letters, digits and . _ -; not 'provtui')")
    return name


class Importer:
    def __init__(self, service: Service):
        self.service = service
        self.store = service.store

    # -- sources -----------------------------------------------------------------------

    def add_source(self, name: str, kind: str, settings: dict[str, Any]) -> dict:
        name = validate_source_name(name)
        with self.service._change(Action.MANAGE_SOURCES) as tx:
            if tx.get(SOURCES, name) is not None:
                raise InvalidInput("NAME", f"a source named {name!r} already exists")
            source = {"name": name, "kind": kind, "settings": settings, "created": utc_now_iso(), "attributes": []}
            tx.put(SOURCES, name, source)
            self.service._audit(tx, "source.add", name, None, {"kind": kind, "settings": settings})
        return source

    def list_sources(self) -> list[dict]:
        self.service._read()
        return [self._source_view(s) for _, s in sorted(self.store.all(SOURCES).items())]

    @staticmethod
    def _source_view(source: dict) -> dict:
        users = source.get("last_run", {}).get("summary") if source.get("last_run") else None
        return {"name": source["name"], "kind": source["kind"], "settings": source["settings"],
                "last_run": source.get("last_run", {}).get("time"), "last_summary": users}

    def priorities(self) -> dict[str, list[str]]:
        entry = self.store.get(CONFIG, "source.priorities")
        return entry["value"] if entry else {}

    def set_priority(self, attribute: str, sources: list[str]) -> dict[str, list[str]]:
        """Which sources win an attribute several supply, highest first."""
        for name in sources:
            if name != "provtui" and self.store.get(SOURCES, name) is None:
                raise InvalidInput("SOURCES", f"no source named {name!r}")
        with self.service._change(Action.MANAGE_SOURCES) as tx:
            entry = tx.get(CONFIG, "source.priorities") or {"key": "source.priorities", "value": {}}
            before = dict(entry["value"])
            value = {**before, attribute: sources}
            tx.put(CONFIG, "source.priorities", {"key": "source.priorities", "value": value})
            self.service._audit(tx, "source.priority", attribute, before.get(attribute), sources)
        return value

    # -- CSV ---------------------------------------------------------------------------

    def import_csv(self, data: bytes, *, source: str | None, dry_run: bool, confirm: bool, full: bool = True) -> dict:
        """Import an HR export.  Dry run: the plan only.  Held (exit 3) when it would deprovision too many."""
        self.service._authorise(None, Action.MANAGE_SOURCES)
        name = source or DEFAULT_CSV_SOURCE
        doc = self.store.get(SOURCES, name)
        if doc is None and source is not None:
            raise InvalidInput("--source", f"no source named {source!r} (add it: provtui source add-csv {source})")
        if doc is not None and doc["kind"] != "csv":
            raise InvalidInput("--source", f"{name} is a {doc['kind']} source, not a CSV one")
        mapping = load_mapping(doc["settings"]["mapping"]) if doc and doc["settings"].get("mapping") else DEFAULT_MAPPING
        parsed = parse_csv(data, mapping)
        plan = plan_import(parsed, self.store.all(USERS), source=name, full=full, priorities=self.priorities())
        result = self._result(plan)
        if dry_run:
            return {**result, "dry_run": True, "actions": plan.details()}
        self._check_safeguard(plan, confirm, result)
        self.apply(plan, source_kind="csv", attributes=sorted(parsed.columns), create_source=doc is None)
        return result

    # -- shared --------------------------------------------------------------------------

    def threshold(self) -> float:
        entry = self.store.get(CONFIG, "safeguard.threshold")
        return float(entry["value"]) if entry else DEFAULT_THRESHOLD

    def _check_safeguard(self, plan: ImportPlan, confirm: bool, result: dict) -> None:
        active = sum(1 for u in self.store.all(USERS).values() if u["state"] == State.ACTIVE)
        ratio = deprovision_ratio(plan, active)
        if ratio > self.threshold() and not confirm:
            raise HeldForConfirmation(
                f"held: this import would deactivate {plan.deactivations} of {active} active users "
                f"({ratio:.0%}, above the {self.threshold():.0%} safeguard); run it again with --confirm to apply",
                {**result, "would_deactivate": [a.login for a in plan.actions if "deactivated" in a.outcomes], "active": active})

    @staticmethod
    def _result(plan: ImportPlan) -> dict:
        return {"source": plan.source, **plan.summary()}

    def apply(self, plan: ImportPlan, *, source_kind: str, attributes: list[str], create_source: bool = False) -> None:
        """Every action of the plan in one transaction, each user change audited and its apps queued."""
        service = self.service
        now = utc_now_iso()
        with service._change(Action.MANAGE_SOURCES) as tx:
            source = tx.get(SOURCES, plan.source)
            if source is None:
                if not create_source:
                    raise InvalidInput("--source", f"no source named {plan.source!r}")
                source = {"name": plan.source, "kind": source_kind, "settings": {}, "created": now}
            for action in plan.actions:
                user_id = action.user_id
                if user_id is None:
                    user_id = new_id()
                    doc = {"id": user_id, "login": action.login, "state": action.state_after, "source": plan.source,
                           "profile": action.profile, "created": now, "state_changed": now}
                    before = None
                else:
                    old = tx.get(USERS, user_id)
                    doc = {**old, "login": action.login, "profile": action.profile, "state": action.state_after}
                    if action.state_after != old["state"]:
                        doc["state_changed"] = now
                    if action.adopt:
                        doc["source"] = plan.source
                    before = {"state": old["state"], **{k: b for k, (b, _) in action.changes.items()}}
                if action.attribute_sources is not None:
                    doc["attribute_sources"] = action.attribute_sources
                tx.put(USERS, user_id, doc)
                after = {"state": action.state_after, **({k: a for k, (_, a) in action.changes.items()} if before else {"profile": action.profile})}
                service._audit(tx, "user.import", action.login, before, {**after, "source": plan.source, "lifecycle": list(action.lifecycle)})
                service._after_user_change(tx, user_id, set(action.changes) if before else None)
            source = {**source, "attributes": sorted(set(source.get("attributes", [])) | set(attributes)),
                      "last_run": {"time": now, "summary": {k: v for k, v in plan.summary().items() if k != "rejected"}}}
            tx.put(SOURCES, plan.source, source)
            service._audit(tx, "import.run", plan.source, None, self._result(plan))
