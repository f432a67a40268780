"""Live sources' sessions in a worker (and a server): a directory's changes applied as they arrive (#21).

Each source set ``--live`` gets a session: on OpenLDAP with syncprov (the root DSE lists RFC 4533's control),
two refreshAndPersist searches, the users' and the groups', each resuming from its stored cookie; on Active
Directory, DirSync polled every second; on a directory with neither, the incremental run every
``POLL_SECONDS`` when a read finds a change (modifyTimestamp / whenChanged).  Sessions run in threads of their
own (python-ldap and ldap3 block), but they never touch the service: what they have to do with it — read the
settings, apply a batch, record their state — is handed to the worker's loop (``call``), which runs it under the
worker's guard between its reconciles (``run_calls``), so the service is used by one thread at a time and a
batch is committed before the session asks the directory for more.

A lost directory is reconnected with backoff (1 s doubling to 30 s); a held batch (the safeguard) is read again
from its cookie every ``HELD_RETRY_SECONDS``; a refused one (a read presenting no valid person) every
``FAILED_RETRY_SECONDS``.  Each change of a session's state is recorded on the source (live, catching up,
reconnecting, held, failed), which the dashboard and `provtui source status` show with the last change's lag.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from provtui.domain.errors import HeldForConfirmation, ImportRefused, ProvtuiError

POLL_SECONDS = 2.0  # the fallback's read of what changed, when a directory has no live control
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
HELD_RETRY_SECONDS = 30.0
FAILED_RETRY_SECONDS = 60.0
_STATE_ORDER = ("failed", "held", "reconnecting", "catching up", "live")  # a source's state: its worst stream's


class Stopped(Exception):
    """The worker stopped while a session waited for it."""


class LiveSessions:
    """The live sessions of one worker.  ``wake()`` tells the worker's loop a call is waiting (thread-safe)."""

    def __init__(self, wake: Callable[[], None], log: Callable[[str], None] | None = None) -> None:
        self._wake = wake
        self._log = log or (lambda message: None)
        self._calls: queue.Queue[tuple[Callable[[Any], Any], Future]] = queue.Queue()
        self._sessions: dict[str, _Session] = {}
        self._stopping = threading.Event()

    # -- the worker's side (its loop's thread, under its guard)

    def sync(self, service: Any) -> None:
        """Start a session for each live source, stop those of sources no longer live."""
        from provtui.domain.roles import Action

        names = set(service.importer().live_sources()) if service.may(Action.MANAGE_SOURCES) else set()
        for name in sorted(set(self._sessions) - names):
            self._sessions.pop(name).stop()
        for name in sorted(names - set(self._sessions)):
            self._sessions[name] = _Session(self, name)
            self._sessions[name].start()

    def run_calls(self, service: Any) -> int:
        """Run every call the sessions are waiting on; how many ran."""
        ran = 0
        while True:
            try:
                function, future = self._calls.get_nowait()
            except queue.Empty:
                return ran
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(service))
            except BaseException as error:  # handed to the session, which decides (never swallowed)
                future.set_exception(error)
            ran += 1

    def stop(self) -> None:
        """Stop every session (from any thread): what they wait on is refused, their threads joined."""
        self._stopping.set()
        for session in self._sessions.values():
            session.stop()
        self._refuse_calls()
        for session in self._sessions.values():
            session.join()
        self._refuse_calls()  # one put between the check and the first refusal

    def record_stopped(self, service: Any) -> None:
        """Each stopped session's source recorded as stopped (the worker's side, under its guard)."""
        for name in sorted(self._sessions):
            with contextlib.suppress(ProvtuiError):
                service.importer().record_live_state(name, "stopped")
        self._sessions.clear()

    def _refuse_calls(self) -> None:
        while True:
            try:
                _, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(Stopped())

    # -- the sessions' side (their threads)

    def call(self, function: Callable[[Any], Any]) -> Any:
        """``function(service)`` run by the worker's loop; its result, or its exception raised here."""
        if self._stopping.is_set():
            raise Stopped()
        future: Future = Future()
        self._calls.put((function, future))
        self._wake()
        return future.result()

    def log(self, message: str) -> None:
        self._log(message)


class _Session:
    """One live source: a thread per stream (or one polling), each reconnecting on its own."""

    def __init__(self, owner: LiveSessions, name: str) -> None:
        self.owner, self.name = owner, name
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        self.states: dict[str, str] = {}
        self.recorded: tuple[str, str | None] | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        thread = threading.Thread(target=self._main, name=f"live:{self.name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def join(self) -> None:
        for thread in list(self.threads):
            thread.join(timeout=5)

    def _main(self) -> None:
        from provtui.connectors.ldap import LdapError
        from provtui.connectors.ldap.syncrepl import supports_syncrepl

        attempt = 0
        while not self.stopped.is_set():
            try:
                settings, _ = self.owner.call(lambda service: service.importer().live_settings(self.name))
                mode = "syncrepl" if supports_syncrepl(settings) else "dirsync" if settings.flavor == "ad" else "poll"
                break
            except Stopped:
                return
            except (LdapError, ProvtuiError) as error:  # not an LDAP error: the source's settings, a person must act
                attempt = self._after_failure("main", error, attempt, other="failed")
        else:
            return
        with self.lock:
            self.states.pop("main", None)
        self.owner.log(f"live source {self.name}: {mode}")
        if mode == "syncrepl":
            groups = threading.Thread(target=self._stream, args=("groups",), name=f"live:{self.name}:groups", daemon=True)
            self.threads.append(groups)
            groups.start()
            self._stream("users")
        elif mode == "dirsync":
            self._stream("dirsync")
        else:
            self._poll()

    def _stream(self, stream: str) -> None:
        """One stream's session, started again from the stored cookie after each failure."""
        from provtui.connectors.ldap import LdapError
        from provtui.connectors.ldap.source import user_attributes
        from provtui.connectors.ldap.syncrepl import SyncreplStream

        attempt = 0
        while not self.stopped.is_set():
            self._state(stream, "catching up")
            try:
                settings, cookies = self.owner.call(lambda service: service.importer().live_settings(self.name))
                if stream == "dirsync":
                    from provtui.connectors.ldap.dirsync import DirSyncStream

                    runner: Any = DirSyncStream(settings, cookie=cookies.get("dirsync"))
                elif stream == "users":
                    runner = SyncreplStream(
                        settings,
                        stream="users",
                        base=settings.base_dn,
                        search_filter=settings.effective_user_filter,
                        attributes=user_attributes(settings),
                        cookie=cookies.get("users"),
                    )
                else:
                    runner = SyncreplStream(
                        settings,
                        stream="groups",
                        base=settings.group_base or settings.base_dn,
                        search_filter=settings.effective_group_filter,
                        attributes=["cn", "modifyTimestamp"],
                        cookie=cookies.get("groups"),
                    )

                def deliver(batch: Any) -> None:
                    self.owner.call(lambda service: service.importer().apply_live(self.name, batch))
                    self._state(stream, "catching up" if batch.refreshing else "live")

                runner.run(deliver, self.stopped.is_set, on_live=lambda: self._state(stream, "live"))
                attempt = 0
            except Stopped:
                return
            except (LdapError, ProvtuiError) as error:
                attempt = self._after_failure(stream, error, attempt)

    def _poll(self) -> None:
        attempt = 0
        while not self.stopped.is_set():
            try:
                self.owner.call(lambda service: service.importer().poll_live(self.name))
                self._state("poll", "live")
                attempt = 0
                self.stopped.wait(POLL_SECONDS)
            except Stopped:
                return
            except ProvtuiError as error:
                attempt = self._after_failure("poll", error, attempt)

    def _after_failure(self, stream: str, error: Exception, attempt: int, *, other: str = "reconnecting") -> int:
        """The state a failure leaves the stream in, its wait before trying again; the next attempt's number.
        Held (the safeguard) and refused (a read presenting no one) wait long; a lost directory backs off."""
        from provtui.connectors.ldap import LdapError

        if isinstance(error, HeldForConfirmation):
            state, wait = "held", HELD_RETRY_SECONDS
        elif isinstance(error, ImportRefused):
            state, wait = "failed", FAILED_RETRY_SECONDS
        else:
            state = "reconnecting" if isinstance(error, LdapError) else other
            wait = FAILED_RETRY_SECONDS if state == "failed" else BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
        self._state(stream, state, str(error))
        self.stopped.wait(wait)
        return attempt + 1 if state == "reconnecting" else 0

    def _state(self, stream: str, state: str, message: str | None = None) -> None:
        """A stream's state; the source's (its worst stream's) recorded when it changes."""
        with self.lock:
            self.states[stream] = state
            if message:
                self.states[f"{stream}:message"] = message
            else:
                self.states.pop(f"{stream}:message", None)
            worst = min((s for k, s in self.states.items() if ":" not in k), key=_STATE_ORDER.index)
            worst_message = next((self.states.get(f"{k}:message") for k, s in self.states.items() if s == worst and ":" not in k), None)
            if self.recorded == (worst, worst_message):
                return
            self.recorded = (worst, worst_message)
        self.owner.log(f"live source {self.name}: {worst}" + (f": {worst_message}" if worst_message else ""))
        with contextlib.suppress(Stopped):
            self.owner.call(lambda service: service.importer().record_live_state(self.name, worst, worst_message))
