"""The PostgreSQL store (#19) against a real server the tests start: writers on several processes take
turns on one linear audit chain, a process sees another's commits, a SIGKILLed writer loses nothing it was
told was committed, and the CLI works on `--store postgresql://…` as on a directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.model.audit_trail import verify_chain
from provtui.service import Service
from provtui.store.errors import StoreError, StoreUnreadable
from provtui.store.postgres_store import COMMITS_KEPT, PostgresStore
from provtui.store.urls import redacted

WRITER = """
import sys
from provtui.store.postgres_store import PostgresStore
store = PostgresStore.open(sys.argv[1])
name, count = sys.argv[2], int(sys.argv[3])
for n in range(count):
    with store.transaction() as tx:
        tx.put("t", f"{name}{n}", {"n": n, "by": name})
        tx.audit({"actor": name, "action": "put", "target": f"{name}{n}"})
    print(n, flush=True)  # acknowledged: the commit returned
"""


def writer(url: str, name: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(count)], stdout=subprocess.PIPE, text=True)


def test_two_processes_writing_at_once_make_one_linear_chain(pg_url):
    PostgresStore.open(pg_url, create=True).close()
    writers = [writer(pg_url, name, 150) for name in ("a", "b")]
    for process in writers:
        assert process.wait(timeout=120) == 0
    store = PostgresStore.open(pg_url)
    assert store.seq == 300 and len(store.all("t")) == 300
    events = store.audit_events()
    assert [e["seq"] for e in events] == list(range(1, 301))  # every commit its own number, in order
    report = verify_chain(events, expected_head=store.audit_head)
    assert report.ok and report.entries == 300


def test_a_process_sees_another_ones_commits(pg_url):
    mine = PostgresStore.open(pg_url, create=True)
    mine.add_index("t", "colour")
    heard = []
    mine.on_apply(heard.append)
    theirs = PostgresStore.open(pg_url)
    with theirs.transaction() as tx:
        tx.put("t", "a", {"colour": "red"})
    assert mine.get("t", "a") is None and mine.refresh() is True
    assert mine.get("t", "a") == {"colour": "red"} and mine.lookup("t", "colour", "red") == {"a"}
    assert heard == [[["put", "t", "a", {"colour": "red"}]]] and mine.refresh() is False
    with theirs.transaction() as tx:
        tx.put("t", "b", {"colour": "red"})
    with mine.transaction() as tx:  # a writer catches up under the lock before its block reads
        assert tx.lookup("t", "colour", "red") == {"a", "b"}
        tx.delete("t", "a")
    assert theirs.refresh() and theirs.get("t", "a") is None and theirs.audit_head == mine.audit_head


def test_a_process_further_behind_than_the_commits_kept_reloads(pg_url, monkeypatch):
    monkeypatch.setattr("provtui.store.postgres_store.COMMITS_KEPT", 2)
    behind = PostgresStore.open(pg_url, create=True)
    ahead = PostgresStore.open(pg_url)
    for n in range(6):
        with ahead.transaction() as tx:
            tx.put("t", f"k{n}", {"n": n})
    ahead.compact()
    assert COMMITS_KEPT > 2 and behind.refresh()
    assert sorted(behind.all("t")) == [f"k{n}" for n in range(6)] and behind.seq == 6


def test_a_sigkilled_writer_loses_nothing_acknowledged(pg_url):
    PostgresStore.open(pg_url, create=True).close()
    for round_ in range(3):
        process = writer(pg_url, f"r{round_}-", 100_000)
        acknowledged = []
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 + 30 * round_ and time.monotonic() < deadline:
            acknowledged.append(int(process.stdout.readline()))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        store = PostgresStore.open(pg_url)
        kept = {int(k.removeprefix(f"r{round_}-")) for k in store.all("t") if k.startswith(f"r{round_}-")}
        assert set(acknowledged) <= kept  # and at most the one in flight more
        assert len(kept) <= len(acknowledged) + 1 + 64  # what the pipe held unread, at most
        assert verify_chain(store.audit_events(), expected_head=store.audit_head).ok
        store.close()


def test_opening_what_is_not_a_store_says_so(pg_url, postgres):
    with pytest.raises(StoreError, match=r"no store at .* \(run `provtui init` first\)"):
        PostgresStore.open(pg_url)
    PostgresStore.open(pg_url, create=True).close()
    with pytest.raises(StoreError, match="a store already exists"):
        PostgresStore.open(pg_url, create=True)
    with pytest.raises(StoreUnreadable, match="no-such-database"):
        PostgresStore.open(postgres.url("no-such-database"))


def test_a_password_in_a_url_is_never_printed():
    assert redacted("postgresql://provtui:s3cret@db.example:5432/idm") == "postgresql://provtui:***@db.example:5432/idm"
    assert redacted("postgresql://provtui@/idm?host=/run/postgresql") == "postgresql://provtui@/idm?host=/run/postgresql"


def test_the_service_and_the_cli_work_on_a_postgresql_store(pg_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PROVTUI_SERVER", "PROVTUI_STORE")}

    def provtui(*args: str, store: str | None = pg_url) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "provtui", *(["--store", store] if store else []), *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    made = provtui("init")
    assert made.returncode == 0 and f"created a store at {pg_url}" in made.stdout
    assert provtui("init").returncode == 2  # never over a store
    assert provtui("user", "create", "ada", "--email", "ada@example.com", "--first", "Ada", "--last", "L", "--activate").returncode == 0
    assert provtui("group", "create", "Ingeniería").returncode == 0
    assert provtui("group", "add-member", "Ingeniería", "ada").returncode == 0
    shown = provtui("user", "show", "ada", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["groups"] == ["Ingeniería"]
    env["PROVTUI_STORE"] = pg_url  # the environment names it as well as --store
    listed = provtui("user", "list", "--json", store=None)
    assert listed.returncode == 0 and [u["login"] for u in json.loads(listed.stdout)] == ["ada"]
    verified = provtui("audit", "verify", "--json", store=None)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    service = Service.open(pg_url)
    assert service.location == pg_url and [e["action"] for e in service.audit()][-1] == "group.add-member"


def test_a_store_moves_to_postgresql_and_back_with_its_trail_intact(pg_url, tmp_path):
    embedded = Service.init(tmp_path / "store", actor="admin")
    embedded.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    embedded.create_group("R&D")
    embedded.add_members("R&D", ["ada"])
    report = embedded.migrate_store(pg_url)
    assert report["source_chain_intact"] and report["target_chain_intact"] and report["same"]
    assert report["to"] == pg_url and report["documents"]["users"] == 1
    on_postgres = Service.open(pg_url, actor="admin")
    assert on_postgres.user_view("ada")["groups"] == ["R&D"]
    assert [e["action"] for e in on_postgres.audit()][-1] == "store.migrate"  # recorded on both sides
    assert on_postgres.audit_verify().ok and embedded.audit_verify().ok
    on_postgres.create_group("sales")  # and it goes on from there, on the same chain
    back = on_postgres.migrate_store(str(tmp_path / "back"))
    assert back["same"] and back["target_chain_intact"]
    assert sorted(g["name"] for g in Service.open(tmp_path / "back", actor="admin").list_groups()) == ["R&D", "sales"]
    with pytest.raises(InvalidInput, match="a store already exists"):
        embedded.migrate_store(pg_url)  # never over a store


def test_only_a_super_admin_migrates(pg_url, tmp_path):
    Service.init(tmp_path / "store", actor="admin").grant("desk", "helpdesk")
    with pytest.raises(NotAllowed):
        Service.open(tmp_path / "store", actor="desk").migrate_store(pg_url)
    assert not PostgresStore.exists(pg_url)  # nothing was made


async def test_the_console_runs_on_a_postgresql_store_and_another_process_commit_wakes_it(pg_url, monkeypatch):
    from provtui.tui.app import build_app
    from tests.helpers.console import NARROW, screen_text, settle

    monkeypatch.setattr("provtui.tui.app.NOTIFIED_POLL_SECONDS", 120.0)  # only the notification can show it in time

    service = Service.init(pg_url, actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "Lovelace", activate=True)
    app = build_app(service, label="pg")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        assert "Ada Lovelace" in screen_text(app)
        other = Service.open(pg_url, actor="admin")  # another process's commit reaches the console's poll
        other.create_user("bob", "bob@example.com", "Bob", "Babbage", activate=True)
        deadline = time.monotonic() + 10
        while "Bob Babbage" not in screen_text(app) and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert "Bob Babbage" in screen_text(app)


async def test_a_worker_wakes_on_a_commit_notified_not_on_its_poll(pg_url):
    """LISTEN/NOTIFY: another process's commit reaches an idle worker at once, though it would poll only
    every minute and sweeps every 30 s; the manual app's task is there at once."""
    import asyncio

    from provtui.compose import build_engine
    from provtui.engine.worker import run_worker

    service = Service.init(pg_url, actor="admin")
    service.create_app("Payroll", manual=True, notify=["it@example.com"])
    service.create_group("finance")
    service.assign("Payroll", group="finance")
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(service, engine=build_engine(service, notify=False), stop=stop, poll=60.0, signals=False))
    await asyncio.sleep(0.5)  # idle, waiting
    other = Service.open(pg_url, actor="admin")
    other.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    other.add_members("finance", ["ada"])
    committed = time.monotonic()
    while not [t for t in other.task_list() if t["user"] == "ada"] and time.monotonic() - committed < 20:
        await asyncio.sleep(0.05)
        other.refresh()
    took = time.monotonic() - committed
    stop.set()
    await asyncio.wait_for(worker, 10)
    assert [t["app"] for t in other.task_list() if t["user"] == "ada"] == ["Payroll"]
    assert took < 10.0, took  # notified (here ~0.3 s): polling would have waited for the 30 s sweep


def test_a_server_serves_a_postgresql_store_alone_and_keeps_its_secrets_in_its_state_dir(pg_url, tmp_path):
    from tests.helpers.server import stop_server_process, wait_for_server

    Service.init(pg_url)  # this OS user: the store's super admin, as the server must be
    env = {k: v for k, v in os.environ.items() if k not in ("PROVTUI_SERVER", "PROVTUI_STORE")}
    sockets = tmp_path / "run"
    state = tmp_path / "state"

    def server(name: str) -> subprocess.Popen:
        command = ["server", "--store", pg_url, "--socket", str(sockets / name), "--state-dir", str(state)]
        return subprocess.Popen(
            [sys.executable, "-m", "provtui", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )

    def client(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "provtui", "--server", str(sockets / "a.sock"), *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, input=stdin)

    first = server("a.sock")
    try:
        wait_for_server(sockets / "a.sock", process=first)
        second = server("b.sock")  # the same database: refused
        assert second.wait(timeout=60) == 2 and "another provtui server is serving" in second.communicate()[1]
        made = client("user", "create", "ada", "--email", "ada@example.com", "--first", "Ada", "--last", "L", "--json")
        assert made.returncode == 0, made.stderr
        assert client("secret", "set", "slack-token", stdin="xoxb-server-only\n").returncode == 0
        listed = client("secret", "list", "--json")
        assert listed.returncode == 0 and [s["name"] for s in json.loads(listed.stdout)] == ["slack-token"]
        assert "xoxb-server-only" not in json.dumps([e for e in Service.open(pg_url).audit()])  # never in the store
        assert (state.stat().st_mode & 0o777) == 0o700 and [p.stat().st_mode & 0o777 for p in state.iterdir()] == [0o600]
        from provtui.client.remote import RemoteService

        remote = RemoteService.connect(sockets / "a.sock")
        assert remote.shared_store() is True  # so a console through it lists a page, not every match
        remote.close()
    finally:
        assert stop_server_process(first) == 0
    assert [u["login"] for u in Service.open(pg_url).list_users("")[1]] == ["ada"]
