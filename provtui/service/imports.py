"""Imports through the service: sources of truth, dry runs, the safeguard, one transaction.

The parsing and planning are pure (provtui.domain.hr_import, .import_plan); this module is
the part of the service that reads the store to plan, holds a mass
deprovisioning for confirmation, and applies a plan as one change, audited
and followed by the provisioning it implies.

Three kinds of import:

CSV (``import_csv``)
    An HR export; a full import deactivates this source's users missing from the file.
    ``strict``: apply nothing when any row is rejected (else the valid rows are applied and
    the rejected ones reported).  The result names the columns not imported (``ignored_columns``).

LDAP / Active Directory (``import_ldap``)
    Users are read with a paged search (provtui.connectors.ldap) and become the same
    ``Row``s a CSV gives, planned by the same ``plan_import``: an enabled entry is an
    active person, a disabled one (AD's ACCOUNTDISABLE bit, or an entry under one of the
    source's ``disabled_bases``) a deprovisioned one; the key is the login. Each rejected
    entry is reported with its position in the read (``line``) and its ``dn``.

    Full or incremental. A run is *full* the first time, when ``full=True`` (``--full``),
    and when the last full run is older than ``full_every_hours`` (24 by default);
    otherwise it is *incremental*: only entries changed since the mark the last applied
    run saved (modifyTimestamp / whenChanged, see the connector for why the mark is
    safe). An incremental run never deactivates anyone for being absent (it cannot see
    deletions): only a full run deactivates this source's users missing from the
    directory. The mark is saved with the users, in the same transaction, so a dry run,
    a held run or a failed one leaves it where it was. (An entry an incremental run
    rejects is read again when it changes, or by the next full run.)

    Groups (groupOfNames, AD's group; their ``member``) are read in full on every run.
    Each becomes a provtui group of kind ``source:<NAME>`` whose membership *by this
    source* (membership docs with ``via: "source:<NAME>"``) is set to exactly the
    directory's, nested groups flattened. Members are the users this source masters,
    or whose entry this run accepted (a login that merely collides with someone else's
    user is not made a member). A name taken by another group gets `` (<NAME>)``
    appended. A group gone from the directory keeps its provtui group (assignments to it
    stay visible) but loses every membership this source gave. Membership changes queue
    the (app, user) accounts they affect and the group's pushed copies, in the same
    transaction as the users. To resolve member DNs in incremental runs (the members
    did not change, so they are not read) each source keeps a DN -> login index
    (table ``source_entries``), rebuilt by every full run.

    Scheduled imports: a source's ``interval`` (minutes); ``due_sources(now)`` names the
    sources due, ``run_due_imports()`` runs them (a held, refused or failed run is recorded on
    the source as its ``last_attempt`` and counts as a run for the schedule; no scheduled run
    is ever allowed to be empty).

Refusals, holds and dry runs (CSV and LDAP alike, ``_gate``)
    A full run that yields no valid person (``plan_import``'s ``plan.refused``: no row, every
    row rejected, an LDAP search under the wrong base DN or filter) is refused: ImportRefused,
    exit 2, with or without ``confirm``; nothing is written but the refusal's audit event
    (``import.refused``; an LDAP source also records it as its ``last_attempt``).  Only
    ``allow_empty`` lets such a run through, and the safeguard still holds it for ``confirm``.
    A source that cannot be read (server down, bind refused) raises SourceFailed and changes
    nothing either (``import.failed``).  A dry run goes through the same gate (refusal, strict,
    safeguard: it raises what the real run would raise) and writes nothing at all.

App import (``import_app``)
    An app's existing accounts (SCIM GET /Users, paged) are matched to users by one rule
    (userName -> login, email -> the profile's email, externalId -> the user's id) and
    linked: the account doc gets the remote id, its active flag and its attributes as the
    app holds them, so the next reconcile sends only what differs (an account of a user
    who is not entitled to the app, or deprovisioned, is deactivated by it). Accounts
    already linked are left alone; an account matching a user who has another linked
    account, or matching several users, or a user several accounts match, is a conflict
    and is not linked; accounts matching nobody are orphans (``report orphans``).
    Linking needs ``confirm`` (else HeldForConfirmation, exit 3) unless nothing would be
    linked; orphans are recorded whenever the run is applied.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from provtui.clock import parse_iso, utc_now, utc_now_iso
from provtui.directory import (
    ACCOUNTS,
    CONFIG,
    GROUPS,
    MEMBERS,
    ORPHANS,
    PUSHED_GROUPS,
    PUSHES,
    SOURCE_ENTRIES,
    SOURCES,
    USERS,
    account_key,
    group_key,
    group_subject,
    member_key,
)
from provtui.domain.apps import AppKind
from provtui.domain.errors import HeldForConfirmation, InvalidInput, ProvtuiError
from provtui.domain.hr_import import MAX_VALUE_LENGTH, parse_csv
from provtui.domain.hr_mapping import DEFAULT_MAPPING, load_mapping
from provtui.domain.import_plan import ImportPlan, deprovision_ratio, plan_import
from provtui.domain.import_rows import Intent, ParsedFile, Rejection, Row
from provtui.domain.lifecycle import State
from provtui.domain.roles import Action, Scope
from provtui.domain.secrets import validate_env_name
from provtui.domain.users import _ATTR_NAME, _EMAIL, normalise_login, validate_login
from provtui.ids import new_id
from provtui.pending import queue
from provtui.service.part import Part

if TYPE_CHECKING:
    from provtui.connectors.base import Connector, RemoteUser
    from provtui.connectors.ldap import LdapGroup, LdapSettings, LdapUser
    from provtui.model.directory import Directory
    from provtui.service.change import Access, Change, Changes
    from provtui.service.reads import Reads

DEFAULT_CSV_SOURCE = "csv"
DEFAULT_THRESHOLD = 0.2  # Okta's: an import that deprovisions more than 20% of the org is held
FULL_EVERY_HOURS = 24  # an LDAP source's incremental runs fall back to a full one at least this often
MATCH_RULES = ("userName", "email", "externalId")
APP_PAGE_SIZE = 200
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_GROUP_NAME_BAD = re.compile(r"[^A-Za-z0-9 ._-]+")
# The planner speaks of HR files; an LDAP dry run says what it means there.
_LDAP_REASONS = {"active in HR": "enabled in the directory", "terminated in HR": "disabled in the directory",
                 "missing from the file": "missing from the directory"}
# LdapSettings options a source may carry beyond the CLI's (set through the Python API).
_LDAP_OPTIONS = frozenset({"attribute_map", "group_filter", "disabled_bases", "page_size", "timeout", "max_clock_skew",
                           "tls", "ca_file", "full_every_hours"})
_LDAP_FIELDS = frozenset({"uri", "bind_dn", "password_env", "base_dn", "user_filter", "group_base", "flavor",
                          "attribute_map", "page_size", "timeout", "group_filter", "disabled_bases", "max_clock_skew",
                          "tls", "ca_file"})


class ImportRefused(ProvtuiError):
    """A run refused before it changed anything: it yields no valid person (without allow_empty),
    or (strict) rows were rejected.  Exit 2; ``details`` has the counts and the rejected rows."""

    exit_code = 2

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


class SourceFailed(ProvtuiError):
    """A source or an app could not be read.  Exit 1 when it may pass (server down, timeout),
    2 when it needs a person (credentials, base DN, filter, a token variable not set)."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable
        self.exit_code = 1 if retryable else 2


def validate_source_name(name: str) -> str:
    if not _SOURCE_NAME.match(name or "") or name == "provtui":
        raise InvalidInput("NAME", f"{name!r} is not a source name (letters, digits and . _ -; not 'provtui')")
    return name


class Importer(Part):
    def __init__(self, changes: Changes, directory: Directory, access: Access, *, reads: Reads):
        super().__init__(changes, directory, access)
        self.reads = reads

    # -- sources -----------------------------------------------------------------------

    def add_source(self, name: str, kind: str, settings: dict[str, Any]) -> dict:
        name = validate_source_name(name)
        with self.changes(Action.MANAGE_SOURCES) as tx:
            if tx.get(SOURCES, name) is not None:
                raise InvalidInput("NAME", f"a source named {name!r} already exists")
            source = {"name": name, "kind": kind, "settings": settings, "created": utc_now_iso(), "attributes": []}
            tx.put(SOURCES, name, source)
            tx.audit("source.add", name, None, {"kind": kind, "settings": settings})
        return source

    def add_ldap_source(self, name: str, *, uri: str, bind_dn: str, password_env: str, base_dn: str,
                        user_filter: str | None = None, group_base: str | None = None, flavor: str = "openldap",
                        interval: int | None = None, **options: Any) -> dict:
        """An LDAP/AD source.  The bind password is read from ``password_env`` at each run; it is never stored.

        ``interval``: run every so many minutes (the worker runs due sources).  ``options``:
        attribute_map, group_filter, disabled_bases, page_size, timeout, max_clock_skew, tls,
        ca_file (see LdapSettings) and full_every_hours.
        """
        unknown = sorted(set(options) - _LDAP_OPTIONS)
        if unknown:
            raise InvalidInput(unknown[0], f"not an LDAP source setting (known: {', '.join(sorted(_LDAP_OPTIONS))})")
        validate_env_name("--password-env", password_env, "the bind password")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 525_600):
            raise InvalidInput("--interval", "must be a whole number of minutes, 1 or more")
        hours = options.get("full_every_hours")
        if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0):
            raise InvalidInput("full_every_hours", "must be a positive number of hours")
        if options.get("attribute_map"):
            for key in options["attribute_map"]:
                if not _ATTR_NAME.match(str(key)):
                    raise InvalidInput("attribute_map", f"{key!r} is not an attribute name")
        settings: dict[str, Any] = {"uri": uri, "bind_dn": bind_dn, "password_env": password_env, "base_dn": base_dn,
                                    "user_filter": user_filter, "group_base": group_base, "flavor": flavor,
                                    "interval": interval, **options}
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items() if v is not None}
        ldap_settings(settings)  # refuse what the connector would refuse, now
        return self.add_source(name, "ldap", settings)

    def list_sources(self) -> list[dict]:
        self.access.read()
        return [self._source_view(s) for _, s in sorted(self.store.all(SOURCES).items())]

    @staticmethod
    def _source_view(source: dict) -> dict:
        users = source.get("last_run", {}).get("summary") if source.get("last_run") else None
        view = {"name": source["name"], "kind": source["kind"], "settings": source["settings"],
                "last_run": source.get("last_run", {}).get("time"), "last_summary": users}
        if source["kind"] == "ldap":
            attempt = source.get("last_attempt") or {}
            state = source.get("ldap") or {}
            view.update(interval=source["settings"].get("interval"), last_outcome=attempt.get("outcome"),
                        last_attempt=attempt.get("time"), last_message=attempt.get("message"),
                        last_full=state.get("last_full"), last_mode=state.get("last_mode"))
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

    # -- CSV ---------------------------------------------------------------------------

    def import_csv(self, data: bytes, *, source: str | None, dry_run: bool, confirm: bool, full: bool = True,
                   allow_empty: bool = False, strict: bool = False) -> dict:
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
        plan = plan_import(parsed, self.store.all(USERS), source=name, full=full, priorities=self.priorities(),
                           allow_empty=allow_empty)
        result = {**self._result(plan), "ignored_columns": list(parsed.ignored_columns),
                  "unmapped_columns": list(parsed.unmapped_columns)}
        if dry_run:
            result.update(dry_run=True, actions=plan.details())
        started = utc_now_iso()
        self._gate(plan, result, dry_run=dry_run, confirm=confirm, strict=strict,
                   record=lambda outcome, message, details: self._record_attempt(name, outcome, message, started, details))
        if dry_run:
            return result
        self.apply(plan, source_kind="csv", attributes=sorted(parsed.columns), create_source=doc is None)
        return result

    # -- LDAP / AD -----------------------------------------------------------------------

    def import_ldap(self, name: str, *, dry_run: bool = False, confirm: bool = False, full: bool | None = None,
                    allow_empty: bool = False) -> dict:
        """Import users and groups from an LDAP source (see the module docstring).

        ``full``: None decides (first run, or the last full one too old: full; else
        incremental); True forces a full read; False asks for an incremental one (full
        anyway when no run was applied yet).  Dry run: the plan, with the group changes.
        A full read that yields no valid person is refused (ImportRefused) unless ``allow_empty``.
        """
        self.access.authorise(None, Action.MANAGE_SOURCES)
        doc = self._source(name, "ldap")
        settings = ldap_settings(doc["settings"])
        state = doc.get("ldap") or {}
        mark = state.get("mark")
        if mark is None:
            is_full = True
        elif full is None:
            is_full = self._full_due(doc, utc_now())
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
        parsed, dns = ldap_rows(users, settings)
        plan = plan_import(parsed, self.store.all(USERS), source=name, full=is_full, priorities=self.priorities(),
                           allow_empty=allow_empty)
        accepted = _accepted_logins(parsed, plan)
        index = self._entry_index(name, users, full=is_full)
        result = self._ldap_result(plan, dns, is_full)
        if dry_run or plan.refused:
            # a refused run changes no group either: what it would have done is not planned
            group_ops = [] if plan.refused else self._plan_groups(self.store, name, groups, index, accepted)
            result["groups"] = _group_counts(group_ops)
            if dry_run:
                actions = [{**a, "dn": dns.get(a["line"]), "reason": _LDAP_REASONS.get(a["reason"], a["reason"])}
                           for a in plan.details()]
                result.update(dry_run=True, actions=actions, group_actions=[op.as_dict() for op in group_ops])

        def record(outcome: str, message: str, details: dict) -> None:
            self._record_attempt(name, outcome, message, started, {**details, "mode": result["mode"]})

        try:
            self._gate(plan, result, dry_run=dry_run, confirm=confirm, strict=False, record=record)
        except HeldForConfirmation as held:
            if not dry_run:
                held.details["groups"] = _group_counts(self._plan_groups(self.store, name, groups, index, accepted))
                self._record_attempt(name, "held", str(held), started)
            raise
        if dry_run:
            return result
        now = utc_now_iso()
        ldap_state = {"mark": next_mark, "last_full": now if is_full else state.get("last_full"),
                      "last_mode": result["mode"]}

        def extra(tx: Change) -> dict:
            self._write_entries(tx, name, users, full=is_full)
            ops = self._plan_groups(tx, name, groups, index, accepted)  # under the lock, seeing the new users
            result["groups"] = self._apply_groups(tx, name, ops)
            return {"groups": result["groups"], "mode": result["mode"]}

        self.apply(plan, source_kind="ldap", attributes=sorted(settings.effective_attribute_map), extra=extra,
                   source_updates={"ldap": ldap_state, "last_attempt": {"time": now, "outcome": "applied", "message": None}})
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

    def run_due_imports(self, now: datetime | None = None) -> list[dict]:
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

    def _source(self, name: str, kind: str) -> dict:
        doc = self.store.get(SOURCES, name)
        if doc is None:
            raise InvalidInput("NAME", f"no source named {name!r} (add it: provtui source add-{kind} {name} ...)")
        if doc["kind"] != kind:
            raise InvalidInput("NAME", f"{name} is a {doc['kind']} source, not an {kind.upper()} one")
        return doc

    @staticmethod
    def _full_due(doc: dict, now: datetime) -> bool:
        last_full = (doc.get("ldap") or {}).get("last_full")
        if not last_full:
            return True
        hours = doc["settings"].get("full_every_hours") or FULL_EVERY_HOURS
        return parse_iso(last_full) + timedelta(hours=hours) <= now

    def _record_attempt(self, name: str, outcome: str, message: str, started: str, details: dict | None = None) -> None:
        """A run that did not apply: audited, and recorded on the source when it exists (for the
        schedule and `source list`; the CSV source made on first use is not made by a refusal)."""
        with self.changes(Action.MANAGE_SOURCES) as tx:
            source = tx.get(SOURCES, name)
            if source is not None:
                tx.put(SOURCES, name, {**source, "last_attempt": {"time": utc_now_iso(), "started": started,
                                                                  "outcome": outcome, "message": message}})
            tx.audit(f"import.{outcome}", name, None, {"message": message, **(details or {})})

    def _ldap_result(self, plan: ImportPlan, dns: dict[int, str], is_full: bool) -> dict:
        result = self._result(plan)
        result["rejected"] = [{**r, "dn": dns.get(r["line"])} for r in result["rejected"]]
        result["mode"] = "full" if is_full else "incremental"
        return result

    # -- the DN index (member DNs of incremental runs) --------------------------------------

    def _stored_entries(self, source: str) -> dict[str, dict]:
        prefix = f"{source}|"
        return {key: doc for key, doc in self.store.all(SOURCE_ENTRIES).items() if key.startswith(prefix)}

    def _entry_index(self, source: str, users: list[LdapUser], *, full: bool) -> DnIndex:
        """DN -> login of this source's entries: this read's, plus (incremental) the stored ones."""
        index = DnIndex()
        if not full:
            for doc in self._stored_entries(source).values():
                index.add(doc["dn"], doc["login"])
        for user in users:
            if user.login:
                index.add(user.dn, normalise_login(user.login))
        return index

    def _write_entries(self, tx: Change, source: str, users: list[LdapUser], *, full: bool) -> None:
        """Keyed by the DN as the server spells it (it spells one entry's DN one way): no parsing needed."""
        stored = self._stored_entries(source)
        wanted: dict[str, dict] = {}
        for user in users:
            if user.login:
                wanted[f"{source}|{user.dn}"] = {"source": source, "dn": user.dn, "login": normalise_login(user.login)}
        for key, doc in wanted.items():
            if stored.get(key) != doc:
                tx.put(SOURCE_ENTRIES, key, doc)
        if full:
            for key in stored.keys() - wanted.keys():
                tx.delete(SOURCE_ENTRIES, key)

    # -- groups --------------------------------------------------------------------------

    def _plan_groups(self, reader: Any, source: str, groups: list[LdapGroup], index: DnIndex,
                     accepted: set[str]) -> list[GroupOp]:
        """What to do to this source's provtui groups so their source membership is the directory's.

        ``reader``: the store (dry run) or the transaction applying the import (which sees its new users).
        """
        from provtui.connectors.ldap import normalise_dn

        via = f"source:{source}"
        existing = [g for g in self.store.all(GROUPS).values() if g.get("kind") == via]
        by_uuid = {g["source_ref"]["uuid"]: g for g in existing if (g.get("source_ref") or {}).get("uuid")}
        by_dn = {normalise_dn(g["source_ref"]["dn"]): g for g in existing if (g.get("source_ref") or {}).get("dn")}
        members = _flatten_groups(groups, index)
        eligible_cache: dict[str, str | None] = {}

        def user_for(login: str) -> str | None:
            """The user id (or "" for a user this import creates) a member login stands for, if it may be one."""
            if login in eligible_cache:
                return eligible_cache[login]
            ids = reader.lookup(USERS, "login", login)
            user_id = next(iter(ids)) if ids else None
            result: str | None = None
            if user_id is not None:
                user = reader.get(USERS, user_id)
                if login in accepted or user.get("source") == source:
                    result = user_id
            elif login in accepted:
                result = ""  # created by this import (dry run: not yet)
            eligible_cache[login] = result
            return result

        ops: list[GroupOp] = []
        seen_ids: set[str] = set()
        claimed: set[str] = set()
        for group in groups:
            key = normalise_dn(group.dn)
            current = (by_uuid.get(group.uuid) if group.uuid else None) or by_dn.get(key)
            if current is not None and current["id"] in seen_ids:
                current = None  # two entries claim one group (a copy of a uuid?): the second is a new group
            if current is not None:
                seen_ids.add(current["id"])
            name = self._group_name(reader, group.name, source, current["id"] if current else None, claimed)
            if name is None:
                ops.append(GroupOp("skipped", group.dn, group.name, reason=f"no free name for {group.name!r}"))
                continue
            claimed.add(name.lower())
            wanted = {login for login in members.get(key, ()) if user_for(login) is not None}
            have = _source_members(reader, current["id"], via) if current else {}
            ref = {"dn": group.dn, "uuid": group.uuid}
            op = GroupOp("create" if current is None else "update", group.dn, name, group_id=current["id"] if current else None,
                         description=group.description or "", ref=ref,
                         add=sorted(wanted - set(have)), remove=sorted(set(have) - wanted))
            if current is not None:
                op.rename = current["name"] if current["name"] != name else None
                op.changed = (op.rename is not None or current.get("description", "") != op.description
                              or current.get("source_ref") != ref or bool(current.get("removed_from_source")))
                if not (op.changed or op.add or op.remove):
                    op.action = "unchanged"
            op.user_ids = {login: user_for(login) or "" for login in op.add}
            op.user_ids.update({login: have[login] for login in op.remove})
            ops.append(op)
        for group in existing:
            if group["id"] in seen_ids:
                continue
            have = _source_members(reader, group["id"], via)
            if not have and group.get("removed_from_source"):
                continue
            op = GroupOp("removed", group["source_ref"]["dn"], group["name"], group_id=group["id"], remove=sorted(have))
            op.user_ids = dict(have)
            ops.append(op)
        return ops

    @staticmethod
    def _group_name(reader: Any, cn: str, source: str, group_id: str | None, claimed: set[str]) -> str | None:
        base = _GROUP_NAME_BAD.sub("-", unicodedata.normalize("NFKD", cn).encode("ascii", "ignore").decode()).strip(" -")[:100]
        base = base or "group"
        for candidate in (base, f"{base[:100 - len(source) - 3]} ({source})"):
            if candidate.lower() in claimed:
                continue
            holders = reader.lookup(GROUPS, "name", candidate)
            if not holders or holders == {group_id}:
                return candidate
        return None

    def _apply_groups(self, tx: Change, source: str, ops: list[GroupOp], *, via: str | None = None) -> dict:
        """Write the group changes.  A membership change queues (app, user) for the apps assigned to
        the group (the entitlements it changes), the group's pushed copies, and tells the service
        (note_user_change) so rules reading the group run again and what they change is queued.

        ``via`` is the groups' kind and membership path: ``source:<NAME>`` (default) or ``app:<APP>``."""
        directory = self.directory
        via = via or f"source:{source}"
        now = utc_now_iso()
        for op in ops:
            if op.action in ("skipped", "unchanged"):
                continue
            if op.action == "create":
                op.group_id = new_id()
                doc = {"id": op.group_id, "name": op.name, "description": op.description, "kind": via, "source": source,
                       "source_ref": op.ref, "created": now}
                tx.put(GROUPS, op.group_id, doc)
                tx.audit("group.create", op.name, None, {"description": op.description, "source": source, "dn": op.dn})
            elif op.action == "update" and op.changed:
                old = tx.get(GROUPS, op.group_id)
                doc = {**old, "name": op.name, "description": op.description, "source_ref": op.ref}
                doc.pop("removed_from_source", None)
                tx.put(GROUPS, op.group_id, doc)
                tx.audit("group.update", op.name, {"name": old["name"], "description": old.get("description")},
                               {"name": op.name, "description": op.description, "source": source})
            elif op.action == "removed":
                old = tx.get(GROUPS, op.group_id)
                tx.put(GROUPS, op.group_id, {**old, "removed_from_source": now})
                tx.audit("group.source-removed", op.name, {"dn": op.dn}, {"members_removed": len(op.remove)})
            group_id = op.group_id
            apps = sorted(directory.apps_assigned_to(group_subject(group_id), tx)) if op.action != "create" else []
            names = {op.name, op.rename} - {None}
            for login in op.add:
                user_id = op.user_ids.get(login) or next(iter(tx.lookup(USERS, "login", login)), None)
                if user_id is None:
                    continue  # its row was planned but not applied (cannot happen within one transaction)
                tx.put(MEMBERS, member_key(group_id, user_id, via), {"group": group_id, "user": user_id, "via": via})
                tx.mark_dirty(((app_id, user_id) for app_id in apps))
                tx.note_user_change(user_id, groups=names)  # rules reading the group look again
            for login in op.remove:
                user_id = op.user_ids[login]
                tx.delete(MEMBERS, member_key(group_id, user_id, via))
                tx.mark_dirty(((app_id, user_id) for app_id in apps))
                tx.note_user_change(user_id, groups=names)
            if op.rename:  # rules reading either name look again at every member
                for user_id in directory.members_of(group_id, tx):
                    tx.note_user_change(user_id, groups=names)
            if op.add or op.remove:
                tx.audit("group.source-sync", op.name, None, {"source": source, "added": op.add, "removed": op.remove})
            if op.add or op.remove or op.rename:
                tx.mark_groups(group_id)
        return _group_counts(ops)

    # -- app groups ---------------------------------------------------------------------

    def import_app_groups(self, app_name: str, *, dry_run: bool = False, groups: list | None = None) -> dict:
        """An app's own groups, as app groups (kind ``app:<APP>``): kept apart from provtui's groups,
        their membership exactly the app's for the accounts provtui has linked; rules can read them
        (isMemberOfGroupName), so their members can be placed in provtui groups and inherit their apps."""
        self.access.authorise(None, Action.MANAGE_SOURCES)
        app = self.directory.app(app_name)
        if app["kind"] not in (AppKind.SCIM, AppKind.LDAP):
            raise InvalidInput("APP", f"{app_name} is a {app['kind']} app: app groups are read from SCIM and LDAP apps")
        if groups is None:
            groups = asyncio.run(self.read_app_groups(app))
        via = f"app:{app['name']}"
        accounts = (self.store.get(ACCOUNTS, k) for k in self.store.lookup(ACCOUNTS, "app", app["id"]))
        owners = {a["remote_id"]: a["user"] for a in accounts if a.get("remote_id")}
        with self.store.transaction() as locked:  # the lock: plan against the state we will change
            tx = self.changes.within(locked)
            ops = self._plan_app_groups(tx, app, via, groups, owners)
            if not dry_run:
                counts = self._apply_groups(tx, app["name"], ops, via=via)
                tx.audit("import.app-groups", app["name"], None, counts)
                self.changes.settle(tx)
        result = {"app": app["name"], **_group_counts(ops)}
        if dry_run:
            result.update(dry_run=True, groups=[op.as_dict() for op in ops])
        return result

    async def read_app_groups(self, app: dict) -> list:
        from provtui.connectors.base import DownstreamError

        async def read(connector: Connector) -> list:
            return [group async for group in connector.list_groups()]

        try:
            return await self._read_app(app, read)
        except DownstreamError as error:
            raise SourceFailed(f"reading {app['name']}'s groups failed: {error.message}", retryable=error.retryable) from None

    async def _read_app(self, app: dict, read: Callable[[Connector], Any]) -> Any:
        """``await read(connector)`` with a connector of ``app`` made for this read alone (no engine run);
        its calls are audited in one commit, as the engine's are."""
        from provtui.connectors.config import connector_for
        from provtui.engine.calls import CallLog

        calls = CallLog(run_by=self.access.actor)
        connector = None
        try:
            connector = connector_for(app, on_call=calls.hook(app["name"]))
            return await read(connector)
        finally:
            calls.write(self.store)
            if connector is not None:
                await connector.aclose()

    def _plan_app_groups(self, reader: Any, app: dict, via: str, groups: list, owners: dict[str, str]) -> list[GroupOp]:
        existing = {(g.get("source_ref") or {}).get("id"): g for g in self.store.all(GROUPS).values() if g.get("kind") == via}
        pushed = {d["remote_id"] for d in (self.store.get(PUSHED_GROUPS, k) for k in self.store.lookup(PUSHED_GROUPS, "app", app["id"]))
                  if d.get("remote_id")}
        ops: list[GroupOp] = []
        claimed: set[str] = set()
        seen: set[str] = set()
        for group in groups:
            if group.id in seen or group.id in pushed or (group.external_id and reader.get(GROUPS, group.external_id)):
                continue  # a group provtui pushed there itself is not an app group
            seen.add(group.id)
            current = existing.get(group.id)
            name = self._group_name(reader, group.display_name, app["name"], current["id"] if current else None, claimed)
            if name is None:
                ops.append(GroupOp("skipped", group.id, group.display_name, reason=f"no free name for {group.display_name!r}"))
                continue
            claimed.add(name.lower())
            logins = {reader.get(USERS, owners[m])["login"]: owners[m] for m in group.members if m in owners and reader.get(USERS, owners[m])}
            have = _source_members(reader, current["id"], via) if current else {}
            op = GroupOp("create" if current is None else "update", group.id, name, group_id=current["id"] if current else None,
                         ref={"id": group.id}, add=sorted(set(logins) - set(have)), remove=sorted(set(have) - set(logins)))
            if current is not None:
                op.rename = current["name"] if current["name"] != name else None
                op.changed = op.rename is not None or bool(current.get("removed_from_source"))
                if not (op.changed or op.add or op.remove):
                    op.action = "unchanged"
            op.user_ids = {**{login: logins[login] for login in op.add}, **{login: have[login] for login in op.remove}}
            ops.append(op)
        for remote_id, group in existing.items():
            if remote_id not in seen and not group.get("removed_from_source"):
                have = _source_members(reader, group["id"], via)
                op = GroupOp("removed", remote_id or "", group["name"], group_id=group["id"], remove=sorted(have))
                op.user_ids = dict(have)
                ops.append(op)
        return ops

    # -- app import ------------------------------------------------------------------------

    def import_app(self, app_name: str, *, match: str = "userName", dry_run: bool = False, confirm: bool = False,
                   accounts: list[RemoteUser] | None = None) -> dict:
        """Link an app's existing accounts to users (see the module docstring).

        ``accounts``: the app's accounts when the caller read them already (``await
        read_app_accounts(app)``, e.g. from the console's event loop); None reads them here.
        """
        if match not in MATCH_RULES:
            raise InvalidInput("--match", f"{match!r} is not a match rule (one of {', '.join(MATCH_RULES)})")
        self.access.read()
        app = self.directory.app(app_name)
        scope = Scope(apps=frozenset({app["id"]}))
        self.access.authorise(None, Action.MANAGE_APP, scope)
        if app["kind"] != AppKind.SCIM:
            raise InvalidInput("APP", f"{app['name']} is not a SCIM app ({app['kind']}): app import reads accounts over SCIM")
        if accounts is None:
            accounts = asyncio.run(self.read_app_accounts(app))
        plan = self._plan_links(self.store, app, accounts, match)
        result = plan.result(app["name"], match)
        if dry_run:
            return {**result, "dry_run": True}
        if plan.linked and not confirm:
            not_entitled = len(result["not_entitled"])
            raise HeldForConfirmation(
                f"held: this import would link {len(plan.linked)} accounts of {app['name']} to users"
                + (f" ({not_entitled} of them not entitled to it: the next sync deactivates those)" if not_entitled else "")
                + "; run it again with --confirm to link them", result)
        now = utc_now_iso()
        with self.changes() as tx:
            tx.authorise(Action.MANAGE_APP, scope)
            plan = self._plan_links(tx, app, accounts, match)  # under the lock: links made meanwhile are respected
            if plan.linked:  # linking is held for --confirm, which needs the role `held approve` needs
                tx.authorise(Action.CONFIRM)
            for link in plan.linked:
                key = account_key(app["id"], link.user_id)
                old = tx.get(ACCOUNTS, key) or {"app": app["id"], "user": link.user_id}
                remote = link.remote
                tx.put(ACCOUNTS, key, {
                    **old, "remote_id": remote.id, "active": remote.active, "attributes": dict(remote.attributes),
                    "state": "active" if remote.active else "deactivated", "deactivated_at": None if remote.active else now,
                    "last_error": None, "attempts": 0, "last_sync": now, "last_action": "link", "linked": True,
                    "task": None, "correlation": tx.correlation,
                })
                tx.audit("account.link", link.login, None,
                               {"app": app["name"], "remote_id": remote.id, "match": match, "active": remote.active})
                tx.mark_dirty([(app["id"], link.user_id)])
                for group_id in self.directory.groups_of(link.user_id, tx):  # its pushed groups gain the account
                    if (tx.get(PUSHES, group_key(app["id"], group_id)) or {}).get("state") == "pushed":
                        queue(tx, group_key(app["id"], group_id), {"app": app["id"], "group": group_id})
            previous = {k: d for k, d in self.store.all(ORPHANS).items() if d.get("app") == app["id"]}
            current = {}
            for orphan in plan.orphans:
                key = f"{app['id']}|{orphan['remote_id']}"
                first = (previous.get(key) or {}).get("first_seen") or (previous.get(key) or {}).get("seen") or now
                current[key] = {"app": app["id"], "remote_id": orphan["remote_id"], "userName": orphan["userName"],
                                "email": orphan["email"], "seen": now, "first_seen": first}
            for key in previous.keys() - current.keys():
                tx.delete(ORPHANS, key)
            for key, doc in current.items():
                tx.put(ORPHANS, key, doc)
            result = plan.result(app["name"], match)
            tx.audit("app.import", app["name"], None,
                           {k: result[k] for k in ("match", "accounts", "linked", "already_linked", "conflicts", "orphans")})
        return result

    async def read_app_accounts(self, app: dict) -> list[RemoteUser]:
        """Every account of a SCIM app (GET /Users, paged), its calls audited."""
        from provtui.connectors.base import AccountListing, DownstreamError
        from provtui.connectors.config import ConfigError

        async def read(connector: AccountListing) -> list[RemoteUser]:
            return [account async for account in connector.list_users(page_size=APP_PAGE_SIZE)]

        try:
            return await self._read_app(app, read)
        except ConfigError as error:
            raise SourceFailed(f"app {app['name']}: {error.message}", retryable=False) from None
        except DownstreamError as error:
            status = f" (HTTP {error.status})" if error.status else ""
            raise SourceFailed(f"could not read the accounts of {app['name']}{status}: {error.message}",
                               retryable=error.retryable) from None

    def _plan_links(self, reader: Any, app: dict, accounts: list[RemoteUser], match: str) -> LinkPlan:
        users = self.store.all(USERS)
        linked_by_remote: dict[str, str] = {}  # remote id -> user id, of this app's accounts
        remote_of_user: dict[str, str] = {}
        for key in reader.lookup(ACCOUNTS, "app", app["id"]):
            account = reader.get(ACCOUNTS, key)
            if account and account.get("remote_id") and account["remote_id"] != "manual":
                linked_by_remote[account["remote_id"]] = account["user"]
                remote_of_user[account["user"]] = account["remote_id"]
        by_email: dict[str, list[str]] = {}
        if match == "email":
            for user_id, user in users.items():
                email = (user.get("profile") or {}).get("email")
                if email:
                    by_email.setdefault(str(email).lower(), []).append(user_id)
        plan = LinkPlan()
        candidates: dict[str, list[tuple[RemoteUser, dict]]] = {}  # user id -> accounts matching them
        for remote in accounts:
            user_name = remote.attributes.get("userName")
            email = remote_email(remote.attributes)
            entry = {"remote_id": remote.id, "userName": user_name, "email": email, "active": remote.active}
            if remote.id in linked_by_remote:
                owner = users.get(linked_by_remote[remote.id])
                plan.already_linked.append({**entry, "login": owner["login"] if owner else linked_by_remote[remote.id]})
                continue
            found: list[str] = []
            if match == "userName" and isinstance(user_name, str) and user_name.strip():
                found = list(reader.lookup(USERS, "login", normalise_login(user_name)))
            elif match == "email" and email:
                found = by_email.get(email.lower(), [])
            elif match == "externalId":
                external = remote.attributes.get("externalId")
                if isinstance(external, str) and external in users:
                    found = [external]
            if not found:
                plan.orphans.append(entry)
            elif len(found) > 1:
                logins = sorted(users[u]["login"] for u in found)
                plan.conflicts.append({**entry, "login": None, "reason": f"matches {len(found)} users: {', '.join(logins)}"})
            else:
                candidates.setdefault(found[0], []).append((remote, entry))
        directory = self.directory
        for user_id, matched in candidates.items():
            login = users[user_id]["login"]
            if len(matched) > 1:
                others = ", ".join(sorted(r.id for r, _ in matched))
                for _, entry in matched:
                    plan.conflicts.append({**entry, "login": login, "reason": f"{len(matched)} accounts match {login}: {others}"})
                continue
            remote, entry = matched[0]
            if user_id in remote_of_user:
                plan.conflicts.append({**entry, "login": login,
                                       "reason": f"{login} is linked to another account ({remote_of_user[user_id]})"})
                continue
            user = users[user_id]
            entitled = user["state"] == State.ACTIVE and bool(directory.paths(user_id, reader).get(app["id"]))
            plan.linked.append(Link(remote, user_id, login, entitled, entry))
        return plan

    # -- shared --------------------------------------------------------------------------

    def threshold(self) -> float:
        entry = self.store.get(CONFIG, "safeguard.threshold")
        return float(entry["value"]) if entry else DEFAULT_THRESHOLD

    def _gate(self, plan: ImportPlan, result: dict, *, dry_run: bool, confirm: bool, strict: bool,
              record: Callable[[str, str, dict], None]) -> None:
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
            message = f"source {plan.source}: {plan.refused}" + (
                f"; it would have deactivated {len(would)} {'user' if len(would) == 1 else 'users'}" if would else "") + (
                "; if the source really has nobody left, run it again with --allow-empty "
                "(a mass deactivation is still held for --confirm)")
            details = {**result, "refused": True, "reason": "empty", "would_deactivate": would}
            if not dry_run:
                record("refused", message, {"reason": "empty", "rows": plan.rows, "rejected": len(plan.rejected),
                                            "would_deactivate": len(would)})
            raise ImportRefused(message, details)
        if strict and plan.rejected:
            count = len(plan.rejected)
            message = (f"source {plan.source}: {count} {'row was' if count == 1 else 'rows were'} rejected "
                       f"and --strict applies nothing then; nothing was changed")
            if not dry_run:
                record("refused", message, {"reason": "strict", "rows": plan.rows, "rejected": count})
            raise ImportRefused(message, {**result, "refused": True, "reason": "strict"})
        self._check_safeguard(plan, confirm, result)

    def _check_safeguard(self, plan: ImportPlan, confirm: bool, result: dict) -> None:
        active = sum(1 for u in self.store.all(USERS).values() if u["state"] == State.ACTIVE)
        ratio = deprovision_ratio(plan, active)
        if ratio > self.threshold() and not confirm:
            raise HeldForConfirmation(
                f"held: this import would deactivate {plan.deactivations} of {active} active users "
                f"({ratio:.0%}, above the {self.threshold():.0%} safeguard); run it again with --confirm to apply",
                {**result, "would_deactivate": [a.login for a in plan.actions if "deactivated" in a.outcomes], "active": active})
        if ratio > self.threshold():  # --confirm past the safeguard: the role `held approve` needs
            self.access.authorise(None, Action.CONFIRM)

    @staticmethod
    def _result(plan: ImportPlan) -> dict:
        return {"source": plan.source, **plan.summary()}

    def apply(self, plan: ImportPlan, *, source_kind: str, attributes: list[str], create_source: bool = False,
              extra: Callable[[Change], dict] | None = None, source_updates: dict | None = None) -> None:
        """Every action of the plan in one transaction, each user change audited and its apps queued.

        ``extra(tx)``: more of the same change, after the users (an LDAP import's groups); what it
        returns goes into the run's audit event.  ``source_updates``: fields to set on the source.
        """
        now = utc_now_iso()
        with self.changes(Action.MANAGE_SOURCES) as tx:
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
                tx.audit("user.import", action.login, before, {**after, "source": plan.source, "lifecycle": list(action.lifecycle)})
                tx.note_user_change(user_id, attributes=set(action.changes) if before else None)
            more = extra(tx) if extra is not None else {}
            summary = {k: v for k, v in plan.summary().items() if k != "rejected"}
            source = {**source, "attributes": sorted(set(source.get("attributes", [])) | set(attributes)),
                      "last_run": {"time": now, "summary": {**summary, **more}}, **(source_updates or {})}
            tx.put(SOURCES, plan.source, source)
            tx.audit("import.run", plan.source, None, {**self._result(plan), **more})


# -- LDAP entries as import rows -------------------------------------------------------------


def ldap_settings(settings: dict[str, Any]) -> LdapSettings:
    """A source's stored settings as the connector's LdapSettings (InvalidInput naming what is wrong)."""
    from provtui.connectors.ldap import LdapSettings

    values = {k: v for k, v in settings.items() if k in _LDAP_FIELDS}
    if "disabled_bases" in values:
        values["disabled_bases"] = tuple(values["disabled_bases"])
    try:
        return LdapSettings(**values)
    except (TypeError, ValueError) as error:
        text = str(error)
        field_name = next((f"--{f.replace('_', '-')}" for f in ("uri", "flavor", "password_env", "page_size", "timeout", "tls")
                           if text.startswith(f)), "settings")
        raise InvalidInput(field_name, text) from None


def ldap_rows(users: list[LdapUser], settings: LdapSettings) -> tuple[ParsedFile, dict[int, str]]:
    """The entries as a ParsedFile for ``plan_import``, checked as ``parse_csv`` checks cells; and line -> DN.

    An entry's "line" is its position in the read (1-based); its "column" the LDAP attribute at fault.
    """
    from provtui.connectors.ldap import USER_ACCOUNT_CONTROL

    attribute_map = settings.effective_attribute_map
    keys = tuple(attribute_map)
    columns = {key: tuple(names) for key, names in attribute_map.items()}
    login_attribute = columns["login"][0]
    status_column = USER_ACCOUNT_CONTROL if settings.flavor == "ad" else None
    rows: list[Row] = []
    rejections: list[Rejection] = []
    dns: dict[int, str] = {}
    by_login: dict[str, list[int]] = {}

    def reject(line: int, column: str | None, reason: str, profile: dict) -> None:
        rejections.append(Rejection(line, column, reason, frozenset(str(v).strip().lower() for v in profile.values() if v)))

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
            profile["login"] = validate_login(profile["login"] or "")
        except InvalidInput as error:
            reject(line, login_attribute, error.message, profile)
            continue
        email = profile.get("email")
        if email is not None and not _EMAIL.match(email):
            reject(line, columns.get("email", ("email",))[0], f"{email[:80]!r} is not an email address", profile)
            continue
        by_login.setdefault(profile["login"], []).append(len(rows))
        intent = Intent.DEACTIVATED if user.disabled else Intent.ACTIVE
        rows.append(Row(line, profile["login"], profile, intent, "disabled" if user.disabled else "enabled"))
    duplicated = {i for positions in by_login.values() if len(positions) > 1 for i in positions}
    if duplicated:
        for position in sorted(duplicated):
            row = rows[position]
            others = ", ".join(dns[rows[p].line] for p in by_login[row.login] if p != position)
            reject(row.line, login_attribute, f"{login_attribute} {row.login!r} is also the login of {others}", row.profile)
        rows = [row for position, row in enumerate(rows) if position not in duplicated]
    rejections.sort(key=lambda r: r.line)
    parsed = ParsedFile(rows=tuple(rows), rejections=tuple(rejections), columns=columns, status_column=status_column,
                        key="login", login_derived=False)
    return parsed, dns


def _accepted_logins(parsed: ParsedFile, plan: ImportPlan) -> set[str]:
    rejected = {r.line for r in plan.rejected}
    return {row.login for row in parsed.rows if row.line not in rejected}


class DnIndex:
    """DN -> login: DNs as the server spells them first (a dict lookup), normalised ones when that misses."""

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self._normalised: dict[str, str] | None = None

    def add(self, dn: str, login: str) -> None:
        self.exact[dn] = login
        if self._normalised is not None:
            self._normalised[_normalise_dn(dn)] = login

    def get(self, dn: str) -> str | None:
        login = self.exact.get(dn)
        if login is None:
            if self._normalised is None:
                self._normalised = {_normalise_dn(d): v for d, v in self.exact.items()}
            login = self._normalised.get(_normalise_dn(dn))
        return login


def _normalise_dn(dn: str) -> str:
    from provtui.connectors.ldap import normalise_dn

    return normalise_dn(dn)


def _flatten_groups(groups: list[LdapGroup], index: DnIndex) -> dict[str, set[str]]:
    """normalised group DN -> member logins, members of member groups included (cycles are fine)."""
    from provtui.connectors.ldap import normalise_dn

    group_keys = {normalise_dn(g.dn) for g in groups}
    direct: dict[str, tuple[set[str], list[str]]] = {}
    for group in groups:
        logins: set[str] = set()
        subgroups: list[str] = []
        for dn in group.member_dns:
            login = index.get(dn)
            if login is not None:
                logins.add(login)
            else:
                key = normalise_dn(dn)
                if key in group_keys:
                    subgroups.append(key)
        direct[normalise_dn(group.dn)] = (logins, subgroups)
    flat: dict[str, set[str]] = {}
    for key in direct:
        seen, stack, members = {key}, [key], set()
        while stack:
            logins, subgroups = direct[stack.pop()]
            members |= logins
            for sub in subgroups:
                if sub not in seen and sub in direct:
                    seen.add(sub)
                    stack.append(sub)
        flat[key] = members
    return flat


def _source_members(reader: Any, group_id: str, via: str) -> dict[str, str]:
    """login -> user id of the group's members by ``via``."""
    members = {}
    for key in reader.lookup(MEMBERS, "group", group_id):
        doc = reader.get(MEMBERS, key)
        if doc and doc.get("via") == via:
            user = reader.get(USERS, doc["user"])
            if user is not None:
                members[user["login"]] = doc["user"]
    return members


@dataclass
class GroupOp:
    """One source group's change.  action: create, update, unchanged, removed (gone from the directory), skipped."""

    action: str
    dn: str
    name: str
    group_id: str | None = None
    description: str = ""
    ref: dict = field(default_factory=dict)
    add: list[str] = field(default_factory=list)  # logins
    remove: list[str] = field(default_factory=list)
    rename: str | None = None  # the old name, when renamed
    changed: bool = True  # update: the group doc itself changes
    reason: str = ""
    user_ids: dict[str, str] = field(default_factory=dict)  # login -> user id ("" : created by this import)

    def as_dict(self) -> dict:
        out = {"action": self.action, "group": self.name, "dn": self.dn, "add": self.add, "remove": self.remove}
        if self.rename:
            out["renamed_from"] = self.rename
        if self.reason:
            out["reason"] = self.reason
        return out


def _group_counts(ops: list[GroupOp]) -> dict:
    counts = {"created": 0, "updated": 0, "unchanged": 0, "removed": 0, "skipped": 0, "members_added": 0, "members_removed": 0}
    for op in ops:
        if op.action == "update" and not op.changed:
            counts["unchanged" if not (op.add or op.remove) else "updated"] += 1
        else:
            counts[{"create": "created", "update": "updated", "unchanged": "unchanged", "removed": "removed",
                    "skipped": "skipped"}[op.action]] += 1
        counts["members_added"] += len(op.add)
        counts["members_removed"] += len(op.remove)
    return counts


# -- app import ------------------------------------------------------------------------------


def remote_email(attributes: dict[str, Any]) -> str | None:
    """A remote account's email: the work one, else the first other typed one."""
    work = attributes.get('emails[type eq "work"].value')
    if isinstance(work, str) and work.strip():
        return work.strip()
    for key, value in attributes.items():
        if key.startswith("emails[") and key.endswith("].value") and isinstance(value, str) and value.strip():
            return value.strip()
    return None


@dataclass
class Link:
    remote: RemoteUser
    user_id: str
    login: str
    entitled: bool
    entry: dict


@dataclass
class LinkPlan:
    linked: list[Link] = field(default_factory=list)
    already_linked: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    orphans: list[dict] = field(default_factory=list)

    def result(self, app: str, match: str) -> dict:
        """Counts and the accounts of each kind (the CLI's JSON)."""
        linked = [{**link.entry, "login": link.login, "entitled": link.entitled} for link in self.linked]
        by_name = lambda e: (str(e.get("userName") or ""), e["remote_id"])
        return {
            "app": app, "match": match,
            "accounts": len(self.linked) + len(self.already_linked) + len(self.conflicts) + len(self.orphans),
            "linked": len(self.linked), "already_linked": len(self.already_linked), "conflicts": len(self.conflicts),
            "orphans": len(self.orphans),
            "not_entitled": sorted(link.login for link in self.linked if not link.entitled),
            "details": {"linked": sorted(linked, key=by_name), "conflicts": sorted(self.conflicts, key=by_name),
                        "orphans": sorted(self.orphans, key=by_name),
                        "already_linked": sorted(self.already_linked, key=by_name)},
        }
