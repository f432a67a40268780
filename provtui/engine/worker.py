"""`provtui worker`: provision continuously, picking up any process's commits within a second.

No cycles to wait for: the worker polls the store's journal (a stat and a read
of what is new) a few times a second and reconciles as soon as anything is
committed.  SIGTERM/SIGINT finish the calls in flight, then stop.

Each run is authorised (the service's engine: super admin, or app admin for the
apps it then touches, else NotAllowed before anything is done); scheduled
imports run only for an actor who may run imports.  An app whose credentials
were rejected is probed again when its back-off comes due.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from provtui.clock import parse_iso, utc_now
from provtui.domain.roles import Action
from provtui.engine.live import LiveSessions
from provtui.model.schema import APP_HEALTH, DIRTY

POLL_SECONDS = 0.25
SWEEP_SECONDS = 30.0  # even with no commits: deferred retries, deletions that come due
LOCAL_LEASE_SECONDS = 2.0  # keys a process on this host leases are free the moment it dies: look that often


def _due_imports(service, guard: AbstractContextManager) -> list[dict]:
    with guard:
        return service.importer().run_due_imports() if service.may(Action.MANAGE_SOURCES) else []


def _next_due(service) -> float | None:
    """Seconds until the earliest deferred key may be tried again, another's lease on a key may be taken over (at
    its expiry; soon, if its holder is on this host and may have died), or an app whose credentials were
    rejected probed."""
    here, now = socket.gethostname(), utc_now()
    soon = now + timedelta(seconds=LOCAL_LEASE_SECONDS)
    times = []
    for doc in service.store.all(DIRTY).values():
        lease = doc.get("lease")
        if doc.get("not_before"):
            times.append(parse_iso(doc["not_before"]))
        elif lease:
            until = parse_iso(lease["until"])
            times.append(min(until, soon) if lease["owner"].partition(":")[0] == here else until)
    times += [
        parse_iso(h["probe_at"]) for h in service.store.all(APP_HEALTH).values() if h.get("credentials_rejected") and h.get("probe_at")
    ]
    if not times:
        return None
    return max(0.0, (min(times) - utc_now()).total_seconds())


def _stop_live(live: LiveSessions, service, guard: AbstractContextManager) -> None:
    live.stop()
    with guard:
        live.record_stopped(service)


def _live_calls(live: LiveSessions, service, guard: AbstractContextManager) -> None:
    """The live sessions started or stopped as sources are set live or not, and what they wait on done."""
    with guard:
        live.sync(service)
        live.run_calls(service)


async def _wait(stop: asyncio.Event, events: list[asyncio.Event | None], timeout: float) -> None:
    """Until ``stop``, one of ``events`` (a commit notified, a live session's call), or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(stop.wait())] + [asyncio.ensure_future(event.wait()) for event in events if event is not None]
    try:
        await asyncio.wait(waits, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


async def run_worker(
    service,
    *,
    engine,
    stop: asyncio.Event | None = None,
    on_report: Callable | None = None,
    on_import: Callable | None = None,
    on_live: Callable[[str], None] | None = None,
    poll: float = POLL_SECONDS,
    guard: AbstractContextManager | None = None,
    signals: bool = True,
) -> None:
    """Provision with ``engine`` (built by the face: provtui.compose) until ``stop``, with the scheduled imports.

    ``guard``: the lock around the worker's own service calls, when other threads share the store (the
    server's); ``signals``: whether SIGTERM/SIGINT stop it (the server handles its signals itself).  It wakes on any
    commit since its last run, this process's (a server's calls) or another's (caught up by ``refresh``), and keeps
    the live sources' sessions (provtui.engine.live; ``on_live`` hears their states)."""
    stop = stop or asyncio.Event()
    guard = guard or contextlib.nullcontext()
    reconciler = engine
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        stop.set()
        reconciler.stop()

    for sig in (signal.SIGTERM, signal.SIGINT) if signals else ():
        loop.add_signal_handler(sig, request_stop)
    # A store that notifies commits (PostgreSQL's LISTEN) wakes the worker; the others are polled every ``poll``.
    committed: asyncio.Event | None = None
    signal_fd = service.commit_signal()
    if signal_fd is not None:
        committed = asyncio.Event()
        loop.add_reader(signal_fd, committed.set)
    live_waiting = asyncio.Event()
    live = LiveSessions(lambda: loop.call_soon_threadsafe(live_waiting.set), on_live)
    try:
        while not stop.is_set():
            report = await reconciler.run_until_idle()
            seen = service.store.seq  # the run's own commits are done with
            if on_report is not None:
                on_report(report)
            imports = await asyncio.to_thread(_due_imports, service, guard)  # an LDAP import may take a while: off the loop
            for outcome in imports:  # scheduled LDAP imports (source --interval)
                if on_import is not None:
                    on_import(outcome)
            await asyncio.to_thread(_live_calls, live, service, guard)
            if service.store.seq != seen:  # a live change applied: provision it now
                continue
            with guard:
                due = _next_due(service)
            deadline = time.monotonic() + min(SWEEP_SECONDS, due if due is not None else SWEEP_SECONDS)
            while not stop.is_set() and time.monotonic() < deadline:
                await _wait(stop, [committed, live_waiting], poll if committed is None else deadline - time.monotonic())
                if live_waiting.is_set():
                    live_waiting.clear()
                    await asyncio.to_thread(_live_calls, live, service, guard)
                if committed is not None:
                    committed.clear()
                    service.drain_commit_signal()
                with guard:
                    service.refresh()
                    changed = service.store.seq != seen
                if changed:  # something committed: reconcile now
                    break
    finally:
        await asyncio.to_thread(_stop_live, live, service, guard)
        if committed is not None:
            loop.remove_reader(signal_fd)
        for sig in (signal.SIGTERM, signal.SIGINT) if signals else ():
            loop.remove_signal_handler(sig)
        await reconciler.aclose()
