"""LDAP / Active Directory sources: full and incremental runs, their schedule, the DN index of member DNs."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from provtui.clock import parse_iso, utc_now, utc_now_iso
from provtui.domain.errors import HeldForConfirmation, ImportRefused, InvalidInput, ProvtuiError, SourceFailed
from provtui.domain.hr_import import MAX_VALUE_LENGTH
from provtui.domain.import_actions import ImportPlan
from provtui.domain.import_plan import plan_import
from provtui.domain.import_rows import Intent, ParsedFile, Rejection, Row
from provtui.domain.roles import Action
from provtui.domain.users import EMAIL_PATTERN, normalise_login, validate_login
from provtui.model.schema import SOURCE_ENTRIES, SOURCES, USERS
from provtui.service.imports.groups import DnIndex, group_counts
from provtui.service.imports.ldap_sources import LdapSources, ldap_settings

if TYPE_CHECKING:
    from provtui.connectors.ldap import LdapSettings, LdapUser
    from provtui.service.change import Change

FULL_EVERY_HOURS = 24  # an LDAP source's incremental runs fall back to a full one at least this often
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LDAP_REASONS = {
    "active in HR": "enabled in the directory",
    "terminated in HR": "disabled or expired in the directory",
    "missing from the file": "missing from the directory",
}


def ldap_rows(users: list[LdapUser], settings: LdapSettings, now: datetime | None = None) -> tuple[ParsedFile, dict[int, str]]:
    """The entries as a ParsedFile for ``plan_import``, checked as ``parse_csv`` checks cells; and line -> DN.
    ``now`` decides which accounts have expired (default: the clock's now).

    An entry's "line" is its position in the read (1-based); its "column" the LDAP attribute at fault.
    """
    from provtui.connectors.ldap import USER_ACCOUNT_CONTROL

    attribute_map = settings.effective_attribute_map
    keys = tuple(attribute_map)
    columns = {key: tuple(names) for key, names in attribute_map.items()}
    login_attribute = columns["login"][0]
    status_column = USER_ACCOUNT_CONTROL if settings.flavor == "ad" else None
    rows: list[Row] = []
    now = now or utc_now()
    rejections: list[Rejection] = []
    dns: dict[int, str] = {}
    by_login: dict[str, list[int]] = {}

    def reject(line: int, column: str | None, reason: str, profile: dict[str, Any]) -> None:
        keys = {str(v).strip().lower() for v in profile.values() if v}
        entry_id = users[line - 1].uuid
        if entry_id:  # a rejected entry still names its person: a full run keeps them
            keys.add(entry_id.lower())
        rejections.append(Rejection(line, column, reason, frozenset(keys)))

    for line, user in enumerate(users, start=1):
        dns[line] = user.dn
        profile: dict[str, str | None] = {key: user.profile.get(key) for key in keys}
        if not user.login:
            reject(line, login_attribute, f"has no {login_attribute}: the entry cannot be imported", profile)
            continue
        values = "".join(v for v in profile.values() if v)
        if len(values) > MAX_VALUE_LENGTH or not values.isascii() or _CONTROL.search(values):
            problem = None
            for key in keys:
                value = profile[key]
                if value is None:
                    continue
                if len(value) > MAX_VALUE_LENGTH:
                    problem = (columns[key][0], f"is longer than {MAX_VALUE_LENGTH} characters")
                elif _CONTROL.search(value):
                    problem = (columns[key][0], "contains a control character")
                elif not value.isascii():
                    profile[key] = unicodedata.normalize("NFC", value)
                if problem:
                    break
            if problem:
                reject(line, problem[0], problem[1], profile)
                continue
        try:
            login = validate_login(profile["login"] or "")
        except InvalidInput as error:
            reject(line, login_attribute, error.message, profile)
            continue
        profile["login"] = login
        email = profile.get("email")
        if email is not None and not EMAIL_PATTERN.match(email):
            reject(line, columns.get("email", ("email",))[0], f"{email[:80]!r} is not an email address", profile)
            continue
        by_login.setdefault(login, []).append(len(rows))
        # An expired account (accountExpires / shadowExpire passed) is the directory saying the person left, as a
        # disabled one is: an HR export's "terminated".  It reactivates when the date is moved on.
        expired = user.expires is not None and user.expires <= now
        left = user.disabled or expired
        status = "disabled" if user.disabled else "expired" if expired else "enabled"
        rows.append(Row(line, login, profile, Intent.DEACTIVATED if left else Intent.ACTIVE, status, external_id=user.uuid))
    duplicated = {i for positions in by_login.values() if len(positions) > 1 for i in positions}
    if duplicated:
        for position in sorted(duplicated):
            row = rows[position]
            others = ", ".join(dns[rows[p].line] for p in by_login[row.login] if p != position)
            reject(row.line, login_attribute, f"{login_attribute} {row.login!r} is also the login of {others}", row.profile)
        rows = [row for position, row in enumerate(rows) if position not in duplicated]
    rejections.sort(key=lambda r: r.line)
    parsed = ParsedFile(
        rows=tuple(rows), rejections=tuple(rejections), columns=columns, status_column=status_column, key="login", login_derived=False
    )
    return parsed, dns


def _accepted_logins(parsed: ParsedFile, plan: ImportPlan, exists: Callable[[str], bool]) -> set[str]:
    """The logins of the rows the plan accepted that are, or become, people: not an entry disabled before anyone
    imported it (no person to be a member: counting one would report the same membership on every run)."""
    rejected = {r.line for r in plan.rejected}
    written = {action.login for action in plan.actions}
    return {
        row.login
        for row in parsed.rows
        if row.line not in rejected and (row.intent is not Intent.DEACTIVATED or row.login in written or exists(row.login))
    }


class LdapImports(LdapSources):
    def import_ldap(
        self, name: str, *, dry_run: bool = False, confirm: bool = False, full: bool | None = None, allow_empty: bool = False
    ) -> dict[str, Any]:
        """Import users and groups from an LDAP source (see the module docstring).

        ``full``: None decides (first run, or the last full one too old: full; else
        incremental); True forces a full read; False asks for an incremental one (full
        anyway when no run was applied yet).  Dry run: the plan, with the group changes.
        A full read that yields no valid person is refused (ImportRefused) unless ``allow_empty``.
        """
        self.access.authorise(None, Action.MANAGE_SOURCES)
        doc = self._source(name, "ldap")
        settings = ldap_settings(doc["settings"], self.secrets)
        state = doc.get("ldap") or {}
        mark = state.get("mark")
        at = utc_now()
        if mark is None or self._expiry_passed(name, at):  # an expiry changes no timestamp: only a full read sees it
            is_full = True
        elif full is None:
            is_full = self._full_due(doc, at)
        else:
            is_full = bool(full)
        started = utc_now_iso()
        from provtui.connectors.ldap import LdapError, read_groups, read_users

        try:
            users, next_mark = read_users(settings, changed_since=None if is_full else mark)
            groups = read_groups(settings)
        except LdapError as error:
            message = f"source {name}: {error.message}"
            if not dry_run:
                self._record_attempt(name, "failed", message, started)
            raise SourceFailed(message, retryable=error.retryable) from None
        parsed, dns = ldap_rows(users, settings, at)
        plan = plan_import(
            parsed,
            self.store.all(USERS),
            source=name,
            full=is_full,
            priorities=self.priorities(),
            allow_empty=allow_empty,
            identities=self._identities(name),
        )
        accepted = _accepted_logins(parsed, plan, lambda login: bool(self.store.lookup(USERS, "login", login)))
        index = self._entry_index(name, users, full=is_full)
        result = self._ldap_result(plan, dns, is_full)
        if dry_run or plan.refused:
            # a refused run changes no group either: what it would have done is not planned
            group_ops = [] if plan.refused else self._plan_groups(self.store, name, groups, index, accepted)
            result["groups"] = group_counts(group_ops)
            if dry_run:
                actions = [{**a, "dn": dns.get(a["line"]), "reason": _LDAP_REASONS.get(a["reason"], a["reason"])} for a in plan.details()]
                result.update(dry_run=True, actions=actions, group_actions=[op.as_dict() for op in group_ops])

        def record(outcome: str, message: str, details: dict[str, Any]) -> None:
            self._record_attempt(name, outcome, message, started, {**details, "mode": result["mode"]})

        try:
            self._gate(plan, result, dry_run=dry_run, confirm=confirm, strict=False, record=record)
        except HeldForConfirmation as held:
            if not dry_run:
                held.details["groups"] = group_counts(self._plan_groups(self.store, name, groups, index, accepted))
                self._record_attempt(name, "held", str(held), started)
            raise
        if dry_run:
            return result
        now = utc_now_iso()
        ldap_state = {"mark": next_mark, "last_full": now if is_full else state.get("last_full"), "last_mode": result["mode"]}

        def extra(tx: Change) -> dict[str, Any]:
            self._write_entries(tx, name, users, full=is_full, now=at)
            ops = self._plan_groups(tx, name, groups, index, accepted)  # under the lock, seeing the new users
            result["groups"] = self._apply_groups(tx, name, ops)
            return {"groups": result["groups"], "mode": result["mode"]}

        self.apply(
            plan,
            source_kind="ldap",
            attributes=sorted(settings.effective_attribute_map),
            extra=extra,
            source_updates={"ldap": ldap_state, "last_attempt": {"time": now, "outcome": "applied", "message": None}},
        )
        return result

    def due_sources(self, now: datetime | None = None) -> list[str]:
        """The LDAP sources with an ``interval`` whose last run (applied, held or failed) is that old, by name."""
        now = now or utc_now()
        due = []
        for name, source in sorted(self.store.all(SOURCES).items()):
            interval = source["settings"].get("interval") if source["kind"] == "ldap" else None
            if not interval:
                continue
            times = [t for t in ((source.get("last_attempt") or {}).get("time"), (source.get("last_run") or {}).get("time")) if t]
            last = max((parse_iso(t) for t in times), default=None)
            if last is None or last + timedelta(minutes=interval) <= now:
                due.append(name)
        return due

    def run_due_imports(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Run every due LDAP import (as the worker does); never raises for one source's trouble.

        Returns one {"source", "outcome": "applied"|"held"|"refused"|"failed", "result"|"message"} per
        source run.  A held run waits for an admin: ``provtui import ldap NAME --confirm``; a refused one
        (a full read that found no valid person) changes nothing, and no scheduled run passes allow_empty:
        only an admin can (``provtui import ldap NAME --allow-empty``).
        """
        outcomes = []
        for name in self.due_sources(now):
            try:
                outcomes.append({"source": name, "outcome": "applied", "result": self.import_ldap(name)})
            except HeldForConfirmation as held:
                outcomes.append({"source": name, "outcome": "held", "message": str(held)})
            except ImportRefused as refused:  # a scheduled run never deprovisions from an empty read
                outcomes.append({"source": name, "outcome": "refused", "message": str(refused)})
            except ProvtuiError as error:
                outcomes.append({"source": name, "outcome": "failed", "message": str(error)})
        return outcomes

    @staticmethod
    def _full_due(doc: dict[str, Any], now: datetime) -> bool:
        last_full = (doc.get("ldap") or {}).get("last_full")
        if not last_full:
            return True
        hours = doc["settings"].get("full_every_hours") or FULL_EVERY_HOURS
        return parse_iso(last_full) + timedelta(hours=hours) <= now

    def _ldap_result(self, plan: ImportPlan, dns: dict[int, str], is_full: bool) -> dict[str, Any]:
        result = self._result(plan)
        result["rejected"] = [{**r, "dn": dns.get(r["line"])} for r in result["rejected"]]
        result["mode"] = "full" if is_full else "incremental"
        return result

    def _expiry_passed(self, source: str, now: datetime) -> bool:
        """Whether an account this source last read as not yet expired has expired since."""
        return any(parse_iso(doc["expires"]) <= now for doc in self._stored_entries(source).values() if doc.get("expires"))

    def _identities(self, source: str) -> dict[str, str]:
        """The entry id -> login of this source's people, as its last reads wrote them (a rename keeps the id)."""
        return {doc["uuid"]: doc["login"] for doc in self._stored_entries(source).values() if doc.get("uuid")}

    def _stored_entries(self, source: str) -> dict[str, dict[str, Any]]:
        prefix = f"{source}|"
        return {key: doc for key, doc in self.store.all(SOURCE_ENTRIES).items() if key.startswith(prefix)}

    def _entry_index(
        self, source: str, users: list[LdapUser], *, full: bool, stored: dict[str, dict[str, Any]] | None = None, gone: Collection[str] = ()
    ) -> DnIndex:
        """DN -> login of this source's entries: this read's, plus (incremental) the stored ones (``stored``, when
        the caller has read them already) but for those whose entry id is ``gone``."""
        index = DnIndex()
        if not full:
            for doc in (self._stored_entries(source) if stored is None else stored).values():
                if (doc.get("uuid") or "").lower() not in gone:
                    index.add(doc["dn"], doc["login"])
        for user in users:
            if user.login:
                index.add(user.dn, normalise_login(user.login))
        return index

    def _write_entries(self, tx: Change, source: str, users: list[LdapUser], *, full: bool, now: datetime) -> None:
        """Keyed by the DN as the server spells it (it spells one entry's DN one way): no parsing needed."""
        stored = self._stored_entries(source)
        wanted: dict[str, dict[str, Any]] = {}
        for user in users:
            if user.login:
                doc: dict[str, Any] = {"source": source, "dn": user.dn, "login": normalise_login(user.login)}
                if user.uuid:
                    doc["uuid"] = user.uuid
                if user.expires is not None and user.expires > now:  # to come: the run after it passes reads everyone
                    doc["expires"] = user.expires.isoformat()
                wanted[f"{source}|{user.dn}"] = doc
        for key, doc in wanted.items():
            if stored.get(key) != doc:
                tx.put(SOURCE_ENTRIES, key, doc)
        read = {doc["uuid"] for doc in wanted.values() if doc.get("uuid")}
        for key, doc in stored.items():  # full: whatever this read did not see; always: an entry's old DN (renamed, moved)
            if key not in wanted and (full or doc.get("uuid") in read):
                tx.delete(SOURCE_ENTRIES, key)
