"""What every import shares: sources of truth and their priorities, the safeguard and the gate every
run passes (the real run and its dry run alike), and applying a plan as one change."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import HeldForConfirmation, ImportRefused, InvalidInput
from provtui.domain.import_actions import ImportPlan, deprovision_ratio
from provtui.domain.lifecycle import State
from provtui.domain.roles import Action
from provtui.ids import new_id
from provtui.model.schema import CONFIG, SOURCES, USERS, stored
from provtui.service.ca_bundles import shown_settings
from provtui.service.part import Part
from provtui.service.settings import safeguard_threshold

if TYPE_CHECKING:
    from provtui.model.directory import Directory
    from provtui.service.change import Access, Change, Changes
    from provtui.service.reads import Reads


_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_source_name(name: str) -> str:
    if not _SOURCE_NAME.match(name or "") or name == "provtui":
        raise InvalidInput("NAME", f"{name!r} is not a source name (letters, digits and . _ -; not 'provtui')")
    return name


class ImportBase(Part):
    def __init__(
        self, changes: Changes, directory: Directory, access: Access, *, reads: Reads, secrets: Callable[[str], str | None] | None = None
    ):
        super().__init__(changes, directory, access)
        self.reads = reads
        self.secrets = secrets  # the server's secrets, for an app whose token is one of them

    def add_source(self, name: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
        name = validate_source_name(name)
        with self.changes(Action.MANAGE_SOURCES) as tx:
            if tx.get(SOURCES, name) is not None:
                raise InvalidInput("NAME", f"a source named {name!r} already exists")
            source = {"name": name, "kind": kind, "settings": settings, "created": utc_now_iso(), "attributes": []}
            tx.put(SOURCES, name, source)
            tx.audit("source.add", name, None, {"kind": kind, "settings": shown_settings(settings)})
        return {**source, "settings": shown_settings(settings)}

    def list_sources(self) -> list[dict[str, Any]]:
        self.access.read()
        return [self._source_view(s) for _, s in sorted(self.store.all(SOURCES).items())]

    @staticmethod
    def _source_view(source: dict[str, Any]) -> dict[str, Any]:
        users = source.get("last_run", {}).get("summary") if source.get("last_run") else None
        view = {
            "name": source["name"],
            "kind": source["kind"],
            "settings": shown_settings(source["settings"]),
            "last_run": source.get("last_run", {}).get("time"),
            "last_summary": users,
        }
        if source["kind"] == "ldap":
            attempt = source.get("last_attempt") or {}
            state = source.get("ldap") or {}
            view.update(
                interval=source["settings"].get("interval"),
                last_outcome=attempt.get("outcome"),
                last_attempt=attempt.get("time"),
                last_message=attempt.get("message"),
                last_full=state.get("last_full"),
                last_mode=state.get("last_mode"),
            )
            if source["settings"].get("live") or source.get("live_state"):
                live = source.get("live_state") or {}
                view.update(
                    live=bool(source["settings"].get("live")),
                    live_state=(live.get("state") or "not started") if source["settings"].get("live") else "off",
                    live_since=live.get("since"),
                    live_lag_ms=live.get("lag_ms"),
                    live_applied=live.get("applied"),
                    live_message=live.get("message"),
                )
        return view

    def priorities(self) -> dict[str, list[str]]:
        entry = self.store.get(CONFIG, "source.priorities")
        return entry["value"] if entry else {}

    def set_priority(self, attribute: str, sources: list[str]) -> dict[str, list[str]]:
        """Which sources win an attribute several supply, highest first."""
        for name in sources:
            if name != "provtui" and self.store.get(SOURCES, name) is None:
                raise InvalidInput("SOURCES", f"no source named {name!r}")
        with self.changes(Action.MANAGE_SOURCES) as tx:
            entry = tx.get(CONFIG, "source.priorities") or {"key": "source.priorities", "value": {}}
            before = dict(entry["value"])
            value = {**before, attribute: sources}
            tx.put(CONFIG, "source.priorities", {"key": "source.priorities", "value": value})
            tx.audit("source.priority", attribute, before.get(attribute), sources)
        return value

    def _source(self, name: str, kind: str) -> dict[str, Any]:
        doc = self.store.get(SOURCES, name)
        if doc is None:
            raise InvalidInput("NAME", f"no source named {name!r} (add it: provtui source add-{kind} {name} ...)")
        if doc["kind"] != kind:
            raise InvalidInput("NAME", f"{name} is a {doc['kind']} source, not an {kind.upper()} one")
        return doc

    def _record_attempt(self, name: str, outcome: str, message: str, started: str, details: dict[str, Any] | None = None) -> None:
        """A run that did not apply: audited, and recorded on the source when it exists (for the
        schedule and `source list`; the CSV source made on first use is not made by a refusal)."""
        with self.changes(Action.MANAGE_SOURCES) as tx:
            source = tx.get(SOURCES, name)
            if source is not None:
                tx.put(
                    SOURCES,
                    name,
                    {**source, "last_attempt": {"time": utc_now_iso(), "started": started, "outcome": outcome, "message": message}},
                )
            tx.audit(f"import.{outcome}", name, None, {"message": message, **(details or {})})

    def threshold(self) -> float:
        return safeguard_threshold(self.store)

    def _gate(
        self,
        plan: ImportPlan,
        result: dict[str, Any],
        *,
        dry_run: bool,
        confirm: bool,
        strict: bool,
        record: Callable[[str, str, dict[str, Any]], None],
    ) -> None:
        """Whether the run may apply, for the real run and its dry run alike: raise what stops it.

        1. the plan is refused (a full run yielding no valid person, without allow_empty):
           ImportRefused, whatever ``confirm`` says;
        2. ``strict`` and a row was rejected: ImportRefused;
        3. the safeguard: HeldForConfirmation unless ``confirm``.
        A refusal of a real run is recorded (``record(outcome, message, audit details)``); a dry
        run records nothing.
        """
        if plan.refused:
            would = plan.would_deactivate
            message = (
                f"source {plan.source}: {plan.refused}"
                + (f"; it would have deactivated {len(would)} {'user' if len(would) == 1 else 'users'}" if would else "")
                + (
                    "; if the source really has nobody left, run it again with --allow-empty "
                    "(a mass deactivation is still held for --confirm)"
                )
            )
            details = {**result, "refused": True, "reason": "empty", "would_deactivate": would}
            if not dry_run:
                record(
                    "refused",
                    message,
                    {"reason": "empty", "rows": plan.rows, "rejected": len(plan.rejected), "would_deactivate": len(would)},
                )
            raise ImportRefused(message, details)
        if strict and plan.rejected:
            count = len(plan.rejected)
            message = (
                f"source {plan.source}: {count} {'row was' if count == 1 else 'rows were'} rejected "
                f"and --strict applies nothing then; nothing was changed"
            )
            if not dry_run:
                record("refused", message, {"reason": "strict", "rows": plan.rows, "rejected": count})
            raise ImportRefused(message, {**result, "refused": True, "reason": "strict"})
        self._check_safeguard(plan, confirm, result)

    def _check_safeguard(self, plan: ImportPlan, confirm: bool, result: dict[str, Any]) -> None:
        active = sum(1 for u in self.store.all(USERS).values() if u["state"] == State.ACTIVE)
        ratio = deprovision_ratio(plan, active)
        if ratio > self.threshold() and not confirm:
            raise HeldForConfirmation(
                f"held: this import would deactivate {plan.deactivations} of {active} active users "
                f"({ratio:.0%}, above the {self.threshold():.0%} safeguard); run it again with --confirm to apply",
                {**result, "would_deactivate": [a.login for a in plan.actions if "deactivated" in a.outcomes], "active": active},
            )
        if ratio > self.threshold():  # --confirm past the safeguard: the role `held approve` needs
            self.access.authorise(None, Action.CONFIRM)

    @staticmethod
    def _result(plan: ImportPlan) -> dict[str, Any]:
        return {"source": plan.source, **plan.summary()}

    def apply(
        self,
        plan: ImportPlan,
        *,
        source_kind: str,
        attributes: list[str],
        create_source: bool = False,
        extra: Callable[[Change], dict[str, Any]] | None = None,
        source_updates: dict[str, Any] | None = None,
        event: str = "import.run",
    ) -> None:
        """Every action of the plan in one transaction, each user change audited and its apps queued.

        ``extra(tx)``: more of the same change, after the users (an LDAP import's groups); what it
        returns goes into the run's audit event.  ``source_updates``: fields to set on the source.
        ``event``: the run's audit event; a run's (``import.run``) is the source's ``last_run`` (the schedule's
        clock), a live source's change (``import.live``) is not.
        """
        now = utc_now_iso()
        with self.changes(Action.MANAGE_SOURCES) as tx:
            source = tx.get(SOURCES, plan.source)
            if source is None:
                if not create_source:
                    raise InvalidInput("--source", f"no source named {plan.source!r}")
                source = {"name": plan.source, "kind": source_kind, "settings": {}, "created": now}
            self.apply_actions(tx, plan, now)
            more = extra(tx) if extra is not None else {}
            summary = {k: v for k, v in plan.summary().items() if k != "rejected"}
            source = {**source, "attributes": sorted(set(source.get("attributes", [])) | set(attributes)), **(source_updates or {})}
            if event == "import.run":
                source["last_run"] = {"time": now, "summary": {**summary, **more}}
            tx.put(SOURCES, plan.source, source)
            tx.audit(event, plan.source, None, {**self._result(plan), **more})

    def apply_actions(self, tx: Change, plan: ImportPlan, now: str) -> list[str]:
        """The plan's user actions in ``tx``, each audited and its apps queued; the user id of each, in order."""
        ids = []
        for action in plan.actions:
            user_id = action.user_id
            if user_id is None:
                user_id = new_id()
                doc = {
                    "id": user_id,
                    "login": action.login,
                    "state": action.state_after,
                    "source": plan.source,
                    "profile": action.profile,
                    "created": now,
                    "state_changed": now,
                }
                before = None
            else:
                old = stored(tx, USERS, user_id)
                doc = {**old, "login": action.login, "profile": action.profile, "state": action.state_after}
                if action.state_after != old["state"]:
                    doc["state_changed"] = now
                if action.adopt:
                    doc["source"] = plan.source
                before = {"state": old["state"], **{k: b for k, (b, _) in action.changes.items()}}
            if action.attribute_sources is not None:
                doc["attribute_sources"] = action.attribute_sources
            tx.put(USERS, user_id, doc)
            after = {
                "state": action.state_after,
                **({k: a for k, (_, a) in action.changes.items()} if before else {"profile": action.profile}),
            }
            tx.audit("user.import", action.login, before, {**after, "source": plan.source, "lifecycle": list(action.lifecycle)})
            tx.note_user_change(user_id, attributes=set(action.changes) if before else None)
            ids.append(user_id)
        return ids
