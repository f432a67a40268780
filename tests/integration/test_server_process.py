"""`provtui server` as a process: one per store, private files, SIGTERM and SIGKILL, provisioning, and a
console that follows the server's events."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from provtui.cli.main import main
from provtui.client.remote import RemoteService
from tests.helpers.console import settle
from tests.helpers.server import start_server_process, stop_server_process


@pytest.fixture
def place(tmp_path):
    """A store, and a short directory for the socket (a Unix socket's path is at most 107 bytes)."""
    run = Path(tempfile.mkdtemp(prefix="pvp-"))
    assert main(["init", "--store", str(tmp_path / "store")]) == 0
    yield tmp_path / "store", run / "s.sock"
    shutil.rmtree(run, ignore_errors=True)


def provtui(sock: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVTUI_SERVER": str(sock)}
    return subprocess.run([sys.executable, "-m", "provtui", *args], env=env, capture_output=True, text=True, input=stdin)


def test_a_second_server_on_the_store_is_refused_and_sigterm_stops_cleanly(place):
    store, sock = place
    server = start_server_process(store, sock)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "provtui", "server", "--store", str(store), "--socket", str(sock.with_name("t.sock"))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2 and "another provtui server is serving" in second.stderr
        assert provtui(sock, "user", "list", "--json").stdout.strip() == "[]"
    finally:
        assert stop_server_process(server) == 0
    assert not sock.exists()


def test_a_shared_store_is_made_private_when_served(tmp_path):
    group = "pvshare" + uuid.uuid4().hex[:5]
    if os.geteuid() != 0 or not shutil.which("groupadd"):
        pytest.skip("needs root to make a group")
    subprocess.run(["groupadd", group], check=True)
    run = Path(tempfile.mkdtemp(prefix="pvp-"))
    try:
        assert main(["init", "--store", str(tmp_path / "store"), "--group", group]) == 0
        assert (tmp_path / "store").stat().st_mode & 0o070
        server = subprocess.Popen(
            [sys.executable, "-m", "provtui", "server", "--store", str(tmp_path / "store"), "--socket", str(run / "s.sock")],
            stderr=subprocess.PIPE,
            text=True,
        )
        from tests.helpers.server import wait_for_server

        wait_for_server(run / "s.sock", process=server)
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
        assert server.returncode == 0 and "made store 2770 private to" in err
        modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "store").iterdir()}
        assert set(modes.values()) == {0o600} and (tmp_path / "store").stat().st_mode & 0o777 == 0o700
    finally:
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(run, ignore_errors=True)


def _create(sock: Path, login: str) -> bool:
    try:
        RemoteService.connect(sock).create_user(login, f"{login}@example.com", "A", "B")
    except Exception:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_acknowledged_change_is_lost_when_the_server_stops(place, sig):
    store, sock = place
    server = start_server_process(store, sock)
    acknowledged: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        for n in range(10_000):
            if stop.is_set() or not _create(sock, f"u{n:05d}"):
                return
            acknowledged.append(f"u{n:05d}")

    writer = threading.Thread(target=hammer)
    writer.start()
    while len(acknowledged) < 30:
        threading.Event().wait(0.02)
    code = stop_server_process(server, sig)
    stop.set()
    writer.join(60)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    server = start_server_process(store, sock)  # after a SIGKILL the stale socket is found and replaced
    try:
        done = provtui(sock, "user", "list", "--json")
        stored = {u["login"] for u in json.loads(done.stdout)}
        assert set(acknowledged) <= stored and len(stored) - len(acknowledged) <= 1  # at most the call cut short
        assert provtui(sock, "audit", "verify").returncode == 0
    finally:
        stop_server_process(server)


def test_the_servers_worker_provisions_what_a_client_changes(place, scim_server):
    store, sock = place
    login = f"srv-{uuid.uuid4().hex[:8]}"
    server = start_server_process(store, sock, env={**os.environ, "PV_SRV_TOKEN": scim_server.token})
    try:
        for args in (
            ("user", "create", login, "--email", f"{login}@example.com", "--first", "S", "--last", "V", "--activate"),
            ("app", "create", "Slack", "--scim-url", scim_server.url, "--token-env", "PV_SRV_TOKEN"),
            ("app", "assign", "Slack", "--user", login),
        ):
            assert provtui(sock, *args).returncode == 0
        for _ in range(200):  # the worker wakes on the commit, not on a poll of the journal
            account = json.loads(provtui(sock, "user", "show", login, "--json").stdout)["apps"][0]["account"]
            if account and account.get("remote_id"):
                break
            threading.Event().wait(0.1)
        assert account["remote_id"] and not account.get("last_error")
        import httpx

        found = httpx.get(
            f"{scim_server.url}/Users",
            params={"filter": f'userName eq "{login}"'},
            headers={"Authorization": f"Bearer {scim_server.token}"},
        ).json()
        assert found["totalResults"] == 1
    finally:
        assert stop_server_process(server) == 0


async def test_a_console_through_the_server_shows_a_change_another_admin_makes(place):
    from provtui.compose import build_console
    from tests.helpers.console import screen_text
    from tests.helpers.server import thread_server

    store, sock = place
    with thread_server(store, sock):
        remote = RemoteService.connect(sock)
        remote.create_user("ada", "ada@example.com", "Ada", "Lovelace")
        app = build_console(remote)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert "ada" in screen_text(app) and "grace" not in screen_text(app)
            other = RemoteService.connect(sock)
            other.create_user("grace", "grace@example.com", "Grace", "Hopper")
            for _ in range(50):
                await pilot.pause(0.1)
                if "grace" in screen_text(app):
                    break
            assert "grace" in screen_text(app)
        remote.close()


def test_the_server_runs_only_as_the_stores_super_admin_and_changes_nothing_otherwise(tmp_path):
    from provtui.service import Service

    Service.init(tmp_path / "store", actor="someone-else")
    before = {p.name: (p.read_bytes(), p.stat().st_mode) for p in (tmp_path / "store").iterdir()}
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "server", "--store", str(tmp_path / "store"), "--socket", str(tmp_path / "s.sock")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4 and "is not a super admin" in done.stderr
    assert {p.name: (p.read_bytes(), p.stat().st_mode) for p in (tmp_path / "store").iterdir()} == before
    too_long = tmp_path / ("x" * 120) / "s.sock"
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "server", "--store", str(tmp_path / "store"), "--socket", str(too_long)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--socket" in done.stderr


async def test_through_the_server_a_search_shows_its_first_page_then_every_match(place):
    from provtui.compose import build_console
    from provtui.tui.screens.directory import FIRST_PAGE
    from provtui.tui.widgets.user_table import UserTable
    from tests.helpers.console import screen_text
    from tests.helpers.server import thread_server

    store, sock = place
    with thread_server(store, sock):
        remote = RemoteService.connect(sock)
        for n in range(FIRST_PAGE + 50):
            remote.create_user(f"p{n:04d}", f"p{n:04d}@example.com", "P", f"N{n}")
        calls: list[object] = []
        list_users = remote.list_users
        remote.list_users = lambda *a, **k: calls.append(k.get("limit")) or list_users(*a, **k)  # type: ignore[method-assign]
        app = build_console(remote)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            table = app.screen.query_one(UserTable)
            assert table.row_count == FIRST_PAGE + 50 and f"{FIRST_PAGE + 50:,} of {FIRST_PAGE + 50:,} users" in screen_text(app)
            assert calls[:2] == [FIRST_PAGE, None]  # the first page, then the rest
        remote.close()
