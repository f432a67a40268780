"""HTTP/1.1 over a Unix socket, with the standard library's http.client.

httpx served here first; measured on a user_view call it cost ~1 ms more a call than http.client, and its import
~160 ms more at every console's and command's start, for nothing the client uses (no TLS, no redirects, no cookies,
no pool over one socket).  The protocol is the same HTTP/1.1 either way; only the client library changed.
"""

from __future__ import annotations

import http.client
import select
import socket
from collections.abc import Iterator
from pathlib import Path


class Unreachable(OSError):
    """No server accepts a connection on the socket (none listening, no such path, or not this user's to open)."""


class HungUp(OSError):
    """The server closed the connection before its answer was whole."""


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path, *, timeout: float | None):
        super().__init__("provtui", timeout=timeout)  # the host only fills the Host header: nothing is looked up
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.socket_path))
        except OSError as error:
            sock.close()
            raise Unreachable(error.errno, error.strerror or str(error)) from None
        self.sock = sock

    def stale(self) -> bool:
        """An idle kept-alive connection the server has since closed: readable with nothing asked means EOF.
        Checked before a request, so a call is never sent twice (httpcore checks the same way)."""
        if self.sock is None:
            return False
        poller = select.poll()  # (not select(): it refuses a descriptor past 1023, which a busy process may hold)
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))


class UnixHTTPClient:
    """One kept-alive connection to the server: ``request`` gives (status, body)."""

    def __init__(self, socket_path: Path, *, timeout: float | None):
        self._connection = UnixHTTPConnection(socket_path, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection = self._connection
        if connection.stale():
            connection.close()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            content = response.read()
        except Unreachable:
            connection.close()
            raise
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            connection.close()
            raise HungUp(str(error) or type(error).__name__) from None
        if response.will_close:
            connection.close()
        return response.status, content

    def lines(self, path: str) -> Iterator[str]:
        """A streamed GET's lines (server-sent events), until the server ends the stream."""
        connection = self._connection
        connection.close()  # a stream has its connection to itself
        try:
            connection.request("GET", path, headers={"accept": "text/event-stream"})
            response = connection.getresponse()
            for raw in response:
                yield raw.decode("utf-8", "replace").rstrip("\r\n")
        except Unreachable:
            raise
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            raise HungUp(str(error) or type(error).__name__) from None
        finally:
            connection.close()

    def close(self) -> None:
        self._connection.close()
