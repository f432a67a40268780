"""The client's HTTP over a Unix socket (provtui/client/unix_http.py) against a bare socket server that does what
a server may: answer and keep the connection, answer and close it, hang up mid-answer, or not be there."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from provtui.client.unix_http import HungUp, UnixHTTPClient, Unreachable

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class BareServer:
    """Accepts connections on a Unix socket; ``script`` says, request by request, what to send back and
    whether to close the connection after it.  Counts the connections and requests it saw."""

    def __init__(self, path: Path, script: list[tuple[bytes, bool]]):
        self.path, self.script = path, list(script)
        self.connections = self.requests = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.script:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while self.script:
                    if not self._read_request(conn):
                        break
                    self.requests += 1
                    reply, close = self.script.pop(0)
                    conn.sendall(reply)
                    if close:
                        break

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        return True

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def sock(tmp_path) -> Path:
    return tmp_path / "s.sock"


def test_a_kept_alive_connection_serves_the_next_request(sock):
    server = BareServer(sock, [(OK, False), (OK, False)])
    client = UnixHTTPClient(sock, timeout=5)
    assert client.request("POST", "/v1/call", b"{}") == (200, b"{}")
    assert client.request("POST", "/v1/call", b"{}") == (200, b"{}")
    assert (server.connections, server.requests) == (1, 2)
    client.close()
    server.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_request_is_sent(sock):
    # The request goes once, on a new connection: never sent to a dead one and then again.
    server = BareServer(sock, [(OK, True), (OK, False)])
    client = UnixHTTPClient(sock, timeout=5)
    assert client.request("POST", "/v1/call", b"{}")[0] == 200
    server.thread.join(0.2)  # the server has closed the first connection
    assert client.request("POST", "/v1/call", b"{}")[0] == 200
    assert (server.connections, server.requests) == (2, 2)
    client.close()
    server.close()


def test_a_process_holding_over_a_thousand_descriptors_still_calls(sock):
    """select() refuses a descriptor past 1023; a busy process (a thousand connections of its own) has them."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        server = BareServer(sock, [(OK, False), (OK, False)])
        client = UnixHTTPClient(sock, timeout=5)
        assert client.request("POST", "/v1/call", b"{}") == (200, b"{}")
        assert client.request("POST", "/v1/call", b"{}") == (200, b"{}")  # (the kept-alive one, checked for staleness)
        client.close()
        server.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_server_hanging_up_mid_answer_is_hung_up_not_a_result(sock):
    server = BareServer(sock, [(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{", True)])
    client = UnixHTTPClient(sock, timeout=5)
    with pytest.raises(HungUp):
        client.request("POST", "/v1/call", b"{}")
    server.close()


def test_no_server_is_unreachable(sock):
    with pytest.raises(Unreachable):
        UnixHTTPClient(sock, timeout=5).request("GET", "/v1/hello")


def test_a_stream_yields_its_lines_until_the_server_ends_it(sock):
    chunk = b"retry: 1000\ndata: 7\n\n"
    stream = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    server = BareServer(sock, [(stream, True)])
    assert list(UnixHTTPClient(sock, timeout=5).lines("/v1/events")) == ["retry: 1000", "data: 7", ""]
    server.close()
