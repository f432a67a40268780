"""The reconciler: turns dirty (app, user) keys into downstream calls.

For each key it computes, at execution time, the account the user should have
(domain.plan) and the difference from the last known downstream state, and
sends only that.  Keys are claimed with a lease in the store so a console and a
worker on one store never work on the same key at once; results are committed
in small batches.  A key dirtied again while its call was in flight stays dirty
and is reconciled once more against the fresh state.

Faults: retryable ones (timeouts, dropped connections, 429, 5xx, malformed
replies) are retried with exponential backoff and jitter, honouring
Retry-After; an app whose calls keep failing that way is quarantined (paused,
its work kept queued) until an admin resumes it.  A run given a time budget
(``run_until_idle(max_wait=...)``, `provtui sync --max-wait`) goes on retrying
the keys it deferred, as each comes due, until all is done or the budget would
be overrun.  A 401 or 403 is about the app's credentials, not one account: the
app is marked "credentials rejected" (paused, the server's message kept), its
accounts stay queued, and later runs probe it with one call (a sync at once, a
worker or console after a growing back-off) until the credentials work again.
An app whose record names no secret (its endpoint was moved without a new one:
MissingSecretReference) is paused the same way, once, with a message naming the
command that fixes it; no call is sent.  A change to an app's record (its
endpoint, secret reference or connection settings: connection_fingerprint) has
the connector built again before the next call, and a paused app probed at once.
Other 4xx fail the account at once with the server's message; they are retried
on request (`provtui retry`).

A run is authorised: the service's engine resolves, at the start of each run,
the apps its actor may provision (all for a super admin, their own for an app
admin, NotAllowed otherwise) and touches only those; every audit event it writes
names the actor who started it (``run_by``) beside the engine.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import random
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from provtui.clock import parse_iso, utc_now, utc_now_iso
from provtui.connectors.base import Conflict, Connector, DownstreamError, GroupPush, OnCall, PasswordSync
from provtui.connectors.config import ConfigError, MissingSecretReference, connection_fingerprint, connector_for
from provtui.directory import (
    ACCOUNTS,
    APP_HEALTH,
    APPS,
    DIRTY,
    PUSHED_GROUPS,
    PUSHES,
    TASKS,
    USERS,
    Directory,
    account_key,
    group_key,
)
from provtui.domain.apps import AppKind
from provtui.domain.errors import InvalidInput
from provtui.domain.group_push import GroupAction, GroupChange, KnownGroup, plan_group
from provtui.domain.plan import AccountChange, Action, DeletionPolicy, KnownAccount, plan_account
from provtui.engine.calls import ENGINE_ACTOR, call_event
from provtui.engine.limits import AppLimits
from provtui.engine.notifier import DigestReport, send_task_digests
from provtui.pending import queue
from provtui.store import Store

LEASE_SECONDS = 120
CLAIM_BATCH = 500
FLUSH_EVERY = 200  # results per commit, at most
FLUSH_SECONDS = 0.25
DIGEST_EVERY_SECONDS = 60.0  # while the queue stays busy, manual apps' new tasks are mailed at least this often
MAX_ATTEMPTS = 5  # per key, per run, for retryable faults
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
QUARANTINE_AFTER = 10  # consecutive keys failed by app-wide faults
CREDENTIALS_REJECTED = (401, 403)  # the app refuses our credentials: pause the app, keep its accounts queued
PROBE_BASE = 5.0  # a worker's first probe of an app whose credentials were rejected, in seconds; doubling...
PROBE_CAP = 300.0  # ...up to this
PROBE_ID = "provtui-credentials-probe"  # the externalId a probe looks up: one authenticated read, no change

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation", default=None)
# The login a call is made for: names the user in its audit event, so the user's history shows
# every call made for them (creates and LDAP operations too, whose paths name no account id).
_call_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_user", default=None)


def app_wide(error: DownstreamError) -> bool:
    """A fault of the app as a whole (down, overloaded, refusing us), not of one user's data."""
    return error.status is None or error.status in (401, 403, 429) or error.status >= 500


@dataclass
class SyncReport:
    done: int = 0
    failed: list[dict] = field(default_factory=list)  # {"app","user","action","status","error"}
    deferred: list[dict] = field(default_factory=list)  # transient faults outlasted the run: still queued ("retry_at")
    calls: int = 0
    retries: int = 0
    quarantined: list[str] = field(default_factory=list)
    # apps paused because they refused our credentials (401/403): {"app","status","error","since","next_probe"}
    credentials_rejected: list[dict] = field(default_factory=list)
    digests: DigestReport | None = None  # manual apps' task emails sent at the end of the run

    @property
    def ok(self) -> bool:
        return (not self.failed and not self.deferred and not self.quarantined and not self.credentials_rejected
                and (self.digests is None or self.digests.ok))

    def note_rejected(self, entry: dict) -> None:
        """One entry per app: the latest word on its credentials."""
        self.credentials_rejected = [e for e in self.credentials_rejected if e["app"] != entry["app"]] + [entry]


@dataclass
class _Outcome:
    key: str
    token: str
    writes: list[tuple[str, str, dict | None]] = field(default_factory=list)  # (table, key, doc or None to delete)
    follow_up: list[tuple[str, dict]] = field(default_factory=list)  # more work this result implies
    failure: dict | None = None
    app_fault: bool = False  # the failure was app-wide: it counts towards quarantine
    skipped: bool = False  # not attempted (app quarantined meanwhile): leave it queued
    credentials: dict | None = None  # the app refused our credentials ({"status","error"}): skipped, the app paused
    not_before: str | None = None  # a transient fault outlasted this run: stay queued, try again after this
    # (table, key, doc as read): the writes are decisions made on these reads, with no call sent; if any changed
    # before the result is written (an admin closed the task meanwhile), they are dropped and the key re-planned
    expects: list[tuple[str, str, dict | None]] = field(default_factory=list)


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


def _blank_account(app_id: str, user_id: str) -> dict:
    return {"app": app_id, "user": user_id, "remote_id": None, "active": False, "attributes": {}, "state": "none"}


class Reconciler:
    def __init__(self, store: Store, directory: Directory | None = None,
                 connector_factory: Callable[[dict], Connector] | None = None,
                 sleep: Callable[[float], object] = asyncio.sleep,
                 guard: AbstractContextManager | None = None, notify: bool = True,
                 run_by: str | None = None, scope: Callable[[], frozenset[str] | None] | None = None):
        """``run_by``: who started the run, named beside the engine in its audit events.  ``scope``: called
        at the start of each run, the apps it may touch (None: all); raises NotAllowed if the run may not go."""
        self.store = store
        self.directory = directory or Directory(store)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        # Held around every store access, never across a network wait: the console
        # passes the lock its own threads take, so they never see a half-applied commit.
        self.guard = guard or nullcontext()
        self.notify = notify  # email manual apps' new tasks at the end of each run
        self._connector_factory = connector_factory or self._default_connector
        self._connectors: dict[str, Connector] = {}
        self._built_from: dict[str, str] = {}  # app id -> connection_fingerprint of the record its connector was built from
        self._retired: list[Connector] = []  # built from an older record: closed once no call can be using them
        self._limits: dict[str, AppLimits] = {}
        self._calls: list[dict] = []  # downstream-call audit events waiting for the next flush
        self._quarantined: set[str] = set()
        self._rejected: set[str] = set()  # apps whose credentials were refused: paused, probed now and then
        # app id -> (the refusal seen, the fingerprint of the record refused, whether it names no secret), written
        # at the next flush
        self._rejections: dict[str, tuple[dict, str, bool]] = {}
        self.run_by = run_by
        self._scope_of = scope
        self._scope: frozenset[str] | None = None  # the apps this run may touch (None: all)
        self._held: set[str] = set()  # keys claimed and not yet flushed
        # keys this run gave up on for now, with their report entries: not claimed again before it ends, unless
        # it has a time budget (then claimed again once due)
        self._deferred: dict[str, dict] = {}
        self._deadline: float | None = None  # time.monotonic() by which a budgeted run ends
        self._one_attempt = False  # a budget of 0: one attempt per key, no retry within the run
        self._lease_until = utc_now()
        self._sleep = sleep
        self._stopping = False
        self.progress: Callable[[int, int], None] | None = None

    # -- connectors ------------------------------------------------------------------

    def _default_connector(self, app: dict) -> Connector:
        """The connector for the app's kind (provtui.connectors.config), its calls audited by this run."""
        return connector_for(app, on_call=self._on_call(app["name"]))

    def _on_call(self, name: str) -> OnCall:
        def on_call(method: str, path: str, status: int | None, duration_ms: float) -> None:
            self._calls.append(call_event(name, method, path, status, duration_ms, user=_call_user.get(),
                                          correlation=_correlation.get(), run_by=self.run_by))

        return on_call

    def _event(self, event: dict) -> dict:
        """An engine audit event, naming who started the run (when known) beside the engine."""
        return event if self.run_by is None else {**event, "run_by": self.run_by}

    def _connector(self, app: dict) -> Connector:
        """The app's connector, built again if the app's record changed since (a new endpoint, secret reference
        or connection setting); other apps' connectors are kept.  Raises what building it raises (ConfigError)."""
        fingerprint = connection_fingerprint(app)
        connector = self._connectors.get(app["id"])
        if connector is not None and self._built_from.get(app["id"]) != fingerprint:
            # the old endpoint and secret are used no more: calls in flight finish, the next ones go to the new one
            self._retired.append(self._connectors.pop(app["id"]))
            connector = None
        if connector is None:
            connector = self._connector_factory(app)
            self._connectors[app["id"]], self._built_from[app["id"]] = connector, fingerprint
        return connector

    async def _close_retired(self) -> None:
        """Close the connectors replaced since (when no call of this engine is in flight)."""
        retired, self._retired = self._retired, []
        for connector in retired:
            await connector.aclose()

    def connector(self, app: dict) -> Connector:
        """The app's connector; its calls are audited at the next flush (or record_calls)."""
        return self._connector(app)

    def record_calls(self) -> None:
        """Write the downstream-call audit events gathered so far."""
        self._flush([], SyncReport())

    async def aclose(self) -> None:
        await self._close_retired()
        for connector in self._connectors.values():
            await connector.aclose()
        self._connectors.clear()
        self._built_from.clear()

    # -- the loop --------------------------------------------------------------------

    async def run_until_idle(self, *, max_wait: float | None = None, probe: bool = False) -> SyncReport:
        """Reconcile every dirty key this process can claim, until none is left.

        ``max_wait`` None: each key gets up to MAX_ATTEMPTS tries for transient faults, then is deferred to a
        later run (the worker's way).  A number of seconds: keys deferred (by this run or an earlier one) are
        tried again as they come due, until nothing is left or the next try would come after the budget; 0
        makes one attempt per key.  ``probe``: probe every app whose credentials were rejected now, rather
        than when its back-off says (a sync does; a worker and the console wait their back-off).
        """
        report = SyncReport()
        self._deferred = {}
        self._deadline = None if max_wait is None else time.monotonic() + max(0.0, max_wait)
        self._one_attempt = max_wait is not None and max_wait <= 0
        last_digest = time.monotonic()
        with self.guard:
            self.store.refresh()
            self._scope = self._scope_of() if self._scope_of is not None else None  # NotAllowed: nothing is touched
            self._mark_due_deletions()
        await self._probe_rejected(report, force=probe)
        await self._close_retired()
        while not self._stopping:
            with self.guard:
                self.store.refresh()
                claimed = self._claim()
                paused = self._quarantined | self._rejected
                total = sum(1 for doc in self.store.all(DIRTY).values() if doc["app"] not in paused and self._in_scope(doc["app"]))
            if not claimed:
                if self._deadline is None:
                    break
                with self.guard:
                    wait = self._next_retry()
                if wait is None:  # nothing more is due within the budget
                    break
                await self._nap(max(wait, 0.05))
                continue
            await self._run_batch(claimed, report, total)
            if self.notify and time.monotonic() - last_digest >= DIGEST_EVERY_SECONDS:
                # a queue that never empties (a busy directory) must not keep admins from their tasks
                await self._send_digests(report)
                last_digest = time.monotonic()
        if self.notify:
            await self._send_digests(report)
        report.deferred = list(self._deferred.values())
        if self._deadline is not None:  # a budgeted run answers for everything still waiting in its scope
            with self.guard:
                report.deferred += self._waiting_deferrals()
        return report

    def _in_scope(self, app_id: str) -> bool:
        return self._scope is None or app_id in self._scope

    async def _nap(self, seconds: float) -> None:
        """Wait (a budgeted run, for its next deferred key to come due), ending early on stop()."""
        end = time.monotonic() + seconds
        while not self._stopping and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))

    def _claimable_later(self, now) -> list[tuple[str, dict]]:
        """Deferred keys (not_before set) this run could claim once due: in scope, app not paused, not another's."""
        paused = self._quarantined | self._rejected
        keys = []
        for key, doc in self.store.all(DIRTY).items():
            if not doc.get("not_before") or doc["app"] in paused or not self._in_scope(doc["app"]):
                continue
            lease = doc.get("lease")
            if lease and lease["owner"] != self.owner and parse_iso(lease["until"]) > now and _owner_alive(lease["owner"]):
                continue
            keys.append((key, doc))
        return keys

    def _next_retry(self) -> float | None:
        """Seconds until the earliest deferred key comes due, if that is within the budget."""
        now = utc_now()
        due = [parse_iso(doc["not_before"]) for _, doc in self._claimable_later(now)]
        if not due:
            return None
        wait = max(0.0, (min(due) - now).total_seconds())
        return wait if time.monotonic() + wait <= self._deadline else None

    def _waiting_deferrals(self) -> list[dict]:
        """Deferred keys this run never got to try (an earlier run's, due after the budget), as report entries."""
        entries = []
        for key, doc in self._claimable_later(utc_now()):
            if key in self._deferred:
                continue
            app = self.store.get(APPS, doc["app"]) or {"name": doc["app"]}
            if "group" in doc:
                who, account = f"group:{doc['group']}", self.store.get(PUSHED_GROUPS, key) or {}
            else:
                user = self.store.get(USERS, doc["user"])
                who, account = user["login"] if user else doc["user"], self.store.get(ACCOUNTS, key) or {}
            entries.append({"app": app["name"], "user": who, "action": account.get("last_action") or "sync", "status": None,
                            "error": account.get("last_error") or "deferred by an earlier run", "attempts": 0,
                            "retry_at": doc["not_before"]})
        return entries

    async def _send_digests(self, report: SyncReport) -> None:
        """Email each manual app's new tasks, one digest per app (network I/O, off the loop)."""
        digests = await asyncio.to_thread(send_task_digests, self.store, guard=self.guard, apps=self._scope, run_by=self.run_by)
        if report.digests is None:
            report.digests = digests
        else:
            report.digests.add(digests)

    def _quarantined_apps(self) -> set[str]:
        return {app_id for app_id, health in self.store.all(APP_HEALTH).items() if health.get("quarantined")}

    def _rejected_apps(self) -> set[str]:
        return {app_id for app_id, health in self.store.all(APP_HEALTH).items() if health.get("credentials_rejected")}

    def _claim(self) -> list[dict]:
        now = utc_now()
        until = (now + timedelta(seconds=LEASE_SECONDS)).isoformat()
        # the store decides: an admin may have resumed an app since this process paused it, another process's
        # probe may have found its credentials working again
        self._quarantined = self._quarantined_apps()
        self._rejected = self._rejected_apps()
        paused = self._quarantined | self._rejected
        retry_deferred = self._deadline is not None  # a budgeted run tries its deferred keys again once due
        claimed = []
        with self.store.transaction() as tx:
            for key, doc in list(self.store.all(DIRTY).items()):
                if doc["app"] in paused or not self._in_scope(doc["app"]) or (key in self._deferred and not retry_deferred) \
                        or (doc.get("not_before") and parse_iso(doc["not_before"]) > now):
                    continue
                lease = doc.get("lease")
                if lease and lease["owner"] != self.owner and parse_iso(lease["until"]) > now and _owner_alive(lease["owner"]):
                    continue
                # Someone else held it and never finished: they may have sent a create we never heard back.
                suspect = bool(lease) and lease["owner"] != self.owner
                doc = {**doc, "lease": {"owner": self.owner, "until": until}}
                tx.put(DIRTY, key, doc)
                claimed.append({**doc, "key": key, "suspect": suspect})
                if len(claimed) >= CLAIM_BATCH:
                    break
        self._held = {item["key"] for item in claimed}
        self._lease_until = now + timedelta(seconds=LEASE_SECONDS)
        return claimed

    def _renew_leases(self, tx) -> None:
        """Extend our leases at half-time, so a long batch is never taken over while we work on it."""
        now = utc_now()
        if not self._held or now < self._lease_until - timedelta(seconds=LEASE_SECONDS / 2):
            return
        self._lease_until = now + timedelta(seconds=LEASE_SECONDS)
        until = self._lease_until.isoformat()
        for key in self._held:
            dirty = tx.get(DIRTY, key)
            if dirty is not None and (dirty.get("lease") or {}).get("owner") == self.owner:
                tx.put(DIRTY, key, {**dirty, "lease": {"owner": self.owner, "until": until}})

    def _mark_due_deletions(self) -> None:
        """Deactivated accounts past their app's retention period become work (deletion)."""
        now = utc_now()
        due = []
        for app in self.store.all(APPS).values():
            policy = DeletionPolicy(app["settings"].get("delete_after_days"))
            if policy.delete_after_days is None or not self._in_scope(app["id"]):
                continue
            for key in self.store.lookup(ACCOUNTS, "app", app["id"]):
                account = self.store.get(ACCOUNTS, key)
                known = KnownAccount.from_doc(account)
                if known is not None and policy.due(known, now) and self.store.get(DIRTY, key) is None:
                    due.append(account)
        if due:
            with self.store.transaction() as tx:
                for account in due:
                    queue(tx, account_key(account["app"], account["user"]), {"app": account["app"], "user": account["user"]})

    async def _run_batch(self, claimed: list[dict], report: SyncReport, total: int) -> None:
        outcomes: list[_Outcome] = []
        last_flush = time.monotonic()
        finished = 0
        pending = {asyncio.ensure_future(self._reconcile(item, report)) for item in claimed}
        while pending:
            done, pending = await asyncio.wait(pending, timeout=FLUSH_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcomes.append(task.result())
            finished += len(done)
            if self.progress is not None:
                self.progress(finished, total)
            if len(outcomes) >= FLUSH_EVERY or time.monotonic() - last_flush >= FLUSH_SECONDS:
                self._flush(outcomes, report)
                outcomes = []
                last_flush = time.monotonic()
        self._flush(outcomes, report)
        await self._close_retired()  # the batch's calls are all done

    def _flush(self, outcomes: list[_Outcome], report: SyncReport) -> None:
        if not outcomes and not self._calls and not self._rejections:
            return
        calls, self._calls = self._calls, []
        rejections, self._rejections = self._rejections, {}
        now = utc_now_iso()
        with self.guard, self.store.transaction() as tx:
            for app_id, (refusal, fingerprint, misconfigured) in rejections.items():
                self._write_rejection(tx, app_id, refusal, report, fingerprint=fingerprint, misconfigured=misconfigured)
            for outcome in outcomes:
                self._held.discard(outcome.key)
                dirty = tx.get(DIRTY, outcome.key)
                if dirty is not None and (dirty.get("lease") or {}).get("owner") != self.owner:
                    continue  # our lease was taken over: the new holder reconciles from the store
                stale = any(tx.get(table, key) != doc for table, key, doc in outcome.expects)
                if not stale:
                    for table, key, doc in outcome.writes:
                        if doc is None:
                            tx.delete(table, key)
                        else:
                            tx.put(table, key, doc)
                    for key, fields in outcome.follow_up:
                        queue(tx, key, fields)
                if dirty is not None:
                    if dirty["token"] == outcome.token and not (outcome.skipped or outcome.not_before or stale):
                        tx.delete(DIRTY, outcome.key)
                    else:  # changed again while we worked, never tried, deferred or stale: leave it queued
                        requeued = {k: v for k, v in dirty.items() if k != "lease"}
                        if outcome.not_before:
                            requeued["not_before"] = outcome.not_before
                        tx.put(DIRTY, outcome.key, requeued)
                if outcome.skipped or stale:
                    if outcome.skipped:
                        self._deferred.pop(outcome.key, None)  # paused meanwhile: the app's pause answers for it
                    continue
                app_id = outcome.key.partition("|")[0]
                health = dict(tx.get(APP_HEALTH, app_id) or {"app": app_id, "consecutive_failures": 0, "quarantined": False})
                self._deferred.pop(outcome.key, None)  # this attempt's result supersedes an earlier deferral
                if outcome.failure:
                    if outcome.not_before:
                        self._deferred[outcome.key] = {**outcome.failure, "retry_at": outcome.not_before}
                    else:
                        report.failed.append(outcome.failure)
                    tx.audit(self._event({"actor": ENGINE_ACTOR, "action": "downstream.failed", "target": outcome.failure["app"],
                                          "before": None, "after": outcome.failure, "correlation": dirty and dirty.get("correlation")}))
                    health["last_failure"] = now
                    if outcome.app_fault:
                        health["consecutive_failures"] += 1
                        if health["consecutive_failures"] >= QUARANTINE_AFTER and not health["quarantined"]:
                            health.update(quarantined=True, quarantined_at=now, reason=outcome.failure["error"])
                            self._quarantined.add(app_id)
                            report.quarantined.append(outcome.failure["app"])
                            tx.audit(self._event({"actor": ENGINE_ACTOR, "action": "app.quarantine", "target": outcome.failure["app"],
                                                  "before": None, "after": {"reason": outcome.failure["error"]}, "correlation": None}))
                else:
                    report.done += 1
                    health.update(consecutive_failures=0, last_success=now)
                tx.put(APP_HEALTH, app_id, health)
            for event in calls:
                tx.audit(event)
            self._renew_leases(tx)
        report.calls += len(calls)

    # -- credentials rejected ----------------------------------------------------------

    def _refused(self, app: dict, error: DownstreamError) -> dict:
        """Note that ``app`` refused our credentials (or has none: MissingSecretReference): paused at once in
        this process, written at the next flush."""
        refusal = {"app": app["name"], "status": error.status, "error": error.message}
        self._rejected.add(app["id"])
        self._rejections[app["id"]] = (refusal, connection_fingerprint(app), isinstance(error, MissingSecretReference))
        return refusal

    def _write_rejection(self, tx, app_id: str, refusal: dict, report: SyncReport, *, fingerprint: str,
                         misconfigured: bool = False, probed: bool = False) -> None:
        """Mark the app "credentials rejected" (audited when it starts), with when to probe it next.

        ``fingerprint``: of the app record refused (connection_fingerprint); once the record differs (an admin
        changed its endpoint or secret reference), the app is probed at the next run, whatever the back-off.
        ``misconfigured``: the record names no secret (MissingSecretReference), rather than a server refusing one."""
        now = utc_now()
        health = dict(tx.get(APP_HEALTH, app_id) or {"app": app_id, "consecutive_failures": 0, "quarantined": False})
        already = bool(health.get("credentials_rejected"))
        probes = (health.get("probes") or 0) + 1 if already and probed else 0
        next_probe = (now + timedelta(seconds=min(PROBE_CAP, PROBE_BASE * 2 ** probes))).isoformat()
        health.update(credentials_rejected=True, credentials_status=refusal["status"], credentials_error=refusal["error"],
                      credentials_checked=now.isoformat(), probes=probes, probe_at=next_probe,
                      last_failure=now.isoformat(), credentials_for=fingerprint,
                      misconfigured=misconfigured)
        if not already:
            health["credentials_rejected_at"] = now.isoformat()
            tx.audit(self._event({"actor": ENGINE_ACTOR, "action": "app.credentials_rejected", "target": refusal["app"],
                                  "before": None, "after": {"status": refusal["status"], "error": refusal["error"]},
                                  "correlation": None}))
        tx.put(APP_HEALTH, app_id, health)
        report.note_rejected({**refusal, "since": health["credentials_rejected_at"], "next_probe": next_probe})

    async def _probe_rejected(self, report: SyncReport, *, force: bool) -> None:
        """Probe, with one call each, the apps in scope whose credentials were rejected and whose probe is due
        (all of them with ``force``): those that answer lift their pause, and their queued work proceeds."""
        now = utc_now()
        with self.guard:
            due = [(self.store.get(APPS, app_id), health) for app_id, health in self.store.all(APP_HEALTH).items()
                   if health.get("credentials_rejected") and self._in_scope(app_id) and self.store.get(APPS, app_id)
                   and (force or not health.get("probe_at") or parse_iso(health["probe_at"]) <= now
                        or health.get("credentials_for") not in (None, connection_fingerprint(self.store.get(APPS, app_id))))]
        for app, health in due:
            if self._stopping:
                break
            await self._probe(app, health, report)  # the report names each app still rejected

    async def _probe(self, app: dict, health: dict, report: SyncReport) -> None:
        """One authenticated read (a lookup that changes nothing), retried like any call for transient faults."""
        _correlation.set(None)
        _call_user.set(None)
        refusal: dict | None = None
        misconfigured = False
        accepted = False
        attempts = 0
        while not self._stopping:
            attempts += 1
            try:
                await self._connector(app).find_user(external_id=PROBE_ID)
                accepted = True
            except DownstreamError as error:
                if error.status in CREDENTIALS_REJECTED:
                    refusal = {"app": app["name"], "status": error.status, "error": error.message}
                elif error.status is not None and not error.retryable:
                    accepted = True  # the app answered something other than a refusal: it took our credentials
                elif error.status is not None and error.status < 500 and error.status not in (408, 429):
                    accepted = True  # a garbled but successful answer: authenticated all the same
                elif isinstance(error, ConfigError):  # e.g. the token's variable is not set (here): still paused
                    refusal = {"app": app["name"], "status": None, "error": error.message}
                    misconfigured = isinstance(error, MissingSecretReference)
                else:
                    wait = self._backoff(attempts, error.retry_after)
                    if error.retryable and attempts < MAX_ATTEMPTS and wait <= BACKOFF_CAP and self._may_wait(wait):
                        report.retries += 1
                        await self._sleep(wait)
                        continue
                    # no answer either way: still paused, probed again after the back-off
                    refusal = {"app": app["name"], "status": health.get("credentials_status"),
                               "error": health.get("credentials_error") or error.message}
            break
        with self.guard, self.store.transaction() as tx:
            if accepted:
                current = dict(tx.get(APP_HEALTH, app["id"]) or {})
                if current.get("credentials_rejected"):
                    for name in ("credentials_rejected", "credentials_status", "credentials_error", "credentials_rejected_at",
                                 "probes", "probe_at", "credentials_for", "misconfigured"):
                        current.pop(name, None)
                    current.update(credentials_accepted_at=utc_now_iso(), last_success=utc_now_iso())
                    tx.put(APP_HEALTH, app["id"], current)
                    tx.audit(self._event({"actor": ENGINE_ACTOR, "action": "app.credentials_accepted", "target": app["name"],
                                          "before": {"status": health.get("credentials_status"), "error": health.get("credentials_error")},
                                          "after": None, "correlation": None}))
                self._rejected.discard(app["id"])
            elif refusal is not None:
                self._write_rejection(tx, app["id"], refusal, report, fingerprint=connection_fingerprint(app),
                                      misconfigured=misconfigured, probed=True)
        self._flush([], report)  # the probe's call, audited

    # -- one key ---------------------------------------------------------------------

    async def _reconcile(self, item: dict, report: SyncReport) -> _Outcome:
        _correlation.set(item.get("correlation"))
        _call_user.set(None)
        with self.guard:
            app = self.store.get(APPS, item["app"])
        if app is None:  # the app was removed: nothing to reconcile
            return _Outcome(item["key"], item["token"])
        if "group" in item:
            return await self._reconcile_group(item, app, report)
        return await self._reconcile_account(item, app, report)

    async def _reconcile_account(self, item: dict, app: dict, report: SyncReport) -> _Outcome:
        key, app_id, user_id, token = item["key"], item["app"], item["user"], item["token"]
        with self.guard:
            account = self.store.get(ACCOUNTS, key)
            user = self.store.get(USERS, user_id)
            try:
                desired = self.directory.desired(app_id, user_id)
            except InvalidInput as error:  # a mapping fails on this user's data: nothing to send until fixed
                base = {**(account or _blank_account(app_id, user_id)), "state": "failed", "last_error": str(error),
                        "last_sync": utc_now_iso()}
                failure = {"app": app["name"], "user": user["login"] if user else user_id, "action": "map",
                           "status": None, "error": str(error), "attempts": 0}
                return _Outcome(key, token, [(ACCOUNTS, key, base)], failure=failure)
        _call_user.set(user["login"] if user else None)
        if app["kind"] == AppKind.MANUAL:
            return self._manual(item, app, account, desired)
        known = KnownAccount.from_doc(account)
        change = plan_account(desired, known, DeletionPolicy(app["settings"].get("delete_after_days")), utc_now())
        base = dict(account or _blank_account(app_id, user_id))
        if change is None and known is None and not desired.active and (item.get("suspect") or base.get("create_uncertain")):
            # A create may have reached the app (a dead worker's, or one whose reply was lost) before the
            # user stopped being entitled: find that account and take it away.
            change = AccountChange(Action.DEACTIVATE, {}, False)
        base["correlation"] = item.get("correlation")
        if change is None:
            if base.get("state") == "failed":  # nothing left to do: the earlier failure is moot
                base["state"] = "active" if base.get("active") else ("deactivated" if base.get("remote_id") else "none")
                base["last_error"] = None
            return _Outcome(key, token, [(ACCOUNTS, key, base)] if account or base["state"] != "none" else [])
        outcome = _Outcome(key, token)
        # Look the account up before creating only if a create may already have reached the app (a dead
        # worker's lease, an earlier failed create, or a retry): otherwise it cannot exist, and the lookup
        # would double the calls.  A 409 still leads to a lookup and a link, whatever the case.
        tries = 0

        async def call():
            nonlocal tries
            self._connector(app)  # a configuration that cannot work fails here, before anything is sent
            tries += 1
            lookup_first = item.get("suspect") or bool(base.get("create_uncertain")) or tries > 1
            return await self._apply(app, known, change, desired.attributes, lookup_first=lookup_first)

        result = await self._send(app, report, outcome, call, what=change.action.value, who=user["login"] if user else user_id)
        if outcome.skipped:
            if tries and change.action == Action.CREATE:  # paused mid-retry: the lost create may exist, look it up next time
                outcome.writes.append((ACCOUNTS, key, {**base, "create_uncertain": True}))
            return outcome
        if result is None:
            base.update(state="failed", last_error=outcome.failure["error"], last_sync=utc_now_iso(),
                        attempts=(base.get("attempts") or 0) + outcome.failure["attempts"], last_action=change.action.value)
            if change.action == Action.CREATE:
                base["create_uncertain"] = True
        else:
            if result.get("remote_id", base["remote_id"]) != base["remote_id"]:
                outcome.follow_up = self._pushed_groups_of(app_id, user_id)  # the account joins (or leaves) its groups there
            base.update(result)
            base.pop("create_uncertain", None)
            state = "active" if base["active"] else ("deactivated" if base["remote_id"] else "deleted" if base.get("deleted_at") else "none")
            base.update(state=state, last_error=None, attempts=0, last_sync=utc_now_iso(), last_action=change.action.value)
        outcome.writes.append((ACCOUNTS, key, base))
        return outcome

    def _pushed_groups_of(self, app_id: str, user_id: str) -> list[tuple[str, dict]]:
        with self.guard:
            return [(group_key(app_id, gid), {"app": app_id, "group": gid}) for gid in self.directory.groups_of(user_id)
                    if (self.store.get(PUSHES, group_key(app_id, gid)) or {}).get("state") == "pushed"]

    async def _reconcile_group(self, item: dict, app: dict, report: SyncReport) -> _Outcome:
        key, group_id, token = item["key"], item["group"], item["token"]
        with self.guard:
            known_doc = self.store.get(PUSHED_GROUPS, key)
            desired = self.directory.desired_group(app["id"], group_id)
            push = self.store.get(PUSHES, key)
        known = KnownGroup.from_doc(known_doc)
        change = plan_group(desired, known)
        outcome = _Outcome(key, token)
        if change is None:
            return outcome
        result = await self._send(app, report, outcome, lambda: self._apply_group(app, group_id, desired, known, change),
                                  what=f"group {change.action.value}", who=f"group:{desired.display_name}")
        if outcome.skipped:
            return outcome
        doc = {**(known_doc or {"app": app["id"], "group": group_id, "remote_id": None, "display_name": "", "members": []}),
               "last_sync": utc_now_iso(), "last_action": change.action.value}
        if result is None:
            outcome.writes.append((PUSHED_GROUPS, key, {**doc, "state": "failed", "last_error": outcome.failure["error"]}))
        elif change.action in (GroupAction.DELETE, GroupAction.FORGET):
            outcome.writes += [(PUSHED_GROUPS, key, None), (PUSHES, key, None if push and push["state"] == "unpushed" else push)]
        else:
            outcome.writes.append((PUSHED_GROUPS, key, {**doc, **result, "state": "pushed", "last_error": None}))
        return outcome

    def stop(self) -> None:
        """Finish the calls in flight, start no more: run_until_idle returns soon after."""
        self._stopping = True

    async def _send(self, app: dict, report: SyncReport, outcome: _Outcome, call, *, what: str, who: str) -> dict | None:
        """Make one downstream change within the app's limits, retrying transient faults.

        Returns the call's result; on failure returns None with ``outcome`` describing it
        (failed, or deferred to a later run), or marks it skipped if the app got quarantined.
        """
        limits = AppLimits.for_app(self._limits, app)
        attempts = 0
        while True:
            attempts += 1
            try:
                async with limits.semaphore:
                    # Checked once a slot is ours: a quarantine, a refusal of our credentials or a stop while we
                    # queued means don't start.
                    if app["id"] in self._quarantined or app["id"] in self._rejected or self._stopping:
                        outcome.skipped = True
                        return None
                    await limits.rate.acquire()
                    return await call()
            except DownstreamError as error:
                if error.status in CREDENTIALS_REJECTED or isinstance(error, MissingSecretReference):
                    # About the app, not this account: pause the app, leave the account queued (not failed).
                    # An app with no secret named is paused likewise, once: every account would fail the same way.
                    outcome.skipped = True
                    outcome.credentials = self._refused(app, error)
                    return None
                wait = self._backoff(attempts, error.retry_after)
                if error.retryable and attempts < MAX_ATTEMPTS and wait <= BACKOFF_CAP and self._may_wait(wait):
                    report.retries += 1
                    await self._sleep(wait)
                    continue
                outcome.failure = {"app": app["name"], "user": who, "action": what, "status": error.status,
                                   "error": error.message, "attempts": attempts}
                outcome.app_fault = app_wide(error)
                # A transient fault stays queued and is tried again after the wait; a 4xx waits for `provtui retry`.
                if error.retryable:
                    outcome.not_before = (utc_now() + timedelta(seconds=wait)).isoformat()
                return None

    def _may_wait(self, wait: float) -> bool:
        """Whether a retry after ``wait`` seconds fits this run (a budgeted run's, or always for an unbudgeted one)."""
        if self._deadline is None:
            return True
        return not self._one_attempt and time.monotonic() + wait <= self._deadline

    @staticmethod
    def _backoff(attempt: int, retry_after: float | None) -> float:
        """The wait before attempt ``attempt + 1``; a server's Retry-After is honoured in full."""
        if retry_after is not None:
            return retry_after
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)  # jitter, so retries don't arrive in step

    async def _apply(self, app: dict, known: KnownAccount | None, change: AccountChange, attributes: dict,
                     *, lookup_first: bool = True) -> dict:
        """Send one change; returns the new known state (remote_id, active, attributes)."""
        connector = self._connector(app)
        if change.action == Action.CREATE:
            remote = await connector.find_user(external_id=attributes.get("externalId")) if lookup_first else None
            if remote is None:
                try:
                    remote = await connector.create_user(attributes, active=True)
                    return {"remote_id": remote.id, "active": True, "attributes": dict(attributes), "deactivated_at": None}
                except Conflict as conflict:
                    # Someone holds the name already: link it rather than make a duplicate.
                    remote = await connector.find_user(user_name=attributes.get(connector.naming_attribute))
                    if remote is None:  # the server's search lags its writes: look again later
                        raise DownstreamError(f"{conflict.message} (and no account found by {connector.naming_attribute} yet)",
                                              status=409, retryable=True) from None
            # An account existed: link it, then bring it to the desired state.
            changed = {k: v for k, v in attributes.items() if remote.attributes.get(k) != v}
            if changed or not remote.active:
                await connector.update_user(remote.id, changed, full=attributes, active=True)
            return {"remote_id": remote.id, "active": True, "attributes": dict(attributes), "linked": True, "deactivated_at": None}
        if known is None and change.action == Action.DEACTIVATE:  # an unrecorded create: look it up
            remote = await connector.find_user(external_id=attributes.get("externalId"))
            if remote is None:
                return {"remote_id": None, "active": False}
            if remote.active:
                await connector.update_user(remote.id, {}, full=attributes, active=False)
            return {"remote_id": remote.id, "active": False, "attributes": dict(attributes), "linked": True, "deactivated_at": utc_now_iso()}
        assert known is not None and known.remote_id is not None
        if change.action == Action.DEACTIVATE:
            await connector.update_user(known.remote_id, {}, full={**known.attributes}, active=False)
            return {"active": False, "deactivated_at": utc_now_iso()}
        if change.action == Action.DELETE:
            await connector.delete_user(known.remote_id)
            return {"remote_id": None, "active": False, "deleted_at": utc_now_iso(), "deactivated_at": None}
        active = True if change.action == Action.REACTIVATE else None
        await connector.update_user(known.remote_id, change.attributes, full=attributes, active=active)
        return {"active": True, "attributes": dict(attributes), "deactivated_at": None}

    async def _apply_group(self, app: dict, group_id: str, desired, known: KnownGroup | None, change: GroupChange) -> dict:
        """Send one group change; returns the new known state of the group downstream."""
        connector = cast(GroupPush, self._connector(app))  # groups are pushed only where the app has PUSH_GROUPS
        if change.action == GroupAction.CREATE:
            remote = await connector.find_group(external_id=group_id)
            if remote is None:
                remote = await connector.create_group(desired.display_name, group_id, set(desired.members))
            else:  # created before a crash lost our record of it: bring it in line
                await connector.update_group(
                    remote.id, display_name=desired.display_name if remote.display_name != desired.display_name else None,
                    add=set(desired.members) - remote.members, remove=remote.members - set(desired.members),
                    full_name=desired.display_name, external_id=group_id, full_members=set(desired.members))
            return {"remote_id": remote.id, "display_name": desired.display_name, "members": sorted(desired.members)}
        assert known is not None
        if change.action == GroupAction.DELETE:
            await connector.delete_group(known.remote_id)
            return {}
        if change.action == GroupAction.FORGET:
            return {}
        await connector.update_group(known.remote_id, display_name=change.rename, add=set(change.add), remove=set(change.remove),
                                     full_name=desired.display_name, external_id=group_id, full_members=set(desired.members))
        return {"display_name": desired.display_name, "members": sorted(desired.members)}

    # -- passwords -------------------------------------------------------------------

    async def push_passwords(self, targets: list[dict], passwords: dict[str, str]) -> list[dict]:
        """Set a password in each target account now (held in memory only, never stored).

        Returns, per app, {"app", "error"}; transient faults are retried like any call.
        """
        report = SyncReport()

        async def push(target: dict) -> dict:
            app = self.store.get(APPS, target["app_id"])
            outcome = _Outcome(target["app_id"], "")
            send = lambda: cast(PasswordSync, self._connector(app)).set_password(target["remote_id"], passwords[app["id"]], full=target["attributes"])  # noqa: E731
            await self._send(app, report, outcome, send, what="password", who=target["remote_id"])
            if outcome.credentials is not None:
                status = f"HTTP {outcome.credentials['status']}: " if outcome.credentials["status"] else ""
                return {"app": app["name"], "error": f"credentials rejected ({status}{outcome.credentials['error']})"}
            return {"app": app["name"], "error": outcome.failure["error"] if outcome.failure else None}

        results = await asyncio.gather(*(push(t) for t in targets))
        self._flush([], report)  # the calls' audit events (method, path, status: no body)
        return list(results)

    # -- manual apps: tasks instead of calls ----------------------------------------

    def _manual(self, item: dict, app: dict, account: dict | None, desired) -> _Outcome:
        """Open (or cancel) a task for an admin; the account follows when the task is done."""
        key, token = item["key"], item["token"]
        base = dict(account or _blank_account(app["id"], item["user"]))
        with self.guard:
            task = self.store.get(TASKS, base["task"]) if base.get("task") else None
        expects = [(ACCOUNTS, key, account)] + ([(TASKS, task["id"], task)] if task is not None else [])
        open_task = task if task is not None and task["state"] == "open" else None
        wanted = "provision" if desired.active else "deprovision"
        has_access = bool(base.get("active"))
        nothing_to_take = not desired.active and not base.get("remote_id")
        if desired.active == has_access or nothing_to_take:
            if open_task is not None:  # e.g. the user came back before the deprovision was done
                base.update(task=None, state="active" if has_access else ("deactivated" if base.get("remote_id") else "none"))
                cancelled = {**open_task, "state": "cancelled", "closed": utc_now_iso()}
                return _Outcome(key, token, [(ACCOUNTS, key, base), (TASKS, open_task["id"], cancelled)], expects=expects)
            return _Outcome(key, token, expects=expects)
        if open_task is not None and open_task["action"] == wanted:
            return _Outcome(key, token, expects=expects)
        new_task = {"id": os.urandom(4).hex(), "app": app["id"], "user": item["user"], "action": wanted, "state": "open",
                    "created": utc_now_iso(), "correlation": item.get("correlation")}
        base.update(task=new_task["id"], state="task-open", correlation=item.get("correlation"))
        return _Outcome(key, token, [(ACCOUNTS, key, base), (TASKS, new_task["id"], new_task)], expects=expects)
