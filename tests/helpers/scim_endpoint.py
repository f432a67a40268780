"""A real `provtui server --scim-listen` for the inbound SCIM tests (#20): a store with a client, the server
process, an httpx client holding the client's token, and the admin's view through the server's socket."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import httpx

from provtui.cli.main import main
from provtui.client.remote import RemoteService
from provtui.testing.scim_server import free_port
from tests.helpers.server import start_server_process, stop_server_process

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass
class Endpoint:
    url: str
    token: str
    store: Path
    socket: Path
    process: subprocess.Popen

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token if token is None else token}", "Content-Type": "application/scim+json"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def admin(self) -> RemoteService:
        return RemoteService.connect(self.socket)


def add_client(store: Path, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "provtui", "--store", str(store), "scim-client", "add", name, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(out.stdout)["token"])


@contextmanager
def scim_endpoint(*, setup=None, args: tuple[str, ...] = (), host: str = "127.0.0.1", scheme: str = "http") -> Iterator[Endpoint]:
    """``setup(store)`` runs on the new store before the server starts (an embedded admin's commands); the
    endpoint listens on ``host`` (reached on 127.0.0.1), with more server options in ``args``."""
    place = Path(tempfile.mkdtemp(prefix="pvscim-"))
    store, sock = place / "store", place / "s.sock"
    with redirect_stdout(io.StringIO()):  # (what init says is not the caller's output: a benchmark prints JSON)
        assert main(["init", "--store", str(store)]) == 0
    token = add_client(store, "okta")
    if setup is not None:
        setup(store)
    port = free_port()
    process = start_server_process(store, sock, extra=("--scim-listen", f"{host}:{port}", *args))
    try:
        yield Endpoint(f"{scheme}://127.0.0.1:{port}/scim/v2", token, store, sock, process)
    finally:
        stop_server_process(process)
        shutil.rmtree(place, ignore_errors=True)


def user_body(login: str, **more) -> dict:
    first, _, last = login.partition(".")
    return {
        "schemas": [USER],
        "userName": f"{login}@example.com",
        "name": {"givenName": first.title(), "familyName": (last or "x").title()},
        "emails": [{"value": f"{login}@example.com", "type": "work", "primary": True}],
        "active": True,
        **more,
    }


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH], "Operations": list(operations)}
