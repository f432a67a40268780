"""Live OpenLDAP sources (#21) against a real slapd with syncprov: each change seen through the live session.

A worker runs (in a thread, or as `provtui worker` for the kill -9 case) with the source set ``--live``; the
test changes the directory with ldap3 as an admin would and reads provtui through a Service of its own.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import ldap3
import pytest

from provtui.service import Service
from provtui.testing.slapd import SlapdProcess, group_entry, person_entry, slapd_available
from tests.helpers.ldap import PASSWORD_ENV
from tests.helpers.live import eventually, live_state, start_worker_process, worker_thread

pytestmark = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


@pytest.fixture(scope="module")
def directory() -> Iterator[SlapdProcess]:
    """A slapd with the syncprov overlay, as an OpenLDAP provider runs it (and restartable under its clients)."""
    with SlapdProcess(syncprov=True) as server:
        yield server


@pytest.fixture
def ou(directory: SlapdProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, directory.reader_password)
    return directory.add_ou(f"live{time.monotonic_ns() % 10**9}")


def hire(directory: SlapdProcess, ou: str, *uids: str, **extra: Any) -> list[str]:
    entries = [person_entry(ou, uid, uid.capitalize(), "Person", title="Engineer", **extra) for uid in uids]
    directory.add_ldif(entries)
    return [dn for dn, _ in entries]


def replace(directory: SlapdProcess, dn: str, **values: Any) -> None:
    with directory.connection() as conn:
        assert conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v if isinstance(v, list) else [v])] for k, v in values.items()})


def new_store(tmp_path, directory: SlapdProcess, ou: str, *, threshold: str = "0.9", at: Any = None, **options: Any) -> Service:
    service = Service.init(at if at is not None else tmp_path / "store")
    service.set_config("safeguard.threshold", threshold)
    service.importer().add_ldap_source(
        "corp", uri=directory.uri, bind_dn=directory.reader_dn, password_env=PASSWORD_ENV, base_dn=ou, live=True, **options
    )
    return service


def state(service: Service, login: str) -> str:
    return service.user_view(login)["state"]


def audited(service: Service, login: str, kind: str = "user.import") -> int:
    service.refresh()
    return sum(1 for event in service.audit() if event["action"] == kind and event["target"] == login)


def test_each_change_is_seen_through_the_live_session(tmp_path, directory, ou, store_location):
    alice, bob = hire(directory, ou, "alice", "bob")
    reader = new_store(tmp_path, directory, ou, at=store_location)
    with worker_thread(store_location):
        eventually(reader, lambda s: state(s, "alice") == state(s, "bob") == "active")  # the first read: everyone
        eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "live")

        replace(directory, alice, title="Principal")  # a modify
        eventually(reader, lambda s: s.user_view("alice")["profile"]["title"] == "Principal")

        [carol] = hire(directory, ou, "carol")  # an add
        eventually(reader, lambda s: state(s, "carol") == "active")

        with directory.connection() as conn:  # a delete
            assert conn.delete(bob)
        eventually(reader, lambda s: state(s, "bob") == "deprovisioned")

        with directory.connection() as conn:  # a rename: the same person (by entryUUID), a new login
            assert conn.modify_dn(carol, "uid=carol.new")
        eventually(reader, lambda s: state(s, "carol.new") == "active")
        assert reader.user_view("carol.new")["id"] and not reader.store.lookup("users", "login", "carol")

        directory.add_ldif([group_entry(ou, "eng", [alice])])  # a group, then a membership change
        eventually(reader, lambda s: s.user_view("alice")["groups"] == ["eng"])
        with directory.connection() as conn:
            assert conn.modify(f"cn=eng,{ou}", {"member": [(ldap3.MODIFY_ADD, [f"uid=carol.new,{ou}"])]})
        eventually(reader, lambda s: s.user_view("carol.new")["groups"] == ["eng"])
        with directory.connection() as conn:
            assert conn.modify(f"cn=eng,{ou}", {"member": [(ldap3.MODIFY_DELETE, [alice])]})
        eventually(reader, lambda s: s.user_view("alice")["groups"] == [])

        status = live_state(reader, "corp")
        assert status["live_state"] == "live" and status["live_lag_ms"] is not None and status["live_applied"]
    reader.refresh()
    assert live_state(reader, "corp")["live_state"] == "stopped"
    assert audited(reader, "alice") == 2  # created, then the title: each change applied once
    events = [e for e in reader.audit() if e["action"] == "import.live"]
    assert events and all(e["target"] == "corp" for e in events)


def test_a_new_member_added_before_its_group_change_is_applied_in_either_order(tmp_path, directory, ou):
    [alice] = hire(directory, ou, "alice")
    directory.add_ldif([group_entry(ou, "ops", [alice])])
    reader = new_store(tmp_path, directory, ou)
    with worker_thread(tmp_path / "store"):
        eventually(reader, lambda s: s.user_view("alice")["groups"] == ["ops"])
        dave_dn = f"uid=dave,{ou}"
        with directory.connection() as conn:  # the group names dave before his entry exists
            assert conn.modify(f"cn=ops,{ou}", {"member": [(ldap3.MODIFY_ADD, [dave_dn])]})
        hire(directory, ou, "dave")
        eventually(reader, lambda s: s.user_view("dave")["groups"] == ["ops"])


def test_a_killed_worker_resumes_from_its_cookie_every_change_applied_once(tmp_path, directory, ou, store_location):
    dns = hire(directory, ou, *(f"p{n}" for n in range(10)))
    reader = new_store(tmp_path, directory, ou, at=store_location)
    env = {PASSWORD_ENV: directory.reader_password}
    worker = start_worker_process(store_location, env)
    try:
        eventually(reader, lambda s: all(state(s, f"p{n}") == "active" for n in range(10)), timeout=30)
        replace(directory, dns[0], title="Before the kill")
        eventually(reader, lambda s: s.user_view("p0")["profile"]["title"] == "Before the kill")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    for n, dn in enumerate(dns):  # ten changes while no worker runs
        replace(directory, dn, title=f"Changed {n}")
    worker = start_worker_process(store_location, env)
    try:
        eventually(reader, lambda s: all(s.user_view(f"p{n}")["profile"]["title"] == f"Changed {n}" for n in range(10)), timeout=30)
        time.sleep(1.0)  # anything sent twice would be applied by now
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    reader.refresh()
    assert [audited(reader, f"p{n}") for n in range(10)] == [3] + [2] * 9  # created, (p0: before the kill), the change


def test_the_directory_restarted_under_a_live_session(tmp_path, directory, ou):
    [alice] = hire(directory, ou, "alice")
    reader = new_store(tmp_path, directory, ou)
    with worker_thread(tmp_path / "store"):
        eventually(reader, lambda s: state(s, "alice") == "active")
        directory.pause()
        try:
            eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "reconnecting")
            assert state(reader, "alice") == "active"  # an unreachable directory deprovisions no one
        finally:
            directory.resume()
        replace(directory, alice, title="After the restart")
        eventually(reader, lambda s: s.user_view("alice")["profile"]["title"] == "After the restart", timeout=40)
        eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "live")
    assert audited(reader, "corp", "source.live") >= 3  # live, reconnecting, live: each change of state audited


def test_a_burst_of_disables_over_the_threshold_is_held(tmp_path, directory, ou):
    dns = hire(directory, ou, *(f"h{n}" for n in range(10)))
    reader = new_store(tmp_path, directory, ou, threshold="0.2", disabled_bases=[directory.disabled_dn])
    with worker_thread(tmp_path / "store"):
        eventually(reader, lambda s: all(state(s, f"h{n}") == "active" for n in range(10)))
        with directory.connection() as conn:  # 30% leave at once: moved to ou=disabled (out of the base)
            for dn in dns[:3]:
                assert conn.modify_dn(dn, dn.split(",")[0], new_superior=directory.disabled_dn)
        eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "held")
        status = live_state(reader, "corp")
        assert "--full --confirm" in status["live_message"] and status["last_outcome"] == "held"
        # the first two are within 20% of the ten people in the window; the third, past it, is held (and what follows)
        assert [state(reader, f"h{n}") for n in range(3)] == ["deprovisioned", "deprovisioned", "active"]
        replace(directory, dns[5], title="Still applied?")  # the session waits: later changes queue behind the hold
        time.sleep(0.5)
        assert reader.user_view("h5")["profile"]["title"] == "Engineer"
    admin = Service.open(tmp_path / "store")  # the admin decides: the run applies the burst
    result = admin.importer().import_ldap("corp", full=True, confirm=True)
    assert result["deactivated"] == 1 and result["updated"] == 1
    with worker_thread(tmp_path / "store"):
        eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "live")
    assert [state(reader, f"h{n}") for n in range(4)] == ["deprovisioned"] * 3 + ["active"]


def test_a_first_read_that_presents_no_one_deprovisions_no_one(tmp_path, directory, ou):
    hire(directory, ou, "alice")
    reader = new_store(tmp_path, directory, ou)
    reader.importer().import_ldap("corp")  # alice is the source's
    empty = directory.add_ou(f"empty{time.monotonic_ns() % 10**9}")
    reader.importer().update_ldap_source("corp", base_dn=empty)  # a wrong base: the live read finds no one
    with worker_thread(tmp_path / "store"):
        eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "failed")
        assert "presented no valid person" in live_state(reader, "corp")["live_message"]
    assert state(reader, "alice") == "active"


def test_a_directory_without_syncprov_is_read_every_few_seconds(tmp_path, monkeypatch):
    with SlapdProcess() as plain:  # no syncprov: the fallback's incremental reads
        monkeypatch.setenv(PASSWORD_ENV, plain.reader_password)
        [alice] = hire(plain, plain.people_dn, "alice")
        reader = new_store(tmp_path, plain, plain.people_dn, max_clock_skew=0)
        logs: list[str] = []
        with worker_thread(tmp_path / "store", logs=logs):
            eventually(reader, lambda s: state(s, "alice") == "active")
            time.sleep(1.1)  # modifyTimestamp has whole seconds: the change lands in a later one than the first read
            replace(plain, alice, title="Polled")
            seconds = eventually(reader, lambda s: s.user_view("alice")["profile"]["title"] == "Polled")
        assert "live source corp: poll" in logs and seconds < 10


def test_the_cli_sets_a_source_live_and_shows_its_state(tmp_path, directory, ou, capsys):
    from provtui.cli.main import main

    hire(directory, ou, "alice")
    store = str(tmp_path / "store")
    Service.init(store)
    common = ["--store", store]
    assert (
        main(
            ["source", "add-ldap", "corp", "--uri", directory.uri, "--bind-dn", directory.reader_dn, "--password-env", PASSWORD_ENV]
            + ["--base-dn", ou, "--live", *common]
        )
        == 0
    )
    assert "live" in capsys.readouterr().out
    assert main(["source", "status", "corp", "--json", *common]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["live"] is True and status["state"] == "not started" and status["lag_ms"] is None
    assert set(status) == {"name", "kind", "live", "state", "since", "lag_ms", "last_change", "message", "last_run", "last_outcome"}
    with worker_thread(tmp_path / "store"):
        reader = Service.open(store)
        eventually(reader, lambda s: live_state(s, "corp")["live_state"] == "live")
        assert main(["source", "status", "--json", *common]) == 0
        [row] = json.loads(capsys.readouterr().out)
        assert row["state"] == "live" and row["lag_ms"] is not None
    assert main(["source", "update", "corp", "--no-live", *common]) == 0
    capsys.readouterr()
    assert main(["source", "status", "corp", "--json", *common]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["live"] is False and status["state"] == "off"


def test_a_server_keeps_the_live_session_too(tmp_path, directory, ou):
    from tests.helpers.server import thread_server

    [alice] = hire(directory, ou, "alice")
    reader = new_store(tmp_path, directory, ou)
    with thread_server(tmp_path / "store", tmp_path / "admin.sock", worker=True) as log:
        eventually(reader, lambda s: state(s, "alice") == "active")
        replace(directory, alice, title="Served")
        eventually(reader, lambda s: s.user_view("alice")["profile"]["title"] == "Served")
        assert "provtui server: live source corp: syncrepl" in log.getvalue()
