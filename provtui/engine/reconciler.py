"""The reconciler: turns dirty (app, user) keys into downstream calls.

For each key it computes, at execution time, the account the user should have
(domain.plan) and the difference from the last known downstream state, and
sends only that.  Keys are claimed with a lease in the store so a console and a
worker on one store never work on the same key at once; results are committed
in small batches.  A key dirtied again while its call was in flight stays dirty
and is reconciled once more against the fresh state.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from provtui.clock import parse_iso, utc_now, utc_now_iso
from provtui.connectors.scim import Conflict, DownstreamError, ScimConnector
from provtui.directory import ACCOUNTS, APPS, DIRTY, TASKS, USERS, Directory, account_key
from provtui.domain.apps import AppKind
from provtui.domain.plan import AccountChange, Action, KnownAccount, plan_account
from provtui.store import Store

ENGINE_ACTOR = "provtui-engine"
LEASE_SECONDS = 120
CLAIM_BATCH = 500
FLUSH_EVERY = 100  # results per commit, at most
FLUSH_SECONDS = 0.25
MAX_ATTEMPTS = 5  # per key, per run, for retryable faults
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation", default=None)


class ConfigError(DownstreamError):
    """The app cannot be reached as configured (e.g. its token variable is unset)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.status = None
        self.message = message
        self.retryable = False
        self.retry_after = None


@dataclass
class SyncReport:
    done: int = 0
    failed: list[dict] = field(default_factory=list)  # {"app","user","action","error"}
    calls: int = 0
    retries: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Outcome:
    key: str
    token: str
    account: dict | None
    task: dict | None = None
    failure: dict | None = None


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # can't tell: trust the lease's expiry
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Reconciler:
    def __init__(self, store: Store, directory: Directory | None = None,
                 connector_factory: Callable[[dict], ScimConnector] | None = None,
                 sleep: Callable[[float], object] = asyncio.sleep):
        self.store = store
        self.directory = directory or Directory(store)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._connector_factory = connector_factory or self._scim_connector
        self._connectors: dict[str, ScimConnector] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._calls: list[dict] = []  # downstream-call audit events waiting for the next flush
        self._sleep = sleep

    # -- connectors ------------------------------------------------------------------

    def _scim_connector(self, app: dict) -> ScimConnector:
        token = os.environ.get(app["token_env"] or "")
        if not token:
            raise ConfigError(f"environment variable {app['token_env']} (the app's bearer token) is not set")
        name = app["name"]

        def on_call(method: str, path: str, status: int | None, duration_ms: float) -> None:
            self._calls.append({
                "actor": ENGINE_ACTOR, "action": "downstream.call", "target": name, "before": None,
                "after": {"method": method, "path": path, "status": status, "duration_ms": round(duration_ms, 1)},
                "correlation": _correlation.get(),
            })

        concurrency = int(app["settings"].get("concurrency") or 4)
        return ScimConnector(app["scim_url"], token, on_call=on_call, max_connections=concurrency)

    def _connector(self, app: dict) -> ScimConnector:
        connector = self._connectors.get(app["id"])
        if connector is None:
            connector = self._connectors[app["id"]] = self._connector_factory(app)
        return connector

    async def aclose(self) -> None:
        for connector in self._connectors.values():
            await connector.aclose()
        self._connectors.clear()

    # -- the loop --------------------------------------------------------------------

    async def run_until_idle(self) -> SyncReport:
        """Reconcile every dirty key this process can claim, until none is left."""
        report = SyncReport()
        while True:
            self.store.refresh()
            claimed = self._claim()
            if not claimed:
                return report
            await self._run_batch(claimed, report)

    def _claim(self) -> list[dict]:
        now = utc_now()
        until = (now + timedelta(seconds=LEASE_SECONDS)).isoformat()
        claimed = []
        with self.store.transaction() as tx:
            for key, doc in list(self.store.all(DIRTY).items()):
                lease = doc.get("lease")
                if lease and lease["owner"] != self.owner and parse_iso(lease["until"]) > now and _owner_alive(lease["owner"]):
                    continue
                doc = {**doc, "lease": {"owner": self.owner, "until": until}}
                tx.put(DIRTY, key, doc)
                claimed.append({**doc, "key": key})
                if len(claimed) >= CLAIM_BATCH:
                    break
        return claimed

    async def _run_batch(self, claimed: list[dict], report: SyncReport) -> None:
        outcomes: list[_Outcome] = []
        last_flush = time.monotonic()
        pending = {asyncio.ensure_future(self._reconcile(item, report)) for item in claimed}
        while pending:
            done, pending = await asyncio.wait(pending, timeout=FLUSH_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcomes.append(task.result())
            if len(outcomes) >= FLUSH_EVERY or time.monotonic() - last_flush >= FLUSH_SECONDS:
                self._flush(outcomes, report)
                outcomes = []
                last_flush = time.monotonic()
        self._flush(outcomes, report)

    def _flush(self, outcomes: list[_Outcome], report: SyncReport) -> None:
        if not outcomes and not self._calls:
            return
        calls, self._calls = self._calls, []
        with self.store.transaction() as tx:
            for outcome in outcomes:
                if outcome.account is not None:
                    tx.put(ACCOUNTS, outcome.key, outcome.account)
                if outcome.task is not None:
                    tx.put(TASKS, outcome.task["id"], outcome.task)
                dirty = tx.get(DIRTY, outcome.key)
                if dirty is not None:
                    if dirty["token"] == outcome.token:
                        tx.delete(DIRTY, outcome.key)
                    else:  # changed again while we worked: leave it for the next pass
                        tx.put(DIRTY, outcome.key, {k: v for k, v in dirty.items() if k != "lease"})
                if outcome.failure:
                    report.failed.append(outcome.failure)
                    tx.audit({"actor": ENGINE_ACTOR, "action": "downstream.failed", "target": outcome.failure["app"],
                              "before": None, "after": outcome.failure, "correlation": outcome.account and outcome.account.get("correlation")})
                else:
                    report.done += 1
            for event in calls:
                tx.audit(event)
        report.calls += len(calls)

    # -- one key ---------------------------------------------------------------------

    async def _reconcile(self, item: dict, report: SyncReport) -> _Outcome:
        key, app_id, user_id = item["key"], item["app"], item["user"]
        _correlation.set(item.get("correlation"))
        app = self.store.get(APPS, app_id)
        account = self.store.get(ACCOUNTS, key)
        user = self.store.get(USERS, user_id)
        if app is None:  # the app was removed: nothing to reconcile
            return _Outcome(key, item["token"], None)
        desired = self.directory.desired(app_id, user_id)
        if app["kind"] == AppKind.MANUAL:
            return self._manual(item, app, user, account, desired)
        known = KnownAccount.from_doc(account)
        change = plan_account(desired, known)
        base = dict(account or {"app": app_id, "user": user_id, "remote_id": None, "active": False, "attributes": {}, "state": "none"})
        base["correlation"] = item.get("correlation")
        if change is None:
            if base.get("state") == "failed":
                base["state"] = "active" if base.get("active") else ("deactivated" if base.get("remote_id") else "none")
                base["last_error"] = None
            return _Outcome(key, item["token"], base if account or base["state"] != "none" else None)
        semaphore = self._semaphores.setdefault(app_id, asyncio.Semaphore(int(app["settings"].get("concurrency") or 4)))
        attempts = 0
        while True:
            attempts += 1
            try:
                async with semaphore:
                    result = await self._apply(app, known, change, desired.attributes)
                base.update(result)
                base.update(state="active" if base["active"] else "deactivated", last_error=None, attempts=0,
                            last_sync=utc_now_iso(), last_action=change.action.value)
                return _Outcome(key, item["token"], base)
            except DownstreamError as error:
                if error.retryable and attempts < MAX_ATTEMPTS:
                    report.retries += 1
                    await self._sleep(self._backoff(attempts, error.retry_after))
                    continue
                base.update(state="failed", last_error=error.message, attempts=(base.get("attempts") or 0) + attempts,
                            last_sync=utc_now_iso(), last_action=change.action.value)
                failure = {"app": app["name"], "user": user["login"] if user else user_id, "action": change.action.value,
                           "status": error.status, "error": error.message}
                return _Outcome(key, item["token"], base, failure=failure)

    @staticmethod
    def _backoff(attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, BACKOFF_CAP)
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)  # jitter, so retries don't arrive in step

    async def _apply(self, app: dict, known: KnownAccount | None, change: AccountChange, attributes: dict) -> dict:
        """Send one change; returns the new known state (remote_id, active, attributes)."""
        connector = self._connector(app)
        if change.action == Action.CREATE:
            remote = await connector.find_user(external_id=attributes.get("externalId"))
            if remote is None:
                try:
                    remote = await connector.create_user(attributes, active=True)
                    return {"remote_id": remote.id, "active": True, "attributes": dict(attributes)}
                except Conflict:
                    # Someone holds the userName already: link it rather than make a duplicate.
                    remote = await connector.find_user(user_name=attributes.get("userName"))
                    if remote is None:
                        raise
            # An account existed: link it, then bring it to the desired state.
            changed = {k: v for k, v in attributes.items() if remote.attributes.get(k) != v}
            if changed or not remote.active:
                await connector.update_user(remote.id, changed, full=attributes, active=True)
            return {"remote_id": remote.id, "active": True, "attributes": dict(attributes), "linked": True}
        assert known is not None and known.remote_id is not None
        if change.action == Action.DEACTIVATE:
            await connector.update_user(known.remote_id, {}, full={**known.attributes}, active=False)
            return {"active": False}
        active = True if change.action == Action.REACTIVATE else None
        await connector.update_user(known.remote_id, change.attributes, full=attributes, active=active)
        return {"active": True, "attributes": dict(attributes)}

    # -- manual apps: tasks instead of calls ----------------------------------------

    def _manual(self, item: dict, app: dict, user: dict | None, account: dict | None, desired) -> _Outcome:
        """Open (or cancel) a task for an admin; the account follows when the task is done."""
        key = item["key"]
        base = dict(account or {"app": app["id"], "user": item["user"], "remote_id": None, "active": False, "attributes": {}, "state": "none"})
        open_task = self.store.get(TASKS, base["task"]) if base.get("task") else None
        if open_task is not None and open_task["state"] != "open":
            open_task = None
        wanted = "provision" if desired.active else "deprovision"
        has_access = bool(base.get("active"))
        if desired.active == has_access:
            if open_task is not None:  # e.g. the user came back before the deprovision was done
                base.update(task=None, state="active" if has_access else base["state"])
                return _Outcome(key, item["token"], base, task={**open_task, "state": "cancelled", "closed": utc_now_iso()})
            return _Outcome(key, item["token"], account)
        if not desired.active and not base.get("remote_id"):
            if open_task is not None:  # provision never happened: nothing to take away
                base.update(task=None)
                return _Outcome(key, item["token"], base, task={**open_task, "state": "cancelled", "closed": utc_now_iso()})
            return _Outcome(key, item["token"], account)
        if open_task is not None and open_task["action"] == wanted:
            return _Outcome(key, item["token"], account)
        task = {"id": os.urandom(4).hex(), "app": app["id"], "user": item["user"], "action": wanted, "state": "open",
                "created": utc_now_iso(), "correlation": item.get("correlation")}
        base.update(task=task["id"], state="task-open", correlation=item.get("correlation"))
        return _Outcome(key, item["token"], base, task=task)
