"""Writing a run's results: a batch of outcomes and the calls' audit events, in one commit (a flush).

A result is written only while our lease on its key holds (a lease taken over: the new holder reconciles from the
store), and only if what it was decided on is unchanged (Outcome.expects).  A key dirtied again while its call was
in flight stays dirty and is reconciled once more against the fresh state; one deferred (a transient fault that
outlasted its attempts) stays queued with the time it may be tried again (``not_before``).
"""

from __future__ import annotations

from collections.abc import Callable

from provtui.clock import utc_now_iso
from provtui.engine.calls import ENGINE_ACTOR, engine_event
from provtui.engine.health import AppHealth
from provtui.engine.leases import Leases
from provtui.engine.outcomes import Outcome, SyncReport
from provtui.model.outbox import queue
from provtui.model.schema import ACCOUNTS, APPS, DIRTY, PUSHED_GROUPS, USERS
from provtui.store import Store


def deferral_entry(store: Store, key: str, doc: dict) -> dict:
    """The report entry of a deferred key (``doc``: its DIRTY record) this run did not try."""
    app = store.get(APPS, doc["app"]) or {"name": doc["app"]}
    if "group" in doc:
        who, account = f"group:{doc['group']}", store.get(PUSHED_GROUPS, key) or {}
    else:
        user = store.get(USERS, doc["user"])
        who, account = user["login"] if user else doc["user"], store.get(ACCOUNTS, key) or {}
    return {
        "app": app["name"],
        "user": who,
        "action": account.get("last_action") or "sync",
        "status": None,
        "error": account.get("last_error") or "deferred by an earlier run",
        "attempts": 0,
        "retry_at": doc["not_before"],
    }


class Results:
    """``guard``: the context the store is written in."""

    def __init__(self, store: Store, leases: Leases, health: AppHealth, *, guard: Callable, run_by: str | None = None) -> None:
        self.store = store
        self.leases = leases
        self.health = health
        self.guard = guard
        self.run_by = run_by
        self.calls: list[dict] = []  # downstream-call audit events waiting for the next flush
        # keys this run gave up on for now, with their report entries: not claimed again before it ends, unless
        # it has a time budget (then claimed again once due)
        self.deferred: dict[str, dict] = {}

    def flush(self, outcomes: list[Outcome], report: SyncReport) -> None:
        """Write ``outcomes``, the apps' refusals noted and the calls' audit events, and renew our leases."""
        if not outcomes and not self.calls and not self.health.has_refusals:
            return
        calls, self.calls = self.calls, []
        refusals = self.health.take_refusals()
        now = utc_now_iso()
        with self.guard(), self.store.transaction() as tx:
            for app_id, (refusal, fingerprint, misconfigured) in refusals.items():
                self.health.write_rejection(tx, app_id, refusal, report, fingerprint=fingerprint, misconfigured=misconfigured)
            for outcome in outcomes:
                self._write(tx, outcome, report, now)
            for event in calls:
                tx.audit(event)
            self.leases.renew(tx)
        report.calls += len(calls)

    def _write(self, tx, outcome: Outcome, report: SyncReport, now: str) -> None:
        self.leases.release(outcome.key)
        dirty = tx.get(DIRTY, outcome.key)
        if dirty is not None and not self.leases.ours(dirty):
            return  # our lease was taken over: the new holder reconciles from the store
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
                self.deferred.pop(outcome.key, None)  # paused meanwhile: the app's pause answers for it
            return
        app_id = outcome.key.partition("|")[0]
        self.deferred.pop(outcome.key, None)  # this attempt's result supersedes an earlier deferral
        if outcome.failure:
            if outcome.not_before:
                self.deferred[outcome.key] = {**outcome.failure, "retry_at": outcome.not_before}
            else:
                report.failed.append(outcome.failure)
            tx.audit(
                engine_event(
                    {
                        "actor": ENGINE_ACTOR,
                        "action": "downstream.failed",
                        "target": outcome.failure["app"],
                        "before": None,
                        "after": outcome.failure,
                        "correlation": dirty and dirty.get("correlation"),
                    },
                    self.run_by,
                )
            )
        else:
            report.done += 1
        self.health.write_result(tx, app_id, outcome, report, now)
