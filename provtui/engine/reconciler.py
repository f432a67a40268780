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

This module is the run loop and the connectors (one per app); the parts it is
made of: leases (claiming keys), accounts and groups (planning and sending one
key), sending (limits, retries, the run's budget), health (quarantine,
credentials rejected), probes, results (writing a batch), outcomes (SyncReport).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import cast

from provtui.clock import parse_iso, utc_now
from provtui.connectors.base import Connector, OnCall, PasswordSync
from provtui.connectors.config import connection_fingerprint, connector_for
from provtui.engine.accounts import Accounts
from provtui.engine.calls import call_correlation, call_event, call_user
from provtui.engine.groups import Groups
from provtui.engine.health import AppHealth
from provtui.engine.leases import Leases
from provtui.engine.notifier import send_task_digests
from provtui.engine.outcomes import Outcome, SyncReport
from provtui.engine.probes import Probes
from provtui.engine.results import Results, deferral_entry
from provtui.engine.sending import Budget, Sender
from provtui.model.directory import Directory
from provtui.model.schema import APPS, DIRTY
from provtui.store import Store

__all__ = ["Reconciler", "SyncReport"]

FLUSH_EVERY = 200  # results per commit, at most
FLUSH_SECONDS = 0.25
DIGEST_EVERY_SECONDS = 60.0  # while the queue stays busy, manual apps' new tasks are mailed at least this often


class Reconciler:
    """The run loop: claims dirty keys (provtui.engine.leases), reconciles each (accounts, groups), writes the
    results in batches (results); the apps' pauses and probes (health, probes); the connectors, one per app."""

    def __init__(
        self,
        store: Store,
        directory: Directory | None = None,
        connector_factory: Callable[[dict], Connector] | None = None,
        sleep: Callable[[float], object] = asyncio.sleep,
        guard: AbstractContextManager | None = None,
        notify: bool = True,
        run_by: str | None = None,
        scope: Callable[[], frozenset[str] | None] | None = None,
        secrets: Callable[[str], str | None] | None = None,
    ):
        """``run_by``: who started the run, named beside the engine in its audit events.  ``scope``: called
        at the start of each run, the apps it may touch (None: all); raises NotAllowed if the run may not go."""
        self.store = store
        store.hold()  # it plans every key it claims, and claims from the whole queue: a read by query each would crawl
        self.directory = directory or Directory(store)
        # Held around every store access, never across a network wait: the console
        # passes the lock its own threads take, so they never see a half-applied commit.
        self.guard = guard or nullcontext()
        self.notify = notify  # email manual apps' new tasks at the end of each run
        self._connector_factory = connector_factory or self._default_connector
        self._connectors: dict[str, Connector] = {}
        self._built_from: dict[str, str] = {}  # app id -> connection_fingerprint of the record its connector was built from
        self._retired: list[Connector] = []  # built from an older record: closed once no call can be using them
        self.run_by = run_by
        self.secrets = secrets  # a server's secrets, for apps whose token is one of them
        self._scope_of = scope
        self._scope: frozenset[str] | None = None  # the apps this run may touch (None: all)
        self._sleep = sleep
        self._stopping = False
        self.progress: Callable[[int, int], None] | None = None

        # the parts, given what they need (the guard, sleep and connectors looked up at each use: they may be replaced)
        def guarded():
            return self.guard

        self.leases = Leases(store)
        self.owner = self.leases.owner
        self.health = AppHealth(store, run_by)
        self.sender = Sender(self.health, sleep=lambda seconds: self._sleep(seconds), stopping=lambda: self._stopping)
        self.results = Results(store, self.leases, self.health, guard=guarded, run_by=run_by)
        self.accounts = Accounts(store, self.directory, self.sender, guard=guarded, connector=self._connector)
        self.groups = Groups(store, self.directory, self.sender, guard=guarded, connector=self._connector)
        self.probes = Probes(store, self.health, self.sender, guard=guarded, connector=self._connector)

    # -- connectors ------------------------------------------------------------------

    def _default_connector(self, app: dict) -> Connector:
        """The connector for the app's kind (provtui.connectors.config), its calls audited by this run."""
        return connector_for(app, on_call=self._on_call(app["name"]), secrets=self.secrets)

    def _on_call(self, name: str) -> OnCall:
        def on_call(method: str, path: str, status: int | None, duration_ms: float) -> None:
            self.results.calls.append(
                call_event(
                    name, method, path, status, duration_ms, user=call_user.get(), correlation=call_correlation.get(), run_by=self.run_by
                )
            )

        return on_call

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
        self.results.deferred = {}
        self.sender.budget = budget = Budget(max_wait)
        last_digest = time.monotonic()
        with self.guard:
            self.store.refresh()
            self._scope = self._scope_of() if self._scope_of is not None else None  # NotAllowed: nothing is touched
            self.accounts.mark_due_deletions(self._in_scope)
        await self._probe_rejected(report, force=probe)
        await self._close_retired()
        while not self._stopping:
            with self.guard:
                self.store.refresh()
                claimed = self._claim()
                total = sum(1 for doc in self.store.all(DIRTY).values() if self._workable(doc))
            if not claimed:
                if not budget.limited:
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
        report.deferred = list(self.results.deferred.values())
        if budget.limited:  # a budgeted run answers for everything still waiting in its scope
            with self.guard:
                report.deferred += self._waiting_deferrals()
        return report

    def _in_scope(self, app_id: str) -> bool:
        return self._scope is None or app_id in self._scope

    def _workable(self, doc: dict) -> bool:
        """Whether a dirty key is this run's to work on: its app in scope and not paused."""
        return not self.health.is_paused(doc["app"]) and self._in_scope(doc["app"])

    async def _nap(self, seconds: float) -> None:
        """Wait (a budgeted run, for its next deferred key to come due), ending early on stop()."""
        end = time.monotonic() + seconds
        while not self._stopping and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.25))

    def _claim(self) -> list[dict]:
        self.health.refresh()  # the store decides which apps are paused
        retry_deferred = self.sender.budget.limited  # a budgeted run tries its deferred keys again once due
        deferred = self.results.deferred
        return self.leases.claim(lambda key, doc: self._workable(doc) and (retry_deferred or key not in deferred))

    def _next_retry(self) -> float | None:
        """Seconds until the earliest deferred key comes due, if that is within the budget."""
        now = utc_now()
        due = [parse_iso(doc["not_before"]) for _, doc in self.leases.later(lambda _, doc: self._workable(doc), now)]
        if not due:
            return None
        wait = max(0.0, (min(due) - now).total_seconds())
        return wait if self.sender.budget.fits(wait) else None

    def _waiting_deferrals(self) -> list[dict]:
        """Deferred keys this run never got to try (an earlier run's, due after the budget), as report entries."""
        return [
            deferral_entry(self.store, key, doc)
            for key, doc in self.leases.later(lambda _, doc: self._workable(doc), utc_now())
            if key not in self.results.deferred
        ]

    async def _send_digests(self, report: SyncReport) -> None:
        """Email each manual app's new tasks, one digest per app (network I/O, off the loop)."""
        digests = await asyncio.to_thread(
            send_task_digests, self.store, guard=self.guard, apps=self._scope, run_by=self.run_by, secrets=self.secrets
        )
        if report.digests is None:
            report.digests = digests
        else:
            report.digests.add(digests)

    async def _probe_rejected(self, report: SyncReport, *, force: bool) -> None:
        """Probe, with one call each, the apps in scope whose credentials were rejected and whose probe is due
        (all of them with ``force``): those that answer lift their pause, and their queued work proceeds."""
        with self.guard:
            due = self.probes.due(self._in_scope, force=force)
        for app, health in due:
            if self._stopping:
                break
            await self.probes.probe(app, health, report)  # the report names each app still rejected
            self._flush([], report)  # the probe's call, audited

    async def _run_batch(self, claimed: list[dict], report: SyncReport, total: int) -> None:
        # A batch's pushed groups go after its accounts: an account's update adds its new DN to the groups it is
        # in, which must not race the push that renames or deletes one of them (and a group names settled DNs).
        accounts = [item for item in claimed if "group" not in item]
        groups = [item for item in claimed if "group" in item]
        finished = 0
        for part in (accounts, groups):
            if part:
                finished = await self._run_part(part, report, total, finished)
        await self._close_retired()  # the batch's calls are all done

    async def _run_part(self, claimed: list[dict], report: SyncReport, total: int, finished: int) -> int:
        """Reconcile ``claimed`` concurrently (each app's limits apply), flushing results as they come."""
        outcomes: list[Outcome] = []
        last_flush = time.monotonic()
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
        return finished

    def _flush(self, outcomes: list[Outcome], report: SyncReport) -> None:
        self.results.flush(outcomes, report)

    async def _reconcile(self, item: dict, report: SyncReport) -> Outcome:
        call_correlation.set(item.get("correlation"))
        call_user.set(None)
        with self.guard:
            app = self.store.get(APPS, item["app"])
        if app is None:  # the app was removed: nothing to reconcile
            return Outcome(item["key"], item["token"])
        if "group" in item:
            return await self.groups.reconcile(item, app, report)
        return await self.accounts.reconcile(item, app, report)

    def stop(self) -> None:
        """Finish the calls in flight, start no more: run_until_idle returns soon after."""
        self._stopping = True

    # -- passwords -------------------------------------------------------------------

    async def push_passwords(self, targets: list[dict], passwords: dict[str, str]) -> list[dict]:
        """Set a password in each target account now (held in memory only, never stored).

        Returns, per app, {"app", "error"}; transient faults are retried like any call.
        """
        report = SyncReport()

        async def push(target: dict) -> dict:
            app = self.store.get(APPS, target["app_id"])
            outcome = Outcome(target["app_id"], "")

            def send():
                return cast(PasswordSync, self._connector(app)).set_password(
                    target["remote_id"], passwords[app["id"]], full=target["attributes"]
                )

            await self.sender.send(app, report, outcome, send, what="password", who=target["remote_id"])
            if outcome.credentials is not None:
                status = f"HTTP {outcome.credentials['status']}: " if outcome.credentials["status"] else ""
                return {"app": app["name"], "error": f"credentials rejected ({status}{outcome.credentials['error']})"}
            return {"app": app["name"], "error": outcome.failure["error"] if outcome.failure else None}

        results = await asyncio.gather(*(push(t) for t in targets))
        self._flush([], report)  # the calls' audit events (method, path, status: no body)
        return list(results)
