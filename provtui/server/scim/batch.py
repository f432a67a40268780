"""Group commit for the SCIM endpoint: the requests that arrive while others are being served run together.

Each request's service call used to take the server's lock and commit on its own, one fsync each: at eight
clients' requests at once, the endpoint spent most of its time waiting for the disk, one request after another.
A :class:`Batches` runs whatever calls are waiting in one turn of the lock (``ServiceHub.locked_batch``), each in
its own transaction and in its own request's context (client, correlation id), and answers them only once the
turn's commits are durable together.  A lone request is a turn of one, as before.

One thread serves the turns for the server's life, woken when a call arrives (starting a thread for each busy
spell cost the event loop a wait for the new thread's first turn of the GIL); a turn's answers reach each event
loop in one wake-up.
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

Waiting = tuple[str, str, Callable[[Service], Any], Callable[[], None] | None, asyncio.Future[Any], asyncio.AbstractEventLoop]


class Batches:
    def __init__(self, hub: ServiceHub) -> None:
        self.hub = hub
        self._arrived = threading.Condition()
        self._waiting: list[Waiting] = []
        self._server: threading.Thread | None = None

    async def run(self, actor: str, request: str, fn: Callable[[Service], Any], check: Callable[[], None] | None = None) -> Any:
        """``fn(actor's service)`` in the next turn, after ``check()`` (see ``ServiceHub.locked_batch``); its
        result once that turn is durable, or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()  # the request's client and correlation id, for its call
        with self._arrived:
            self._waiting.append((actor, request, lambda service: context.run(fn, service), check, future, loop))
            if self._server is None:
                self._server = threading.Thread(target=self._serve, name="scim-batches", daemon=True)
                self._server.start()
            self._arrived.notify()
        return await future

    def _serve(self) -> None:
        while True:
            with self._arrived:
                while not self._waiting:
                    self._arrived.wait()
                turn, self._waiting = self._waiting[:MAX_TURN], self._waiting[MAX_TURN:]
            try:
                outcomes = self.hub.locked_batch([(actor, request, fn, check) for actor, request, fn, check, _, _ in turn])
            except BaseException as error:  # the turn's commits were not made durable: none of them is answered done
                outcomes = [(False, error)] * len(turn)
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], tuple[bool, Any]]]] = {}
            for (*_, future, loop), outcome in zip(turn, outcomes, strict=True):
                answers.setdefault(loop, []).append((future, outcome))
            for loop, settled in answers.items():
                loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], tuple[bool, Any]]]) -> None:
    for future, (ok, value) in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
