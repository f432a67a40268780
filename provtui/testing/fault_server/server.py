"""The fault server process: scim2-server's app behind the FaultInjector, on a threaded wsgiref server."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from provtui.testing.fault_server.injector import SOCKET_KEY, FaultInjector

MODULE = "provtui.testing.fault_server"  # run as python -m MODULE


def build_scim_app(bearer_tokens: Iterable[str]) -> Callable:
    """scim2-server's WSGI app as its ``scim2-server`` command builds it, defaults throughout."""
    from scim2_models import ScimProvider
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
    from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

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
        environ[SOCKET_KEY] = self.connection
        return environ


def make_fault_server(host: str, port: int, injector: FaultInjector):
    """A threaded wsgiref server (scim2-server's ThreadingWSGIServer) serving ``injector``."""
    from scim2_server.testserver.cli import ThreadingWSGIServer

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        request_queue_size = 256  # the default 5 overflows under concurrent connects

    return make_server(host, port, injector, server_class=Server, handler_class=_RequestHandler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="scim2-server behind a fault-injecting proxy")
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
