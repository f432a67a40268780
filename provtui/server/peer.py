"""Who is calling: the kernel's word for the process at the other end of the Unix socket (SO_PEERCRED).

Nothing a client says about itself counts.  Each connection's credentials are read once, when it is
accepted, and every request on it carries them in its ASGI scope (``scope["extensions"]["peer"]``).
"""

from __future__ import annotations

import functools
import pwd
import socket
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    @functools.cached_property
    def user(self) -> str:
        """The OS user name of the uid (the name admins are granted roles by); the uid itself if it has none.
        Looked up once a connection, not on every request on it (a lookup may read /etc/passwd or ask sssd)."""
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return f"uid:{self.uid}"


def peer_of(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return Peer(pid, uid, gid)


class _WithPeer:
    """The ASGI app, with the connection's peer put in each request's scope."""

    def __init__(self, app: Any, peer: Peer | None):
        self.app = app
        self.peer = peer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "peer": self.peer}}
        await self.app(scope, receive, send)


PER_PEER_CONNECTIONS = 64  # one OS user's connections at once: past it, theirs are refused, others' served
_TOO_MANY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"


class PeerCredentialsProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, reading the peer's credentials as each connection is accepted, and
    bounding how many connections one uid holds (so one user opening a thousand cannot lock the others out)."""

    open_by_uid: Counter[int] = Counter()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        peer = peer_of(sock) if sock is not None and sock.family == socket.AF_UNIX else None
        self.app = _WithPeer(self.app, peer)
        self._uid = peer.uid if peer is not None else None
        if self._uid is None:
            return
        self.open_by_uid[self._uid] += 1
        if self.open_by_uid[self._uid] > PER_PEER_CONNECTIONS:
            body = (
                b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "too many connections from this user (%d): '
                b'close some and try again"}}' % PER_PEER_CONNECTIONS
            )
            transport.write(_TOO_MANY % (len(body), body))
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._uid is not None:
            self.open_by_uid[self._uid] -= 1
            if self.open_by_uid[self._uid] <= 0:
                del self.open_by_uid[self._uid]
            self._uid = None
