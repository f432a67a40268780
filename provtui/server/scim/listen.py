"""Where `provtui server --scim-listen HOST:PORT` serves SCIM: its address checked and bound before the server
starts (a taken port or a bad certificate is bad input, said at once), TLS when a certificate is given.

Without TLS a bearer token would cross the network in clear: plain HTTP is allowed only on a loopback address
(a reverse proxy in front terminates TLS), unless ``--insecure-http`` says the admin means it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from provtui.domain.errors import InvalidInput
from provtui.server.hub import ServiceHub
from provtui.server.scim.app import PREFIX, ScimApplication, build_provider

DEFAULT_HOST = "127.0.0.1"
MAX_CONNECTIONS = 1024


@dataclass(frozen=True)
class ScimListen:
    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False


def parse_listen(text: str, tls_cert: Path | None, tls_key: Path | None, insecure_http: bool) -> ScimListen:
    """``HOST:PORT``, ``[V6]:PORT`` or ``PORT`` (on 127.0.0.1), checked against the TLS options."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise InvalidInput("--scim-listen", f"{text!r} is not HOST:PORT (a port is 0-65535)") from None
    if (tls_cert is None) != (tls_key is None):
        raise InvalidInput("--tls-cert" if tls_cert is None else "--tls-key", "TLS needs both --tls-cert and --tls-key")
    if tls_cert is None and not insecure_http and not _loopback(host):
        raise InvalidInput(
            "--scim-listen", f"{host} is not a loopback address: serve SCIM there with --tls-cert and --tls-key (or --insecure-http)"
        )
    return ScimListen(host, port, tls_cert, tls_key, insecure_http)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scim_server(hub: ServiceHub, listen: ScimListen) -> tuple[uvicorn.Server, socket.socket, str]:
    """The SCIM endpoint's server (not yet serving), its bound socket and its base URL."""
    if listen.tls_cert is not None:
        try:  # (uvicorn would only say so once serving)
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(listen.tls_cert, listen.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise InvalidInput("--tls-cert", f"cannot use {listen.tls_cert} and {listen.tls_key}: {error}") from None
    try:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        sock = socket.create_server((listen.host, listen.port), family=family, backlog=1024)
        # Accepted sockets inherit it (Linux).  asyncio sets it only on sockets made with IPPROTO_TCP, which
        # create_server's are not: without it each reply's body waited for the client's delayed ACK of its
        # headers, 40 ms a request (a PATCH took 48 ms, curl's 1 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as error:
        raise InvalidInput("--scim-listen", f"cannot listen on {listen.host}:{listen.port}: {error.strerror or error}") from None
    provider = build_provider(sorted(hub.root.directory.profile_attributes()))
    config = uvicorn.Config(
        ScimApplication(hub, provider),
        lifespan="off",
        log_level="warning",
        access_log=False,  # a request line may carry a filter with a person's name; never a token, but nothing to gain
        limit_concurrency=MAX_CONNECTIONS,
        ssl_certfile=str(listen.tls_cert) if listen.tls_cert else None,
        ssl_keyfile=str(listen.tls_key) if listen.tls_key else None,
    )
    port = sock.getsockname()[1]
    scheme = "https" if listen.tls_cert else "http"
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return uvicorn.Server(config), sock, f"{scheme}://{host}:{port}{PREFIX}/v2"
