"""The invariants of a provisioned organisation, checked against the store and the live apps.

- every active user entitled to an app has exactly one active account there, with the mapped attributes;
- no active account downstream belongs to a suspended, deactivated or unentitled user, unless that
  change is still queued or failed (and so visible);
- no duplicate accounts (two accounts with one externalId or userName);
- every manual app's missing provisions and deprovisions are open tasks;
- the audit trail's hash chain verifies up to the store's head.

Used by the soak and by tests; `check()` returns the violations, an empty list when all hold.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from provtui.audit_trail import verify_chain
from provtui.connectors.scim import ScimConnector
from provtui.directory import ACCOUNTS, APPS, DIRTY, TASKS, USERS, account_key
from provtui.domain.apps import AppKind
from provtui.domain.errors import InvalidInput


@dataclass
class InvariantReport:
    checked_users: int = 0
    checked_accounts: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


async def check(service) -> InvariantReport:
    """Compare what should be with what is, app by app (SCIM apps are read in full)."""
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
    return report


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
    for kind, counts in (("externalId", Counter(u.attributes.get("externalId") for u in remote)),
                         ("userName", Counter(str(u.attributes.get("userName", "")).lower() for u in remote))):
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
            wrong = {k: (v, account.attributes.get(k)) for k, v in desired.attributes.items()
                     if k not in desired.create_only and account.attributes.get(k) != v and not (v is None and k not in account.attributes)}
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
