"""Group commit for the SCIM endpoint: the requests that arrive while others are being served run together.

Each request's service call used to take the server's lock and commit on its own, one fsync each: at eight
clients' requests at once, the endpoint spent most of its time waiting for the disk, one request after another.
A :class:`Batches` runs whatever calls are waiting in one turn of the lock (``ServiceHub.batch_held``), each in
its own transaction and in its own request's context (client, correlation id), and answers them only once the
turn's commits are durable together.  A lone request is a turn of one, as before.

A turn runs on the event loop itself when the lock is free: the server's Python runs one thread at a time, so
a thread of its own gained nothing but the hand-overs (a wake-up each way, and the loop's thread and the turn's
taking turns at the interpreter).  When another thread holds the lock (an admin's call, a scheduled import),
the turn goes to the one thread that waits for it, so the loop never blocks on the lock.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any

from provtui.server.hub import ServiceHub
from provtui.service import Service

MAX_TURN = 64  # calls in one turn at most: a turn's first answer waits for its last

Waiting = tuple[str, str, Callable[[Service], Any], Callable[[], None] | None, asyncio.Future[Any]]
Turn = list[Waiting]


class Batches:
    def __init__(self, hub: ServiceHub) -> None:
        self.hub = hub
        self._waiting: Turn = []  # (the event loop's only)
        self._draining = False
        self._handed = threading.Condition()
        self._handed_turns: list[tuple[Turn, asyncio.AbstractEventLoop]] = []
        self._server: threading.Thread | None = None

    async def run(self, actor: str, request: str, fn: Callable[[Service], Any], check: Callable[[], None] | None = None) -> Any:
        """``fn(actor's service)`` in the next turn, after ``check()`` (see ``ServiceHub.batch_held``); its
        result once that turn is durable, or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()  # the request's client and correlation id, for its call
        self._waiting.append((actor, request, lambda service: context.run(fn, service), check, future))
        if not self._draining:  # (the requests that arrive meanwhile join this turn)
            self._draining = True
            loop.call_soon(self._drain, loop)
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        self._draining = False
        while self._waiting:
            turn, self._waiting = self._waiting[:MAX_TURN], self._waiting[MAX_TURN:]
            if not self.hub.lock.acquire(blocking=False):
                self._hand_over(turn, loop)
                continue
            try:
                outcomes = _outcomes(self.hub.batch_held, turn)
            finally:
                self.hub.lock.release()
            _settle([(future, outcome) for (*_, future), outcome in zip(turn, outcomes, strict=True)])

    def _hand_over(self, turn: Turn, loop: asyncio.AbstractEventLoop) -> None:
        with self._handed:
            self._handed_turns.append((turn, loop))
            if self._server is None:
                self._server = threading.Thread(target=self._serve, name="scim-batches", daemon=True)
                self._server.start()
            self._handed.notify()

    def _serve(self) -> None:
        while True:
            with self._handed:
                while not self._handed_turns:
                    self._handed.wait()
                turn, loop = self._handed_turns.pop(0)
            outcomes = _outcomes(self.hub.locked_batch, turn)
            loop.call_soon_threadsafe(_settle, [(future, outcome) for (*_, future), outcome in zip(turn, outcomes, strict=True)])


def _outcomes(run: Callable[[list[Any]], list[tuple[bool, Any]]], turn: Turn) -> list[tuple[bool, Any]]:
    try:
        return run([(actor, request, fn, check) for actor, request, fn, check, _ in turn])
    except Exception as error:  # the turn's commits were not made durable: none of them is answered done
        return [(False, error)] * len(turn)


def _settle(settled: list[tuple[asyncio.Future[Any], tuple[bool, Any]]]) -> None:
    for future, (ok, value) in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
