"""Live LDAP / AD sources (#21): each change a directory reports, applied as it arrives, as a run would apply it.

A live session (provtui.engine.live, in the worker and the server) hands the service what the directory said
changed up to a point it named (a :class:`~provtui.connectors.ldap.syncrepl.LiveBatch`: OpenLDAP's syncrepl
cookie, AD's DirSync cookie).  ``apply_live`` plans it with the same ``ldap_rows`` and ``plan_import`` as an
incremental run — mastering, priorities, renames by the entry's id — plus the entries the directory says are gone
(deleted, moved out of the base or the filter, or not presented when a present phase ends), and applies the plan,
the source's DN index and the cookie in one transaction: a change is applied once, and a session that starts
again resumes from the cookie of the last change applied.  Groups are read whole when one changes, or when a
change brings an entry under a new DN (a new member's group may have been changed first).

Safety, as for runs:
- a first read (or a present phase) that presents no valid person deprovisions no one: ImportRefused;
- the safeguard: deprovisions over ``live.safeguard.window`` seconds (default an hour) past the threshold
  (``safeguard.threshold``) of the people the source supplies are held: HeldForConfirmation, nothing of the batch
  applied, the cookie where it was; the session tries again from it every while, so an admin either repairs the
  directory (the retry sees people back) or applies the run with ``provtui import ldap NAME --full --confirm``
  (the retry then has nobody left to deprovision);
- a directory that cannot be reached changes nothing (the session reconnects).

``poll_live`` is the fallback for a directory without these controls: an incremental read of what changed since
the last run's mark, and the incremental run when anything did.  The session's state (live, catching up,
reconnecting, held, failed) and lag are kept on the source (``live_state``) for the dashboard and `source status`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now, utc_now_iso
from provtui.domain.errors import HeldForConfirmation, ImportRefused
from provtui.domain.import_plan import plan_import
from provtui.domain.roles import Action
from provtui.domain.users import normalise_login
from provtui.model.schema import SOURCE_ENTRIES, SOURCES, USERS
from provtui.service.imports.groups import group_counts
from provtui.service.imports.ldap import LdapImports, _accepted_logins, ldap_rows
from provtui.service.imports.ldap_sources import ldap_settings
from provtui.service.settings import setting

if TYPE_CHECKING:
    from provtui.connectors.ldap import LdapSettings, LdapUser
    from provtui.connectors.ldap.syncrepl import LiveBatch
    from provtui.service.change import Change

LIVE_STATES = ("live", "catching up", "reconnecting", "held", "failed", "stopped")
DEFAULT_WINDOW = 3600


class LiveImports(LdapImports):
    def live_sources(self) -> list[str]:
        """The LDAP sources set ``--live``, by name (a worker keeps a session to each)."""
        return sorted(name for name, doc in self.store.all(SOURCES).items() if doc["kind"] == "ldap" and doc["settings"].get("live"))

    def live_settings(self, name: str) -> tuple[LdapSettings, dict[str, str]]:
        """What a session to this live source connects with, and the cookie of each stream (users, groups)."""
        self.access.authorise(None, Action.MANAGE_SOURCES)
        doc = self._source(name, "ldap")
        return ldap_settings(doc["settings"], self.secrets), dict((doc.get("live_state") or {}).get("cookies") or {})

    def apply_live(self, name: str, batch: LiveBatch) -> dict[str, Any]:
        """Apply what the directory reported (see the module docstring); the result counts what was done."""
        from provtui.connectors.ldap import read_groups
        from provtui.connectors.ldap.source import to_user

        self.access.authorise(None, Action.MANAGE_SOURCES)
        doc = self._source(name, "ldap")
        settings = ldap_settings(doc["settings"], self.secrets)
        at = utc_now()
        stored = self._stored_entries(name)
        identities = {entry["uuid"].lower(): entry["login"] for entry in stored.values() if entry.get("uuid")}
        attribute_map = settings.effective_attribute_map
        people = batch.stream != "groups"
        users = [to_user(dn, raw, settings, attribute_map) for dn, raw in batch.changed] if people else []
        index = self._entry_index(name, users, full=False, stored=stored)
        for user in users:  # a manager's DN is a login when the manager is this source's (as a run resolves it)
            login = index.get(user.manager_dn) if user.manager_dn else None
            if login:
                user.profile["manager"] = login
        changed_ids = {user.uuid.lower() for user in users if user.uuid}
        gone = set(batch.deleted) if people else set()
        if batch.present_done and people:
            gone |= set(identities) - batch.presented
        gone -= changed_ids
        gone_logins = {identities[g] for g in gone if g in identities}
        parsed, dns = ldap_rows(users, settings, at)
        plan = plan_import(
            parsed,
            self._people_named(parsed, gone_logins, identities),
            source=name,
            priorities=self.priorities(),
            identities=identities,
            gone=gone_logins,
        )
        result: dict[str, Any] = {**self._ldap_result(plan, dns, False), "mode": "live", "stream": batch.stream}
        state = doc.get("live_state") or {}
        started = utc_now_iso()
        if batch.present_done and people and plan.people == 0 and plan.deactivations:
            message = (
                f"source {name}: the directory presented no valid person (the live session's read of everyone, or of who is "
                f"still there); it would have deactivated {plan.deactivations}: nothing was changed"
            )
            if state.get("state") != "failed":
                self._record_attempt(name, "refused", message, started, {"reason": "empty", "mode": "live"})
            raise ImportRefused(message, {**result, "refused": True, "reason": "empty"})
        since = self._window_start(at)
        recent = [t for t in state.get("deprovisions") or () if datetime.fromisoformat(t) >= since]
        # deprovisioned and gone from the index: still counted as there
        removed = [t for t in state.get("removed") or () if datetime.fromisoformat(t) >= since]
        population = max(1, len(identities) + len(removed))
        if plan.deactivations and len(recent) + plan.deactivations > self.threshold() * population:
            message = (
                f"held: the live session of {name} would deactivate {plan.deactivations} more (with {len(recent)} in the "
                f"safeguard's window: over {self.threshold():.0%} of the {population} people it supplies); nothing of it "
                f"was applied. Repair the directory, or apply it: provtui import ldap {name} --full --confirm"
            )
            if state.get("state") != "held":
                self._record_attempt(name, "held", message, started, {"mode": "live", "would_deactivate": plan.would_deactivate})
            raise HeldForConfirmation(message, {**result, "would_deactivate": plan.would_deactivate})
        new_dns = any(user.login and f"{name}|{user.dn}" not in stored for user in users)
        accepted = _accepted_logins(parsed, plan, lambda login: bool(self.store.lookup(USERS, "login", login)))
        live_state = {
            **state,
            "cookies": {**(state.get("cookies") or {}), batch.stream: batch.cookie},
            "state": "catching up" if batch.refreshing else "live",
            "applied": at.isoformat(),
            "lag_ms": round(max(0.0, at.timestamp() - batch.received) * 1000, 1) if batch.received else None,
            "deprovisions": [*recent, *[at.isoformat()] * plan.deactivations],
            "removed": [*removed, *[at.isoformat()] * len(gone_logins)],
            "message": None,
        }

        def extra(tx: Change) -> dict[str, Any]:
            self._write_live_entries(tx, name, users, gone, stored, at)
            if not people or new_dns or batch.groups_changed:
                # the source's entries after the batch, as a full run's index would hold them
                members = self._entry_index(name, users, full=False, stored=stored, gone=gone)
                ops = self._plan_groups(tx, name, read_groups(settings), members, accepted)
                result["groups"] = self._apply_groups(tx, name, ops)
            else:
                result["groups"] = group_counts([])
            return {"groups": result["groups"], "mode": "live", "stream": batch.stream}

        self.apply(
            plan,
            source_kind="ldap",
            attributes=sorted(attribute_map),
            extra=extra,
            source_updates={"live_state": live_state},
            event="import.live",
        )
        return result

    def poll_live(self, name: str) -> dict[str, Any] | None:
        """The fallback of a directory without live controls: the incremental run, when its read finds a change
        since the last run's mark (None when nothing changed: nothing written, not even an audit event)."""
        from provtui.connectors.ldap import LdapError, read_users
        from provtui.domain.errors import SourceFailed

        self.access.authorise(None, Action.MANAGE_SOURCES)
        doc = self._source(name, "ldap")
        mark = (doc.get("ldap") or {}).get("mark")
        if mark is not None:
            try:
                changed, _ = read_users(ldap_settings(doc["settings"], self.secrets), changed_since=mark)
            except LdapError as error:
                raise SourceFailed(f"source {name}: {error.message}", retryable=error.retryable) from None
            if not changed:
                return None
        return self.import_ldap(name, full=None if mark is None else False)

    def record_live_state(self, name: str, state: str, message: str | None = None) -> None:
        """A session's new state (it connected, caught up, lost the directory...): kept on the source and, when it
        changes, audited (``source.live``); the lag stays the last applied change's."""
        assert state in LIVE_STATES, state
        with self.changes(Action.MANAGE_SOURCES) as tx:
            doc = tx.get(SOURCES, name)
            if doc is None:
                return
            before = doc.get("live_state") or {}
            if before.get("state") == state and before.get("message") == message:
                return
            tx.put(SOURCES, name, {**doc, "live_state": {**before, "state": state, "since": utc_now_iso(), "message": message}})
            tx.audit("source.live", name, {"state": before.get("state")}, {"state": state, "message": message})

    def _window_start(self, now: datetime) -> datetime:
        """When the safeguard's window (``live.safeguard.window`` seconds) began."""
        return now - timedelta(seconds=setting(self.store, "live.safeguard.window", DEFAULT_WINDOW))

    def _people_named(self, parsed: Any, gone: set[str], identities: dict[str, str]) -> list[dict[str, Any]]:
        """The users a batch can touch: those its rows' logins name, and this source's by the entries' ids (a
        rename) or gone — looked up, not the whole directory read."""
        logins = {row.login for row in parsed.rows} | gone
        logins |= {identities[row.external_id.lower()] for row in parsed.rows if row.external_id and row.external_id.lower() in identities}
        found: dict[str, dict[str, Any]] = {}
        for login in logins:
            for user_id in self.store.lookup(USERS, "login", normalise_login(login)):
                user = self.store.get(USERS, user_id)
                if user is not None:
                    found[user_id] = user
        return list(found.values())

    def _write_live_entries(
        self, tx: Change, source: str, users: list[LdapUser], gone: set[str], stored: dict[str, dict[str, Any]], now: datetime
    ) -> None:
        """The DN index after a batch: its entries written (an old DN of a renamed one dropped), the gone dropped."""
        self._write_entries(tx, source, users, full=False, now=now)
        for key, entry in stored.items():
            if (entry.get("uuid") or "").lower() in gone:
                tx.delete(SOURCE_ENTRIES, key)
