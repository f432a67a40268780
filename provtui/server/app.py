"""The server's ASGI application (Starlette): the versioned API the console and the CLI call.

- ``GET /v1/hello``: the protocol version, who the kernel says you are, and the store's label.
- ``POST /v1/call``: one JSON-RPC 2.0 request, naming a served method (provtui.protocol.api).
- ``GET /v1/events``: server-sent events, one ``data: <seq>`` each time the store commits, so a console
  re-reads when something changed instead of polling.

Bodies are read up to ``MAX_BODY`` bytes; a larger one is refused (413) before any of it is decoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from provtui.protocol import wire
from provtui.protocol.api import CALL_PATH, EVENTS_PATH, HELLO_PATH, SERVER, served
from provtui.server.hub import ServiceHub, bound
from provtui.server.peer import Peer

MAX_BODY = 64 * 1024 * 1024  # a CSV of a million people fits; a hostile 100 MB body does not
HEARTBEAT_SECONDS = 15.0


class Changes:
    """The store's newest seq, and a wake-up for whoever waits on the next one (the event streams)."""

    def __init__(self, seq: int):
        self.seq = seq
        self.closing = False
        self._changed = asyncio.Condition()

    async def bump(self, seq: int) -> None:
        async with self._changed:
            self.seq = seq
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closing = True
            self._changed.notify_all()

    async def next_after(self, seq: int, timeout: float) -> int:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.seq != seq or self.closing), timeout)
            except TimeoutError:
                pass
            return self.seq


def _json(body: Any, status: int = 200) -> Response:
    return Response(wire.dumps(body), status_code=status, media_type="application/json")


def _rpc_error(request_id: Any, error: dict[str, Any], status: int = 200) -> Response:
    return _json({"jsonrpc": "2.0", "id": request_id, "error": error}, status)


def _peer(request: Request) -> Peer | None:
    return (request.scope.get("extensions") or {}).get("peer")


async def _body(request: Request) -> bytes | None:
    """The request's body, or None when it runs past MAX_BODY (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(hub: ServiceHub, changes: Changes, *, label: str) -> Starlette:
    async def hello(request: Request) -> Response:
        peer = _peer(request)
        return _json({"api": wire.API_VERSION, "actor": peer.user if peer else None, "store": label, "seq": changes.seq})

    async def call(request: Request) -> Response:
        peer = _peer(request)
        if peer is None:  # not over a Unix socket: nobody to name
            return _rpc_error(None, {"code": wire.INVALID_REQUEST, "message": "the server answers on its Unix socket only"}, 403)
        try:
            body = await _body(request)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            message = f"the request is larger than the server accepts ({MAX_BODY // (1024 * 1024)} MB)"
            return _rpc_error(None, {"code": wire.INVALID_REQUEST, "message": message}, 413)
        try:
            message = wire.loads(body)
        except wire.WireError as error:
            return _rpc_error(None, {"code": wire.INVALID_REQUEST, "message": f"the request is not a call: {error}"}, 400)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
            return _rpc_error(None, {"code": wire.INVALID_REQUEST, "message": "the request is not a JSON-RPC 2.0 call"}, 400)
        request_id, method = message.get("id"), message["method"]
        params = message.get("params") or {}
        args = params.get("args", []) if isinstance(params, dict) else None
        kwargs = params.get("kwargs", {}) if isinstance(params, dict) else None
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            return _rpc_error(request_id, {"code": wire.INVALID_PARAMS, "message": "params: {args: [...], kwargs: {...}}"}, 400)
        if not served(method):
            return _rpc_error(
                request_id, {"code": wire.METHOD_NOT_FOUND, "message": f"no method {method!r} in API v{wire.API_VERSION}"}, 404
            )
        if method in SERVER:  # the hub's own coroutines (they run its engine)
            try:
                result = await bound(method, getattr(hub, method), [peer.user, *args], kwargs)()
            except Exception as error:  # the service's errors travel; anything else is named by its type only
                return _rpc_error(request_id, wire.error_object(error))
            return _json({"jsonrpc": "2.0", "id": request_id, "result": result})

        def answer() -> bytes:
            # Called and encoded in one trip to a thread (each trip costs ~0.1 ms), off the event loop: the
            # call blocks, and encoding 50,000 users takes milliseconds every other client would wait.
            try:
                result = hub.call(peer.user, method, args, kwargs)
            except Exception as error:
                return wire.dumps({"jsonrpc": "2.0", "id": request_id, "error": wire.error_object(error)})
            return wire.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

        return Response(await run_in_threadpool(answer), media_type="application/json")

    async def events(request: Request) -> Response:
        peer = _peer(request)
        if peer is None:
            return Response(status_code=403)
        try:
            await run_in_threadpool(hub.locked, peer.user, "events", lambda service: None)  # admins only
        except Exception as error:
            return _rpc_error(None, wire.error_object(error), 403)

        async def stream() -> AsyncIterator[bytes]:
            seq = changes.seq
            yield f"retry: 1000\ndata: {seq}\n\n".encode()
            while not changes.closing:
                newer = await changes.next_after(seq, HEARTBEAT_SECONDS)
                if newer != seq:
                    seq = newer
                    yield f"data: {seq}\n\n".encode()
                elif not changes.closing:
                    yield b": still here\n\n"  # a heartbeat: a client sees a dead server within a beat

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route(HELLO_PATH, hello), Route(CALL_PATH, call, methods=["POST"]), Route(EVENTS_PATH, events)])
