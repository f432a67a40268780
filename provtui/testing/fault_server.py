"""A real scim2-server behind a fault-injecting WSGI middleware, in its own process.

The SCIM protocol is served by scim2-server's own WSGI application (the one its
``scim2-server`` command serves: in-memory storage, default schemas, static bearer
tokens); this module only wraps it.  It is served by the stdlib ``wsgiref`` server with
scim2-server's ``ThreadingWSGIServer`` (one thread per connection, one request per
connection) and a deeper listen backlog, so slow replies never hold up other requests.

Faults are set at runtime through unauthenticated control endpoints beside ``/v2``
(bind to a loopback address only):

``GET /_faults``
    the fault specs, with how many times each fired and how many "next" remain;
``POST /_faults``
    a JSON object ``{kind: spec or null}``: each kind given is replaced (null removes
    it); ``"reset": true`` drops every other fault first, ``"seed": N`` reseeds the RNG;
``DELETE /_faults``
    drops every fault;
``GET /_stats`` / ``DELETE /_stats``
    the request counters (see :class:`FaultInjector`), or reset them.

A spec fires on a matching request either for the ``next`` N matching requests, or with
``probability`` (default 1: every matching request), at most ``limit`` times in all.
It matches on ``method`` (one or a list), ``path`` (the request kind: ``/Users``,
``/Users/{id}``, ``/ServiceProviderConfig``...) and ``query`` (a substring of the
decoded query string); all optional.  The kinds, tried in this order (the first
terminal one that fires answers the request):

``app_down``       every matching request fails: ``mode`` "503" (default) or "reset" (RST);
``slow``           wait ``delay_ms`` ``when`` "before" (default) or "after" the app answers,
                   then carry on (combines with the others);
``rate_limit``     429 with ``Retry-After: retry_after`` (default 1);
``unavailable``    503 (``status``), with ``Retry-After`` if ``retry_after`` is set;
``bad_request``    a SCIM error: ``status`` (400), ``detail``, ``scim_type``; not retryable;
``drop``           read the request, then close the connection without a reply (FIN, or
                   RST with ``reset``);
``malformed``      200 with a broken JSON ``body``;
``stale_search``   a filtered GET answered with an empty ListResponse, as by a lagging
                   search index;
``after_commit``   the SCIM app serves the request (a create happens), then the reply is
                   lost: ``reply`` "drop" (default), "reset" or "malformed" (truncated).
``scripted``       any reply at all, for fuzzing clients: ``status``, the exact body bytes as
                   ``body_b64`` (base64, so invalid UTF-8 can be sent), and ``headers`` as
                   ``[[name, value], ...]`` (default: the SCIM content type; a Content-Length
                   given is sent as is, even when it lies).

Run it as ``python -m provtui.testing.fault_server --port P --bearer-token T``, or from
tests with :class:`FaultServerProcess`; :func:`set_faults` and :func:`stats` talk to the
control endpoints.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_plus
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx

from provtui.testing.scim_server import ScimServerProcess

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CONTROL_PATHS = ("/_faults", "/_stats")
_SOCKET_KEY = "provtui.fault_server.socket"
_MODULE = "provtui.testing.fault_server"

# Fault kinds in the order they are tried, each with its own parameters and their defaults.
_COMMON = {"probability": None, "next": None, "limit": None, "method": None, "path": None, "query": None}
KINDS: dict[str, dict[str, Any]] = {
    "app_down": {"mode": "503", "retry_after": None},
    "slow": {"delay_ms": 1000, "when": "before"},
    "rate_limit": {"retry_after": 1},
    "unavailable": {"status": 503, "retry_after": None},
    "bad_request": {"status": 400, "detail": "request rejected by fault injection", "scim_type": "invalidValue"},
    "drop": {"reset": False},
    "malformed": {"status": 200, "body": '{"schemas": ["' + LIST_SCHEMA + '"], "totalResults": 1, "Resources": [{"id": "2819c2'},
    "stale_search": {},
    "after_commit": {"reply": "drop"},
    "scripted": {"status": 200, "body_b64": "", "headers": None},
}
_CHOICES = {"mode": {"503", "reset"}, "when": {"before", "after"}, "reply": {"drop", "reset", "malformed"}}


class FaultSpecError(ValueError):
    """A fault spec sent to POST /_faults that does not make sense."""


class _Dropped(ConnectionAbortedError):
    """Raised once the connection is gone: wsgiref then returns without writing a reply."""


def request_kind(method: str, path: str) -> str:
    """``METHOD /Resource`` or ``METHOD /Resource/{id}``: the key of stats and of ``path`` matches."""
    if path == "/v2" or path.startswith("/v2/"):
        path = path[3:]
    segments = [s for s in path.removesuffix(".scim").split("/") if s]
    if not segments:
        where = "/"
    elif len(segments) == 1:
        where = f"/{segments[0]}"
    else:
        tail = segments[1] if segments[1].startswith(".") else "{id}"  # e.g. /Users/.search
        where = f"/{segments[0]}/{tail}"
    return f"{method.upper()} {where}"


class _Fault:
    """One configured fault: its parameters and how often it fired."""

    def __init__(self, kind: str, raw: dict[str, Any]) -> None:
        if not isinstance(raw, dict):
            raise FaultSpecError(f"{kind}: the spec must be a JSON object")
        allowed = {**_COMMON, **KINDS[kind]}
        unknown = set(raw) - set(allowed)
        if unknown:
            raise FaultSpecError(f"{kind}: unknown parameters {sorted(unknown)}")
        self.kind = kind
        self.params = {**allowed, **raw}
        p = self.params
        if p["probability"] is None:
            p["probability"] = 1.0
        if not isinstance(p["probability"], (int, float)) or not 0 <= p["probability"] <= 1:
            raise FaultSpecError(f"{kind}: probability must be between 0 and 1")
        for name in ("next", "limit"):
            if p[name] is not None and (not isinstance(p[name], int) or p[name] < 0):
                raise FaultSpecError(f"{kind}: {name} must be a non-negative integer")
        for name, choices in _CHOICES.items():
            if name in p and str(p[name]) not in choices:
                raise FaultSpecError(f"{kind}: {name} must be one of {sorted(choices)}")
        if kind == "scripted":
            _check_scripted(p)
        methods = p["method"]
        if methods is not None:
            methods = [methods] if isinstance(methods, str) else list(methods)
            p["method"] = [m.upper() for m in methods]
        self.remaining: int | None = p["next"]
        self.fired = 0

    def matches(self, method: str, where: str, query: str) -> bool:
        p = self.params
        if p["method"] is not None and method not in p["method"]:
            return False
        if p["path"] is not None and where != p["path"]:
            return False
        if p["query"] is not None and p["query"] not in query:
            return False
        return not (self.kind == "stale_search" and (method != "GET" or "filter=" not in query))

    def fire(self, rng: random.Random) -> bool:
        """Whether it fires on one matching request (the caller holds the lock)."""
        if self.params["limit"] is not None and self.fired >= self.params["limit"]:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        elif rng.random() >= self.params["probability"]:
            return False
        self.fired += 1
        return True

    def view(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.params.items() if k != "body"}  # the decoded bytes: body_b64 shows them
        return {**shown, "remaining": self.remaining, "fired": self.fired}


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
        self._faults: dict[str, _Fault] = {}
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
        built = {kind: None if spec is None else _Fault(kind, spec) for kind, spec in changes.items()}
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
        sock: socket.socket = environ[_SOCKET_KEY]
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


def _check_scripted(params: dict[str, Any]) -> None:
    status = params["status"]
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 999:
        raise FaultSpecError("scripted: status must be an integer from 200 to 999")  # 1xx are not final replies
    try:
        params["body"] = base64.b64decode(params["body_b64"], validate=True)
    except (TypeError, ValueError) as error:
        raise FaultSpecError(f"scripted: body_b64 is not base64 ({error})") from None
    headers = params["headers"]
    if headers is None:
        params["headers"] = [["Content-Type", SCIM_JSON]]
    elif not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(part, str) for part in h) for h in headers
    ):
        raise FaultSpecError("scripted: headers must be a list of [name, value] string pairs")
    else:
        for name, value in headers:
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise FaultSpecError(f"scripted: header {name} is not Latin-1, which HTTP/1.1 cannot carry") from None


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
    start_response(f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# ----------------------------------------------------------------------------- the server


def build_scim_app(bearer_tokens: Iterable[str]) -> Callable:
    """scim2-server's WSGI app as its ``scim2-server`` command builds it, defaults throughout."""
    from scim2_models import ScimProvider
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import (
        BEARER_TOKEN_SCHEME,
        BearerTokenApplication,
    )
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    tokens = list(bearer_tokens)
    config = load_default_service_provider_config()
    if tokens:  # announce the scheme, so 401 replies carry WWW-Authenticate
        config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(load_default_schemas().values(), load_default_resource_types().values(), config=config)
    service = ScimService(provider, secret=os.environ.get("SCIM2_SERVER_SECRET") or secrets.token_urlsafe(32))
    return BearerTokenApplication(InMemoryStorage(), provider, service=service, bearer_tokens=tokens)


class _RequestHandler(WSGIRequestHandler):
    """wsgiref's handler, exposing the connection so a fault can drop it."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[_SOCKET_KEY] = self.connection
        return environ


def make_fault_server(host: str, port: int, injector: FaultInjector):
    """A threaded wsgiref server (scim2-server's ThreadingWSGIServer) serving ``injector``."""
    from scim2_server.testserver.cli import ThreadingWSGIServer

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        request_queue_size = 256  # the default 5 overflows under concurrent connects

    return make_server(host, port, injector, server_class=Server, handler_class=_RequestHandler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}", description="scim2-server behind a fault-injecting proxy")
    parser.add_argument("--hostname", default="127.0.0.1", metavar="HOST")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bearer-token", action="append", metavar="TOKEN", help="accepted token (repeatable); none: accept all")
    parser.add_argument("--seed", type=int, help="seed of the fault RNG")
    parser.add_argument("--faults", metavar="JSON", help="initial faults, as the body of POST /_faults")
    args = parser.parse_args(argv)
    injector = FaultInjector(build_scim_app(args.bearer_token or []), seed=args.seed)
    if args.faults:
        injector.configure(json.loads(args.faults))
    with make_fault_server(args.hostname, args.port, injector) as server:
        host = f"[{args.hostname}]" if ":" in args.hostname else args.hostname
        # One line on stdout once bound: the launcher waits for it (and reads nothing else).
        print(f"Serving SCIM with faults on http://{host}:{args.port}/v2", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


# ----------------------------------------------------------------------------- launcher and client


class FaultServerProcess(ScimServerProcess):
    """A fault server subprocess; starts, stops and picks its port as ScimServerProcess does.

    ``url`` is the SCIM base URL (``.../v2``); the helper methods drive the control endpoints.
    """

    def __repr__(self) -> str:
        return f"FaultServerProcess(url={self.url!r}, running={self.running})"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", _MODULE]

    def set_faults(self, *, reset: bool = False, seed: int | None = None, **faults: dict[str, Any] | None) -> dict[str, Any]:
        return set_faults(self.url, reset=reset, seed=seed, **faults)

    def clear_faults(self) -> None:
        clear_faults(self.url)

    def stats(self) -> dict[str, Any]:
        return stats(self.url)

    def reset_stats(self) -> None:
        reset_stats(self.url)


def control_url(url: str) -> str:
    """The server root from its SCIM base URL (``http://h:p/v2``) or its root."""
    return url.rstrip("/").removesuffix("/v2")


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _control(method: str, url: str, path: str, body: Any = None) -> Any:
    global _client
    with _client_lock:
        if _client is None:  # one client for all calls: building one (its SSL context) costs ~50 ms
            _client = httpx.Client(timeout=5.0)
    response = _client.request(method, control_url(url) + path, json=body)
    if response.status_code == 400:
        raise FaultSpecError(response.json()["error"])
    response.raise_for_status()
    return response.json()


def set_faults(url: str, *, reset: bool = False, seed: int | None = None, **faults: dict[str, Any] | None) -> dict[str, Any]:
    """Set (or with None, remove) faults by kind: ``set_faults(url, slow={"delay_ms": 500})``.

    ``reset`` drops the faults not named first; returns every fault now set.
    """
    body: dict[str, Any] = dict(faults)
    if reset:
        body["reset"] = True
    if seed is not None:
        body["seed"] = seed
    return _control("POST", url, "/_faults", body)


def get_faults(url: str) -> dict[str, Any]:
    return _control("GET", url, "/_faults")


def clear_faults(url: str) -> None:
    _control("DELETE", url, "/_faults")


def stats(url: str) -> dict[str, Any]:
    """The server's counters; see :class:`FaultInjector`."""
    return _control("GET", url, "/_stats")


def reset_stats(url: str) -> None:
    _control("DELETE", url, "/_stats")


if __name__ == "__main__":
    raise SystemExit(main())
