"""The invariants of a provisioned organisation, checked against the store and the live apps.

- every active user entitled to an app has exactly one active account there, with the mapped attributes;
- no active account downstream belongs to a suspended, deactivated or unentitled user, unless that
  change is still queued or failed (and so visible);
- no duplicate accounts (two accounts with one externalId or userName);
- every manual app's missing provisions and deprovisions are open tasks;
- the audit trail's hash chain verifies up to the store's head;
- every change a writer was told succeeded (``acknowledged``) left its audit event, and what it set
  still holds unless a later change to the same thing may have replaced it.

Used by the soak and by tests; `check()` returns the violations, an empty list when all hold.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from provtui.connectors.scim import ScimConnector
from provtui.domain.apps import AppKind
from provtui.domain.errors import InvalidInput
from provtui.model.audit_trail import verify_chain
from provtui.model.schema import ACCOUNTS, APPS, ASSIGNMENTS, DIRTY, GROUPS, RULES, TASKS, USERS, account_key, assignment_key, user_subject


@dataclass
class InvariantReport:
    checked_users: int = 0
    checked_accounts: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


async def check(service, acknowledged: Iterable[dict] = ()) -> InvariantReport:
    """Compare what should be with what is, app by app (SCIM apps are read in full); see check_acknowledged."""
    store = service.store
    report = InvariantReport()
    service.refresh()
    users = store.all(USERS)
    report.checked_users = len(users)
    for app in sorted(store.all(APPS).values(), key=lambda a: a["name"]):
        if app["kind"] == AppKind.SCIM:
            await _check_scim_app(service, app, report)
        elif app["kind"] == AppKind.MANUAL:
            _check_manual_app(service, app, report)
    chain = verify_chain(store.audit_events(), expected_head=store.audit_head)
    if not chain.ok:
        report.violations.append(f"audit trail: {chain.first_broken}")
    report.violations += check_acknowledged(service, acknowledged)
    return report


def check_acknowledged(service, changes: Iterable[dict]) -> list[str]:
    """Acknowledged changes, each ``{"audit": [action, target], "holds": fact or None}``, are not lost.

    Audit events are counted per (action, target): n acknowledged changes need n events.  A fact is
    what must be true now: {"user", "state"}, {"user", "attribute", "value"}, {"user", "group",
    "manual_member"}, {"user", "app", "assigned"}, {"rule", "expr"}, {"group", "exists"} or
    {"task", "state"}; None when a later change may have replaced it.
    """
    store, directory = service.store, service.directory
    changes = list(changes)
    if not changes:
        return []
    audited = Counter((e["action"], e["target"]) for e in store.audit_events())
    wanted = Counter(tuple(c["audit"]) for c in changes)
    violations = [
        f"acknowledged {n} x {action} {target!r}, audited {audited[(action, target)]}"
        for (action, target), n in sorted(wanted.items())
        if audited[(action, target)] < n
    ]
    users = {u["login"]: u for u in store.all(USERS).values()}
    for change in changes:
        fact = change["holds"]
        if fact is None:
            continue
        user = users.get(fact.get("user"))
        if "user" in fact and user is None:
            violations.append(f"acknowledged {change['audit'][0]} of {fact['user']}: no such user")
            continue
        if "state" in fact and "user" in fact:
            actual = user["state"]
        elif "attribute" in fact:
            actual = user["profile"].get(fact["attribute"])
        elif "manual_member" in fact:
            group = _named(store, GROUPS, fact["group"])
            actual = group is not None and "manual" in directory.membership_paths(group["id"], user["id"])
        elif "assigned" in fact:
            app = _named(store, APPS, fact["app"])
            actual = app is not None and store.get(ASSIGNMENTS, assignment_key(app["id"], user_subject(user["id"]))) is not None
        elif "expr" in fact:
            actual = (_named(store, RULES, fact["rule"]) or {}).get("expr")
        elif "exists" in fact:
            actual = _named(store, GROUPS, fact["group"]) is not None
        else:
            actual = (store.get(TASKS, fact["task"]) or {}).get("state")
        expected = next(v for k, v in fact.items() if k in ("state", "value", "manual_member", "assigned", "expr", "exists"))
        if actual != expected:
            violations.append(f"acknowledged {change['audit'][0]} {change['audit'][1]!r} is lost: {fact}, but it is {actual!r}")
    return violations


def _named(store, table: str, name: str) -> dict | None:
    key = next(iter(store.lookup(table, "name", name)), None)
    return store.get(table, key) if key is not None else None


def _visible(store, app_id: str, user_id: str) -> bool:
    """A pending or failed change: the difference is known and shown, not silent."""
    key = account_key(app_id, user_id)
    account = store.get(ACCOUNTS, key) or {}
    return store.get(DIRTY, key) is not None or account.get("state") == "failed"


async def _check_scim_app(service, app: dict, report: InvariantReport) -> None:
    store, directory = service.store, service.directory
    token = os.environ.get(app["token_env"] or "")
    if not token:
        report.violations.append(f"{app['name']}: cannot check, ${app['token_env']} is not set")
        return
    async with ScimConnector(app["scim_url"], token) as connector:
        remote = [user async for user in connector.list_users(page_size=500)]
    report.checked_accounts += len(remote)
    by_external = {}
    for kind, counts in (
        ("externalId", Counter(u.attributes.get("externalId") for u in remote)),
        ("userName", Counter(str(u.attributes.get("userName", "")).lower() for u in remote)),
    ):
        for value, n in counts.items():
            if value and n > 1:
                report.violations.append(f"{app['name']}: {n} accounts with {kind} {value!r}")
    for user in remote:
        if user.attributes.get("externalId"):
            by_external[user.attributes["externalId"]] = user
    for user_id, user in store.all(USERS).items():
        if app["id"] not in directory.apps_touching(user_id) and user_id not in by_external:
            continue
        try:
            desired = directory.desired(app["id"], user_id)
        except InvalidInput:
            if not _visible(store, app["id"], user_id):
                report.violations.append(f"{app['name']}: {user['login']}'s mapping fails and nothing shows it")
            continue
        account = by_external.get(user_id)
        if _visible(store, app["id"], user_id):
            continue
        if desired.active:
            if account is None or not account.active:
                report.violations.append(f"{app['name']}: {user['login']} is entitled but has no active account")
                continue
            wrong = {
                k: (v, account.attributes.get(k))
                for k, v in desired.attributes.items()
                if k not in desired.create_only and account.attributes.get(k) != v and not (v is None and k not in account.attributes)
            }
            if wrong:
                report.violations.append(f"{app['name']}: {user['login']}'s account differs: {wrong}")
        elif account is not None and account.active:
            report.violations.append(f"{app['name']}: {user['login']} ({user['state']}) still has an active account")
    known = set(store.all(USERS))
    for external_id, account in by_external.items():
        if external_id not in known and account.active:
            report.violations.append(f"{app['name']}: an active account for an unknown user ({external_id})")


def _check_manual_app(service, app: dict, report: InvariantReport) -> None:
    store, directory = service.store, service.directory
    open_tasks = {(t["user"], t["action"]) for t in store.all(TASKS).values() if t["app"] == app["id"] and t["state"] == "open"}
    for user_id, user in store.all(USERS).items():
        if app["id"] not in directory.apps_touching(user_id):
            continue
        desired = directory.desired(app["id"], user_id)
        account = store.get(ACCOUNTS, account_key(app["id"], user_id)) or {}
        has = bool(account.get("active"))
        if desired.active == has or _visible(store, app["id"], user_id):
            continue
        wanted = "provision" if desired.active else "deprovision"
        if not desired.active and not account.get("remote_id"):
            continue  # never provisioned: nothing to take away
        if (user_id, wanted) not in open_tasks:
            report.violations.append(f"{app['name']}: {user['login']} needs a {wanted} task and has none open")
