"""Group commit for the SCIM endpoint: the requests that arrive while others are being served run together.

Each request's service call used to take the server's lock and commit on its own, one fsync each: at eight
clients' requests at once, the endpoint spent most of its time waiting for the disk, one request after another.
A :class:`Batches` runs whatever calls are waiting in one turn of the lock (``ServiceHub.locked_batch``), each in
its own transaction and in its own request's context (client, correlation id), and answers them only once the
turn's commits are durable together.  A lone request is a turn of one, as before.
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


class Batches:
    def __init__(self, hub: ServiceHub) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, str, Callable[[Service], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]] = []
        self._serving = False

    async def run(self, actor: str, request: str, fn: Callable[[Service], Any]) -> Any:
        """``fn(actor's service)`` in the next turn; its result once that turn is durable, or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()  # the request's client and correlation id, for its call
        with self._lock:
            self._waiting.append((actor, request, lambda service: context.run(fn, service), future, loop))
            start, self._serving = not self._serving, True
        if start:
            threading.Thread(target=self._serve, name="scim-batches", daemon=True).start()
        return await future

    def _serve(self) -> None:
        while True:
            with self._lock:
                turn, self._waiting = self._waiting[:MAX_TURN], self._waiting[MAX_TURN:]
                if not turn:
                    self._serving = False
                    return
            try:
                outcomes = self.hub.locked_batch([(actor, request, fn) for actor, request, fn, _, _ in turn])
            except BaseException as error:  # the turn's commits were not made durable: none of them is answered done
                outcomes = [(False, error)] * len(turn)
            for (_, _, _, future, loop), outcome in zip(turn, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.cancelled():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
