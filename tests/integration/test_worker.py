"""`provtui worker`: continuous provisioning, prompt pickup, clean stop, no call sent twice."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from provtui.compose import build_engine
from provtui.engine.worker import run_worker
from provtui.service import Service
from provtui.testing.fault_server import FaultServerProcess

TOKEN_ENV = "PROVTUI_TEST_WORKER_TOKEN"


@pytest.fixture(scope="module")
def server():
    with FaultServerProcess(token="worker-token") as server:
        yield server


@pytest.fixture
def org(tmp_path, server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, server.token)
    server.clear_faults()
    server.reset_stats()
    service = Service.init(tmp_path / "store", actor=None)
    service.create_app("Slack", scim_url=server.url, token_env=TOKEN_ENV, concurrency=4)
    service.create_group("eng")
    service.assign("Slack", group="eng")
    return service


def hire(service, count):
    prefix = uuid.uuid4().hex[:6]
    logins = [f"{prefix}-{n}" for n in range(count)]
    for login in logins:
        service.create_user(login, f"{login}@example.com", "W", "Orker", activate=True)
    service.add_members("eng", logins)
    return logins


def start_worker(store, server) -> subprocess.Popen:
    env = {**os.environ, TOKEN_ENV: server.token}
    return subprocess.Popen(
        [sys.executable, "-m", "provtui", "worker", "--store", str(store)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_worker_picks_up_another_process_commit_promptly_and_stops_on_sigterm(org, server, tmp_path):
    worker = start_worker(tmp_path / "store", server)
    try:
        time.sleep(1.0)  # let it start and go idle
        started = time.monotonic()
        [login] = hire(org, 1)  # committed by this process, not the worker's
        assert wait_for(lambda: org.refresh() or org.user_view(login)["apps"][0]["account"]["state"] == "active")
        print(f"worker provisioned a change committed elsewhere in {time.monotonic() - started:.2f} s")
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=15)
        assert worker.returncode == 0, err
        assert "provisioned 1" in out
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()


def test_sigterm_finishes_calls_in_flight(org, server, tmp_path):
    logins = hire(org, 40)
    server.set_faults(slow={"delay_ms": 150})
    worker = start_worker(tmp_path / "store", server)
    try:
        assert wait_for(lambda: server.stats()["creates_committed"] >= 3)
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
        assert worker.returncode == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    server.clear_faults()
    org.refresh()
    provisioned = [login for login in logins if org.user_view(login)["apps"][0]["account"]["state"] == "active"]
    assert 3 <= len(provisioned) < len(logins)  # it stopped part-way...
    committed = server.stats()["creates_committed"]
    assert committed == len(provisioned)  # ...and recorded every call it had made: none was abandoned mid-way
    assert org.pending_work() == len(logins) - len(provisioned)  # the rest is still queued


async def test_console_engine_and_worker_never_send_the_same_call_twice(org, server, tmp_path):
    logins = hire(org, 30)
    server.set_faults(slow={"delay_ms": 40})
    worker = start_worker(tmp_path / "store", server)
    try:
        reconciler = build_engine(org)  # the console's in-process engine
        try:
            while org.pending_work():
                await reconciler.run_until_idle()
                await asyncio.sleep(0.05)
                org.refresh()
        finally:
            await reconciler.aclose()
        assert wait_for(lambda: (org.refresh() or True) and org.pending_work() == 0)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    stats = server.stats()
    assert stats["creates_committed"] == len(logins)
    assert stats["requests"].get("POST /Users") == len(logins)  # one create per user, whichever process sent it
    assert all(org.user_view(login)["apps"][0]["account"]["state"] == "active" for login in logins)


async def test_run_worker_in_process_reconciles_then_stops(org, server):
    [login] = hire(org, 1)
    stop = asyncio.Event()
    reports = []
    task = asyncio.create_task(run_worker(org, engine=build_engine(org), stop=stop, on_report=reports.append, poll=0.05))
    for _ in range(200):
        if org.user_view(login)["apps"][0]["account"]["state"] == "active":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert org.user_view(login)["apps"][0]["account"]["state"] == "active"
    assert sum(r.done for r in reports) == 1
