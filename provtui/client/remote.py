"""A Service that lives in a provtui server: the same methods, each one call over the server's Unix socket.

The CLI and the console hold a ``RemoteService`` where they would hold a ``Service`` (``--server PATH`` or
``PROVTUI_SERVER``): what they call, what comes back and what is raised are the same, so every command
keeps its options, JSON keys and exit codes.  The server decides who the caller is (the kernel tells it),
so nothing here names an actor.  A console follows the server's event stream: ``refresh()`` says whether
the store changed since it last asked, without reading anything.
"""

from __future__ import annotations

import errno
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provtui.client.unix_http import HungUp, UnixHTTPClient, Unreachable
from provtui.domain.errors import ProvtuiError
from provtui.protocol import wire
from provtui.protocol.api import CALL_PATH, EVENTS_PATH, HELLO_PATH

EVENTS_TIMEOUT = 60.0  # the server sends a heartbeat every 15 s: a silent minute is a dead server


class ServerUnreachable(ProvtuiError):
    """No server answers on the socket (none running, or a socket this user may not open)."""

    exit_code = 2


class RemoteService:
    remote = True

    def __init__(self, socket_path: str | Path):
        self.socket_path = Path(socket_path)
        self._http = UnixHTTPClient(self.socket_path, timeout=None)  # a sync may take minutes
        self._ids = itertools.count(1)
        self._hello: dict[str, Any] | None = None
        self._changed = threading.Event()
        self._events: threading.Thread | None = None
        self._closed = threading.Event()

    @classmethod
    def connect(cls, socket_path: str | Path) -> RemoteService:
        remote = cls(socket_path)
        remote.hello()
        return remote

    # -- the connection ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        try:
            return self._http.request(method, path, body, headers)
        except Unreachable as error:
            raise self._unreachable(error) from None
        except HungUp as error:
            raise wire.ServerFailed(f"the server at {self.socket_path} hung up: {error}") from None

    def _unreachable(self, error: OSError) -> ServerUnreachable:
        if error.errno in (errno.EACCES, errno.EPERM):
            return ServerUnreachable(f"this user may not connect to {self.socket_path}")
        return ServerUnreachable(f"no provtui server answers on {self.socket_path}: {error.strerror}")

    def hello(self) -> dict[str, Any]:
        if self._hello is None:
            _, content = self._request("GET", HELLO_PATH)
            body = wire.loads(content)
            if body.get("api") != wire.API_VERSION:
                raise wire.ServerFailed(f"the server speaks API v{body.get('api')}, this provtui v{wire.API_VERSION}")
            self._hello = body
        return self._hello

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": {"args": list(args), "kwargs": kwargs}}
        status, content = self._request("POST", CALL_PATH, wire.dumps(payload, enums=True), {"content-type": "application/json"})
        if status == 503:
            raise wire.ServerFailed("the server is serving as many connections as it takes: try again")
        try:
            body = wire.loads(content)
        except wire.WireError:
            raise wire.ServerFailed(f"the server answered HTTP {status} with no call result") from None
        if "error" in body:
            wire.raise_error(body["error"])
        return body.get("result")

    def close(self) -> None:
        self._closed.set()
        self._http.close()

    # -- what the faces read off a Service --------------------------------------------------------------

    @property
    def actor(self) -> str:
        return str(self.hello()["actor"])

    @property
    def location(self) -> Path:
        return Path(self.hello()["store"])

    @property
    def label(self) -> str:
        return f"{self.hello()['store']} via {self.socket_path}"

    def rules(self) -> _Part:
        return _Part(self, "rules")

    def importer(self) -> _Part:
        return _Part(self, "importer")

    def reports(self) -> _Part:
        return _Part(self, "reports")

    def __getattr__(self, name: str) -> Any:
        return self._method(name)

    def _method(self, name: str) -> Callable[..., Any]:
        """A served method of the facade (``list_users``) or of a part (``rules.change``), called on the server."""
        if name.rpartition(".")[2].startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    # -- the server's own calls -------------------------------------------------------------------------

    def sync(self, max_wait: float) -> Any:
        return self.call("sync", max_wait=max_wait)

    def set_password(self, login: str, password: str | None) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.call("set_password", login, password)
        return results

    def check_store(self) -> dict[str, Any]:
        report: dict[str, Any] = self.call("check_store")
        return report

    # -- change notifications ---------------------------------------------------------------------------

    def commit_signal(self) -> None:
        """No descriptor to wait on: the server's event stream is followed, and ``refresh`` says what it said."""
        return None

    def drain_commit_signal(self) -> None:
        pass

    def refresh(self) -> bool:
        """Whether the store changed since the last ask (the server's event stream says so; nothing is read)."""
        if self._events is None:
            self._events = threading.Thread(target=self._follow, name="provtui-events", daemon=True)
            self._events.start()
        changed = self._changed.is_set()
        self._changed.clear()
        return changed

    def _follow(self) -> None:
        """Read the event stream until closed, reconnecting after a second when the server goes away."""
        client = UnixHTTPClient(self.socket_path, timeout=EVENTS_TIMEOUT)
        seen = str(self.hello()["seq"])  # as of connecting: a change after it, before the stream is up, counts
        while not self._closed.is_set():
            try:
                for line in client.lines(EVENTS_PATH):
                    if line.startswith("data:"):
                        seq = line[5:].strip()
                        if seq != seen:
                            self._changed.set()
                        seen = seq
            except (Unreachable, HungUp):
                pass
            if not self._closed.is_set():
                self._changed.set()  # the stream broke: whatever happened meanwhile, read again
                self._closed.wait(1.0)
        client.close()


class _Part:
    """One of the facade's parts (``rules()``, ``importer()``, ``reports()``), its methods called on the server."""

    def __init__(self, remote: RemoteService, name: str):
        self._remote = remote
        self._name = name

    def __getattr__(self, name: str) -> Any:
        return self._remote._method(f"{self._name}.{name}")
