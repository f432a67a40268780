"""`provtui sync` converges through transient faults, and a rejected credential pauses the app (issue #14).

Each test drives the real CLI in a subprocess against the real fault-injecting scim2-server; the
organisation is set up in-process through the Service, as the OS user the CLI runs as (its super admin).
Nothing here asserts on timing: budgets are generous and only decide when a run would give up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from provtui.clock import utc_now
from provtui.compose import build_engine
from provtui.engine import health as app_health
from provtui.engine.worker import run_worker
from provtui.service import Service
from provtui.testing.fault_server import FaultServerProcess

TOKEN_ENV = "PROVTUI_TEST_CONVERGE_TOKEN"
PEOPLE = 24


@pytest.fixture(scope="module")
def fault_server():
    with FaultServerProcess(token="converge-token") as server:
        yield server


@pytest.fixture
def server(fault_server):
    fault_server.clear_faults()
    fault_server.reset_stats()
    yield fault_server
    fault_server.clear_faults()


@pytest.fixture
def org(tmp_path, server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, server.token)
    service = Service.init(tmp_path / "store")  # the OS user: the CLI subprocesses run as them too
    service.create_app("Slack", scim_url=server.url, token_env=TOKEN_ENV, concurrency=4)
    service.create_group("eng")
    service.assign("Slack", group="eng")
    return service


def hire(service: Service, count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:8]
    logins = [f"{prefix}-{n:02d}" for n in range(count)]
    for n, login in enumerate(logins):
        service.create_user(login, f"{login}@example.com", "Con", f"Verge{n}", activate=True)
    service.add_members("eng", logins)
    return logins


def provtui(service: Service, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVTUI_STORE": str(service.location)}
    if token is not None:
        env[TOKEN_ENV] = token
    return subprocess.run([sys.executable, "-m", "provtui", *args], env=env, capture_output=True, text=True, timeout=300)


def downstream(server: FaultServerProcess, prefix: str) -> Counter:
    """userName -> how many accounts the app holds by that name."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=10) as client:
        page = client.get("/Users", params={"filter": f'userName sw "{prefix}"', "count": 1000}).raise_for_status().json()
    return Counter(u["userName"] for u in page.get("Resources", []))


def account(service: Service, login: str) -> dict:
    service.refresh()
    return service.user_view(login)["apps"][0]["account"]


def test_sync_converges_through_35_percent_503_and_429_with_retry_after(org, server):
    logins = hire(org, PEOPLE)
    # 35% of calls: 429 first (20%), then 503 on 18.75% of the rest; both say Retry-After: 1
    server.set_faults(seed=14, rate_limit={"probability": 0.2, "retry_after": 1}, unavailable={"probability": 0.1875, "retry_after": 1})
    done = provtui(org, "sync", "--max-wait", "240", "--json")
    faults = server.stats()["faults"]
    server.clear_faults()
    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert report["done"] == PEOPLE and report["failed"] == [] and report["deferred"] == [] and report["credentials_rejected"] == []
    assert sum(faults.values()) > 0 and report["retries"] > 0  # faults were met and retried...
    assert downstream(server, logins[0][:8]) == Counter({login: 1 for login in logins})  # ...and everyone exists once
    assert all(account(org, login)["state"] == "active" and not account(org, login)["queued"] for login in logins)
    assert org.pending_work() == 0


def test_max_wait_0_makes_one_attempt_each_and_lists_the_deferred_with_their_retry_time(org, server):
    logins = hire(org, 6)
    server.set_faults(rate_limit={"next": 2, "method": "POST", "retry_after": 60})
    done = provtui(org, "sync", "--max-wait", "0", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1
    assert server.stats()["requests"] == {"POST /Users": len(logins)}  # one attempt each, no retry
    assert report["failed"] == [] and report["retries"] == 0 and report["done"] == len(logins) - 2
    deferred = {d["user"]: d for d in report["deferred"]}
    assert len(deferred) == 2 and all(d["status"] == 429 and d["retry_at"] for d in deferred.values())
    for login, entry in deferred.items():
        assert f"{login} in Slack failed for now, queued again after {entry['retry_at']}" in done.stderr
        assert account(org, login)["queued"]

    # still waiting when the next quick check runs: listed again, with the same retry time, and nothing sent
    server.reset_stats()
    again = provtui(org, "sync", "--max-wait", "0", "--json")
    assert again.returncode == 1 and server.stats()["requests"] == {}
    assert {d["user"]: d["retry_at"] for d in json.loads(again.stdout)["deferred"]} == {u: d["retry_at"] for u, d in deferred.items()}

    # a budget shorter than the server's Retry-After: the run does not wait it out, it lists them and exits 1
    short = provtui(org, "sync", "--max-wait", "2", "--json")
    assert short.returncode == 1 and len(json.loads(short.stdout)["deferred"]) == 2

    # a plain sync waits for them (they are due within its default budget) and finishes the work
    with org.store.transaction() as tx:  # bring the 60 s Retry-After forward to 1 s, not to wait a minute here
        for key, doc in list(org.store.all("dirty").items()):
            if doc.get("not_before"):
                tx.put("dirty", key, {**doc, "not_before": (utc_now() + timedelta(seconds=1)).isoformat()})
    final = provtui(org, "sync", "--json")
    assert final.returncode == 0, final.stderr
    assert downstream(server, logins[0][:8]) == Counter({login: 1 for login in logins})


def test_max_wait_must_be_a_number_of_seconds(org):
    for bad in ("-1", "nan", "soon"):
        done = provtui(org, "sync", "--max-wait", bad)
        assert done.returncode == 2 and "--max-wait" in done.stderr, bad


def test_a_wrong_token_pauses_the_app_and_a_plain_sync_provisions_once_it_is_fixed(org, server):
    logins = hire(org, 5)
    done = provtui(org, "sync", "--json", token="not-the-token")
    report = json.loads(done.stdout)
    assert done.returncode == 1
    assert report["failed"] == [] and report["deferred"] == [] and report["done"] == 0
    [rejected] = report["credentials_rejected"]
    assert rejected["app"] == "Slack" and rejected["status"] == 401 and rejected["error"] and rejected["next_probe"]
    assert "Slack: credentials rejected (HTTP 401" in done.stderr
    assert "not-the-token" not in done.stdout + done.stderr

    # the app is paused, with the server's message; its accounts stay queued, none failed
    status = json.loads(provtui(org, "app", "status", "Slack", "--json").stdout)[0]
    assert status["credentials_rejected"] is True and status["credentials_status"] == 401
    assert status["credentials_error"] == rejected["error"] and status["failed"] == 0 and status["queued"] == len(logins)
    shown = provtui(org, "app", "status").stdout
    assert f"Slack: credentials rejected (HTTP 401: {rejected['error']})" in shown
    for login in logins:
        assert account(org, login)["queued"] and account(org, login)["state"] != "failed"

    # still wrong: the next sync probes with one call, sends nothing else
    server.reset_stats()
    again = provtui(org, "sync", "--json", token="still-not-it")
    assert again.returncode == 1 and json.loads(again.stdout)["credentials_rejected"][0]["app"] == "Slack"
    assert server.stats()["requests"] == {"GET /Users": 1}

    # the admin fixes the token: a plain sync (no `provtui retry`) provisions everyone
    fixed = provtui(org, "sync", "--json", token=server.token)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["done"] == len(logins)
    assert downstream(server, logins[0][:8]) == Counter({login: 1 for login in logins})
    status = json.loads(provtui(org, "app", "status", "Slack", "--json").stdout)[0]
    assert status["credentials_rejected"] is False and status["credentials_error"] is None and status["queued"] == 0
    org.refresh()
    actions = [e["action"] for e in org.audit(action="app")]
    assert actions.count("app.credentials_rejected") == 1 and actions.count("app.credentials_accepted") == 1
    assert not any(e["action"] == "provisioning.retry" for e in org.audit())


def scripted_refusal(status: int, detail: str) -> dict:
    body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail})
    return {"status": status, "body_b64": base64.b64encode(body.encode()).decode()}


async def test_the_worker_probes_a_refusing_app_after_its_back_off_and_carries_on_when_it_answers(org, server, monkeypatch):
    """A 403 from the app (its side revoked our client, then restored it): the worker pauses the app, probes it after
    a back-off, and provisions the queued accounts once the probe gets through, with no other command."""
    monkeypatch.setattr(app_health, "PROBE_BASE", 0.2)
    logins = hire(org, 4)
    server.set_faults(scripted=scripted_refusal(403, "client provtui is not allowed to provision"))
    stop = asyncio.Event()
    reports: list = []
    task = asyncio.create_task(run_worker(org, engine=build_engine(org), stop=stop, on_report=reports.append, poll=0.05))
    try:
        for _ in range(400):
            if org.app_status("Slack")[0]["credentials_rejected"]:
                break
            await asyncio.sleep(0.05)
        status = org.app_status("Slack")[0]
        assert status["credentials_rejected"] and status["credentials_status"] == 403
        assert status["credentials_error"] == "client provtui is not allowed to provision" and status["failed"] == 0
        probed = 0
        for _ in range(400):  # it keeps probing (one call each time) while the app refuses
            probed = server.stats()["requests"].get("GET /Users", 0)
            if probed >= 2:
                break
            await asyncio.sleep(0.05)
        assert probed >= 2 and org.pending_work() == len(logins)
        server.clear_faults()
        for _ in range(600):
            if org.pending_work() == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert org.pending_work() == 0 and not org.app_status("Slack")[0]["credentials_rejected"]
    assert all(account(org, login)["state"] == "active" for login in logins)
    assert downstream(server, logins[0][:8]) == Counter({login: 1 for login in logins})


async def test_the_console_shows_an_app_whose_credentials_were_rejected_with_the_servers_message(org, server):
    from provtui.tui import queries
    from provtui.tui.screens.apps import render_app
    from provtui.tui.screens.dashboard import render_attention

    hire(org, 2)
    server.set_faults(scripted=scripted_refusal(401, "token revoked by the tenant admin"))
    reconciler = build_engine(org, notify=False)
    try:
        report = await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()
    assert [r["app"] for r in report.credentials_rejected] == ["Slack"] and not report.failed
    dashboard = queries.dashboard(org)
    assert "Credentials rejected: Slack" in render_attention(dashboard).plain
    [row] = dashboard["apps"]
    assert row["health"] == "rejected" and row["quarantine_reason"] == "credentials rejected: token revoked by the tenant admin"
    page = render_app(queries.app_page(org, "Slack")).plain
    assert "Credentials rejected: HTTP 401: token revoked by the tenant admin" in page and "accounts stay queued" in page
