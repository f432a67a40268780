"""Sending one downstream change: within the app's limits, retrying transient faults within the run's budget.

Retryable faults (timeouts, dropped connections, 429, 5xx, malformed replies) are retried up to MAX_ATTEMPTS
times per key and run, with exponential backoff and jitter (BACKOFF_BASE doubling up to BACKOFF_CAP), honouring
Retry-After; one that outlasts them is deferred: the key stays queued, to be tried after the wait.  A 401 or 403
is about the app's credentials, not one account (as is a record that names no secret): the app is paused
(provtui.engine.health) and the account left queued.  Other 4xx fail the account at once with the server's message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from provtui.clock import utc_now
from provtui.connectors.base import DownstreamError
from provtui.connectors.config import MissingSecretReference
from provtui.engine.health import AppHealth
from provtui.engine.limits import AppLimits
from provtui.engine.outcomes import Outcome, SyncReport

MAX_ATTEMPTS = 5  # per key, per run, for retryable faults
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
CREDENTIALS_REJECTED = (401, 403)  # the app refuses our credentials: pause the app, keep its accounts queued


def app_wide(error: DownstreamError) -> bool:
    """A fault of the app as a whole (down, overloaded, refusing us), not of one user's data."""
    return error.status is None or error.status in (401, 403, 429) or error.status >= 500


def backoff(attempt: int, retry_after: float | None) -> float:
    """The wait before attempt ``attempt + 1``; a server's Retry-After is honoured in full."""
    if retry_after is not None:
        return retry_after
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)  # jitter, so retries don't arrive in step


class Budget:
    """A run's time budget (``run_until_idle(max_wait=...)``): None, no budget (each key gets its attempts, then
    is deferred to a later run); 0, one attempt per key; else retries that fit before the deadline."""

    def __init__(self, max_wait: float | None = None) -> None:
        self.deadline = None if max_wait is None else time.monotonic() + max(0.0, max_wait)  # time.monotonic()
        self.one_attempt = max_wait is not None and max_wait <= 0

    @property
    def limited(self) -> bool:
        return self.deadline is not None

    def fits(self, wait: float) -> bool:
        """Whether ``wait`` seconds from now is within the deadline (a budgeted run's)."""
        assert self.deadline is not None
        return time.monotonic() + wait <= self.deadline

    def may_wait(self, wait: float) -> bool:
        """Whether a retry after ``wait`` seconds fits this run (a budgeted run's, or always for an unbudgeted one)."""
        if self.deadline is None:
            return True
        return not self.one_attempt and self.fits(wait)


class KeyWork:
    """What reconciling one key (an account, a pushed group) is given: the store and its read model, the
    Sender, ``guard`` (the context the store is read in) and ``connector`` (an app's connector)."""

    def __init__(
        self, store: Any, directory: Any, sender: Sender, *, guard: Callable[[], Any], connector: Callable[[dict[str, Any]], Any]
    ) -> None:
        self.store = store
        self.directory = directory
        self.sender = sender
        self.guard = guard
        self.connector = connector


class Sender:
    """Sends a reconciler's calls.  ``sleep`` waits before a retry; ``stopping``: whether the run is stopping."""

    def __init__(self, health: AppHealth, *, sleep: Callable[[float], Awaitable[object]], stopping: Callable[[], bool]) -> None:
        self.health = health
        self.sleep = sleep
        self.stopping = stopping
        self.budget = Budget()  # the current run's (set at the start of each)
        self._limits: dict[str, AppLimits] = {}

    def may_retry(self, error: DownstreamError, attempts: int, wait: float) -> bool:
        """Whether to try again, after ``wait``, a call that failed with ``error`` on its ``attempts``-th attempt."""
        return error.retryable and attempts < MAX_ATTEMPTS and wait <= BACKOFF_CAP and self.budget.may_wait(wait)

    async def send(
        self, app: dict, report: SyncReport, outcome: Outcome, call: Callable[[], Awaitable[dict]], *, what: str, who: str
    ) -> dict | None:
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
                    if self.health.is_paused(app["id"]) or self.stopping():
                        outcome.skipped = True
                        return None
                    await limits.rate.acquire()
                    return await call()
            except DownstreamError as error:
                if error.status in CREDENTIALS_REJECTED or isinstance(error, MissingSecretReference):
                    # About the app, not this account: pause the app, leave the account queued (not failed).
                    # An app with no secret named is paused likewise, once: every account would fail the same way.
                    outcome.skipped = True
                    outcome.credentials = self.health.refused(app, error)
                    return None
                wait = backoff(attempts, error.retry_after)
                if self.may_retry(error, attempts, wait):
                    report.retries += 1
                    await self.sleep(wait)
                    continue
                outcome.failure = {
                    "app": app["name"],
                    "user": who,
                    "action": what,
                    "status": error.status,
                    "error": error.message,
                    "attempts": attempts,
                }
                outcome.app_fault = app_wide(error)
                # A transient fault stays queued and is tried again after the wait; a 4xx waits for `provtui retry`.
                if error.retryable:
                    outcome.not_before = (utc_now() + timedelta(seconds=wait)).isoformat()
                return None
