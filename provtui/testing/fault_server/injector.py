"""The fault-injecting WSGI middleware around scim2-server's app, its counters and its control endpoints."""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_plus

from provtui.testing.fault_server.specs import ERROR_SCHEMA, KINDS, LIST_SCHEMA, SCIM_JSON, Fault, FaultSpecError, request_kind

CONTROL_PATHS = ("/_faults", "/_stats")
SOCKET_KEY = "provtui.fault_server.socket"  # the environ key of the client's connection (server.py puts it there)


class _Dropped(ConnectionAbortedError):
    """Raised once the connection is gone: wsgiref then returns without writing a reply."""


class FaultInjector:
    """WSGI middleware: injects the configured faults around ``app`` and counts requests.

    Stats (GET /_stats): ``requests`` every SCIM request received, ``reached_app`` those
    passed to the SCIM app, ``app_status`` the app's answers (``"POST /Users 201"``), all
    by request kind; ``faults`` injections by fault kind; ``creates_reached_app`` and
    ``creates_committed`` (POST /Users the app answered 201); ``in_flight`` and
    ``max_in_flight`` SCIM requests being served at once.
    """

    def __init__(self, app: Callable, *, seed: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults: dict[str, Fault] = {}
        self._sleep = sleep
        self._reset_stats()
        self._in_flight = 0

    # -- configuration -------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply a POST /_faults body (validated whole before anything changes)."""
        if not isinstance(changes, dict):
            raise FaultSpecError("the body must be a JSON object")
        changes = dict(changes)
        reset = changes.pop("reset", False)
        seed = changes.pop("seed", None)
        unknown = set(changes) - set(KINDS)
        if unknown:
            raise FaultSpecError(f"unknown fault kinds {sorted(unknown)}; known: {list(KINDS)}")
        built = {kind: None if spec is None else Fault(kind, spec) for kind, spec in changes.items()}
        with self._lock:
            if reset:
                self._faults.clear()
            if seed is not None:
                self._rng.seed(seed)
            for kind, fault in built.items():
                if fault is None:
                    self._faults.pop(kind, None)
                else:
                    self._faults[kind] = fault

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return {kind: fault.view() for kind, fault in self._faults.items()}

    def _reset_stats(self) -> None:
        self._requests: Counter[str] = Counter()
        self._reached: Counter[str] = Counter()
        self._app_status: Counter[str] = Counter()
        self._fired: Counter[str] = Counter()
        self._max_in_flight = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "reached_app": dict(self._reached),
                "app_status": dict(self._app_status),
                "faults": dict(self._fired),
                "creates_reached_app": self._reached["POST /Users"],
                "creates_committed": self._app_status["POST /Users 201"],
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_stats()
            self._max_in_flight = self._in_flight

    # -- serving -------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path in CONTROL_PATHS:
            return self._control(environ, start_response, path)
        method = environ["REQUEST_METHOD"].upper()
        kind = request_kind(method, path)
        with self._lock:
            self._requests[kind] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            return self._serve(environ, start_response, method, kind)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _fires(self, kind: str, method: str, where: str, query: str) -> dict[str, Any] | None:
        """The params of fault ``kind`` if it fires on this request, counting it."""
        with self._lock:
            fault = self._faults.get(kind)
            if fault is None or not fault.matches(method, where, query) or not fault.fire(self._rng):
                return None
            self._fired[kind] += 1
            return dict(fault.params)

    def _serve(self, environ: dict[str, Any], start_response: Callable, method: str, kind: str) -> Iterable[bytes]:
        where = kind.partition(" ")[2]
        query = unquote_plus(environ.get("QUERY_STRING", ""))

        def fires(fault_kind: str) -> dict[str, Any] | None:
            return self._fires(fault_kind, method, where, query)

        if (down := fires("app_down")) is not None:
            if down["mode"] == "reset":
                self._drop(environ, reset=True)
            return _error(start_response, 503, "the application is down (fault injection)", retry_after=down["retry_after"])
        slow = fires("slow")
        if slow is not None and slow["when"] == "before":
            self._sleep(slow["delay_ms"] / 1000)
        reply = self._terminal(environ, start_response, fires)
        if reply is None:
            reply = self._call_app(environ, start_response, kind, fires)
        if slow is not None and slow["when"] == "after":
            self._sleep(slow["delay_ms"] / 1000)
        return reply

    def _terminal(self, environ: dict[str, Any], start_response: Callable, fires: Callable) -> Iterable[bytes] | None:
        """The reply of the first terminal fault that fires before the app, if any."""
        if (spec := fires("rate_limit")) is not None:
            return _error(start_response, 429, "too many requests (fault injection)", retry_after=spec["retry_after"])
        if (spec := fires("unavailable")) is not None:
            return _error(start_response, spec["status"], "service unavailable (fault injection)", retry_after=spec["retry_after"])
        if (spec := fires("bad_request")) is not None:
            return _error(start_response, spec["status"], spec["detail"], scim_type=spec["scim_type"])
        if (spec := fires("drop")) is not None:
            _read_body(environ)
            self._drop(environ, reset=spec["reset"])
        if (spec := fires("malformed")) is not None:
            _read_body(environ)
            return _reply(start_response, spec["status"], spec["body"].encode())
        if fires("stale_search") is not None:
            empty = {"schemas": [LIST_SCHEMA], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}
            return _reply(start_response, 200, json.dumps(empty).encode())
        if (spec := fires("scripted")) is not None:
            _read_body(environ)
            return _scripted_reply(start_response, spec)
        return None

    def _call_app(self, environ: dict[str, Any], start_response: Callable, kind: str, fires: Callable) -> Iterable[bytes]:
        with self._lock:
            self._reached[kind] += 1
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured.update(status=status, headers=headers)
            return lambda data: None  # scim2-server returns its body, never writes

        body = b"".join(self.app(environ, capture))
        code = int(captured["status"].split()[0])
        with self._lock:
            self._app_status[f"{kind} {code}"] += 1
        spec = fires("after_commit")
        if spec is not None:
            if spec["reply"] == "malformed":
                body = body[: len(body) // 2]
            else:
                self._drop(environ, reset=spec["reply"] == "reset")
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _drop(environ: dict[str, Any], *, reset: bool) -> None:
        """Close the client's connection with no reply: FIN, or RST with ``reset``."""
        sock: socket.socket = environ[SOCKET_KEY]
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                os.close(sock.detach())  # linger 0: the close sends RST, and nothing else
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client left first
        raise _Dropped

    # -- control -------------------------------------------------------------------

    def _control(self, environ: dict[str, Any], start_response: Callable, path: str) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        if path == "/_stats":
            if method == "DELETE":
                self.reset_stats()
            elif method != "GET":
                return _json(start_response, 405, {"error": f"{method} not allowed on {path}"})
            return _json(start_response, 200, self.stats())
        if method == "POST":
            try:
                self.configure(json.loads(_read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return _json(start_response, 400, {"error": str(error)})
        elif method == "DELETE":
            self.configure({"reset": True})
        elif method != "GET":
            return _json(start_response, 405, {"error": f"{method} not allowed on {path}"})
        return _json(start_response, 200, self.faults())


def _scripted_reply(start_response: Callable, spec: dict[str, Any]) -> list[bytes]:
    body: bytes = spec["body"]
    headers = [(name, value) for name, value in spec["headers"]]
    if not any(name.lower() == "content-length" for name, _ in headers):
        headers.append(("Content-Length", str(len(body))))
    start_response(f"{spec['status']} Scripted", headers)
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body, so a dropped connection drops a fully received request."""
    length = environ.get("CONTENT_LENGTH")
    return environ["wsgi.input"].read(int(length)) if length else b""


def _reply(start_response: Callable, status: int, body: bytes, extra: list[tuple[str, str]] = ()) -> list[bytes]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Fault"
    headers = [("Content-Type", SCIM_JSON), ("Content-Length", str(len(body))), *extra]
    start_response(f"{status} {phrase}", headers)
    return [body]


def _error(start_response: Callable, status: int, detail: str, *, retry_after: Any = None, scim_type: str | None = None) -> list[bytes]:
    error: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        error["scimType"] = scim_type
    extra = [] if retry_after is None else [("Retry-After", str(retry_after))]
    return _reply(start_response, status, json.dumps(error).encode(), extra)


def _json(start_response: Callable, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
