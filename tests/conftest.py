"""Session-wide fixtures (the SCIM server, the in-process ``cli``) and the property tests' profile.

The tests are split by what they need: tests/unit/ (no process, no server, no socket), tests/integration/
(real slapd, SCIM and SMTP servers, subprocesses, OS users, durability and the soak; its conftest.py has
slapd's fixtures), tests/console/ (the Textual console through Pilot, its snapshots and tmux; its conftest.py
has the demo stores), tests/bench/ (the benchmarks and their smoke tests, which run them in subprocesses).
Helpers that are not fixtures are in tests/helpers/, imported as ``tests.helpers.*``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from provtui.testing.scim_server import ScimServerProcess

if TYPE_CHECKING:
    from provtui.testing.postgres import PostgresProcess

pytest_plugins = ["tests.integration.samba_fixtures"]  # a real Samba AD DC: samba_dc, ad_ou

# In CI the property tests draw the same examples on every run, so a red run is reproducible from
# its log; elsewhere they explore new ones and keep any failure in .hypothesis/ to replay first.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def scim_server() -> Iterator[ScimServerProcess]:
    """One real scim2-server for the session (token "test-token"); tests must use unique userNames."""
    with ScimServerProcess(token="test-token") as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresProcess]:
    """One throwaway PostgreSQL for the session (per xdist worker); superuser ``provtui``, trusted, no password."""
    from provtui.testing.postgres import PostgresProcess, postgres_available  # psycopg: 0.1 s, only when used

    if not postgres_available():
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with PostgresProcess() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresProcess) -> Iterator[str]:
    """A fresh, empty database of this test's own (its socket URL), dropped afterwards (~2 ms; ~20 ms to create)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield postgres.create_database(name)
    if postgres.running:  # a test that killed the server leaves its database to the server's end
        postgres.drop_database(name)


@pytest.fixture(params=["embedded", "postgres"])
def store_location(request, tmp_path) -> Path | str:
    """Where a service-level test keeps its store: a directory, then a PostgreSQL database (#19: the service's
    tests run on both backends)."""
    return tmp_path / "store" if request.param == "embedded" else request.getfixturevalue("pg_url")


@pytest.fixture(params=["embedded", "server", "postgres"])
def cli(request, tmp_path, monkeypatch, capsys):
    """`provtui ARGS` in-process on a new store: returns (exit code, stdout, stderr).

    Each test runs three times: on a store directory in tmp_path, through a provtui server on that store
    (``PROVTUI_SERVER``; the server in a thread of the test, so it sees the environment the test sets), and
    on a PostgreSQL database of its own (``PROVTUI_STORE=postgresql://…``): the CLI contract holds every way.
    A test that looks at the store itself finds it in ``PROVTUI_STORE``."""
    from provtui.cli.main import main

    location = request.getfixturevalue("pg_url") if request.param == "postgres" else str(tmp_path / "store")
    monkeypatch.setenv("PROVTUI_STORE", location)
    monkeypatch.delenv("PROVTUI_SERVER", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("init")[0] == 0
    if request.param == "server":
        import provtui.service.facade
        from provtui.server.peer import Peer
        from tests.helpers.server import thread_server

        # Tests act as other admins by patching who the OS user is; through the thread server, the peer is
        # this process, so it answers with the same patched name (real OS users: test_server_security.py).
        monkeypatch.setattr(Peer, "user", property(lambda peer: provtui.service.facade.current_os_user()))
        socket_dir = Path(tempfile.mkdtemp(prefix="pv-"))  # a Unix socket's path is at most 107 bytes
        with thread_server(tmp_path / "store", socket_dir / "s.sock"):
            monkeypatch.setenv("PROVTUI_SERVER", str(socket_dir / "s.sock"))
            yield run
            monkeypatch.delenv("PROVTUI_SERVER")
        shutil.rmtree(socket_dir, ignore_errors=True)
    else:
        yield run
