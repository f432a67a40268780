"""Provisioning under injected faults: the real reconciler against a fault-injecting scim2-server.

Every test provisions users through a Service and its reconciler, as tests/integration/test_provisioning.py
does, into a FaultServerProcess, then checks the downstream itself: every user exactly once
(by userName and by externalId), linked to the right account.  Nothing here asserts on timing.

Faults that fire with a probability are capped with ``limit`` below the attempts a key may
make (``patient`` raises MAX_ATTEMPTS for those tests), so no key can run out of attempts
however the dice fall: the outcome is deterministic even though the fault pattern is not.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import httpx
import pytest

from provtui.clock import parse_iso, utc_now
from provtui.compose import build_engine
from provtui.connectors.scim import ScimConnector
from provtui.engine import reconciler as engine
from provtui.engine import sending
from provtui.service import Service, current_os_user
from provtui.testing.fault_server import FaultServerProcess

TOKEN_ENV = "PROVTUI_TEST_FAULT_TOKEN"
USERS = 30
LIMIT = 40  # most faults of one kind a test injects...
PATIENT_ATTEMPTS = LIMIT + 1  # ...so that a key given this many attempts always gets through


@pytest.fixture(scope="module")
def fault_server():
    with FaultServerProcess(token="fault-token") as server:
        yield server


def wait_idle(server: FaultServerProcess, timeout: float = 15.0) -> dict:
    """The stats once no request is being served (a slow fault may still hold some)."""
    deadline = time.monotonic() + timeout
    while (stats := server.stats())["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    return stats


@pytest.fixture
def server(fault_server):
    """The module's server with no faults and fresh counters (tests use unique userNames)."""
    fault_server.clear_faults()
    wait_idle(fault_server)
    fault_server.reset_stats()
    yield fault_server
    fault_server.clear_faults()
    wait_idle(fault_server)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(sending, "BACKOFF_BASE", 0.002)
    monkeypatch.setattr(sending, "BACKOFF_CAP", 0.02)


@pytest.fixture
def patient(monkeypatch):
    monkeypatch.setattr(sending, "MAX_ATTEMPTS", PATIENT_ATTEMPTS)


def make_org(path, server: FaultServerProcess) -> Service:
    service = Service.init(path, actor="admin")
    service.grant(current_os_user(), "super-admin")  # `provtui sync` subprocesses run as this OS user: they need a role
    service.create_app("Slack", scim_url=server.url, token_env=TOKEN_ENV)
    service.create_group("eng")
    service.assign("Slack", group="eng")
    return service


@pytest.fixture
def org(tmp_path, server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, server.token)
    return make_org(tmp_path / "store", server)


def hire(service: Service, count: int = USERS) -> list[str]:
    """``count`` active users in the group that gets the app; their logins share a fresh prefix."""
    prefix = uuid.uuid4().hex[:8]
    logins = [f"{prefix}-{n:02d}" for n in range(count)]
    for n, login in enumerate(logins):
        service.create_user(login, f"{login}@example.com", "Test", f"User{n}", {"title": "Engineer"}, activate=True)
    service.add_members("eng", logins)
    return logins


async def sync(service: Service, **kwargs) -> engine.SyncReport:
    reconciler = build_engine(service, **kwargs)
    try:
        return await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()


def downstream(server: FaultServerProcess, prefix: str) -> list[dict]:
    """Every user the SCIM app holds whose userName starts with ``prefix``, paged."""
    users: list[dict] = []
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        start = 1
        while True:
            params = {"filter": f'userName sw "{prefix}"', "startIndex": start, "count": 100}
            page = client.get("/Users", params=params).raise_for_status().json()
            resources = page.get("Resources", [])
            users += resources
            start += len(resources)
            if not resources or start > page["totalResults"]:
                return users


def assert_provisioned_once(service: Service, server: FaultServerProcess, logins: list[str], *, absent: tuple[str, ...] = ()) -> None:
    """Each login exactly once downstream (by userName and externalId), linked to its account."""
    server.clear_faults()
    prefix = logins[0].rpartition("-")[0]
    remote = downstream(server, prefix)
    by_name = Counter(u["userName"] for u in remote)
    by_external = Counter(u.get("externalId") for u in remote)
    duplicates = {n: c for n, c in by_name.items() if c > 1} | {e: c for e, c in by_external.items() if c > 1}
    assert not duplicates, f"duplicate accounts downstream: {duplicates}"
    expected = sorted(set(logins) - set(absent))
    assert sorted(by_name) == expected
    ids = {u["externalId"]: u["id"] for u in remote}
    for login in expected:
        view = service.user_view(login)
        account = view["apps"][0]["account"]
        assert account["state"] == "active" and not account["queued"], (login, account)
        assert account["remote_id"] == ids[view["id"]], login


def recorder(waits: list[float]):
    """A reconciler ``sleep`` that records the wait and does not wait."""

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    return sleep


# ------------------------------------------------------------------- faults before the app


TRANSIENT = {
    "503": {"unavailable": {"probability": 0.3, "limit": LIMIT}},
    "503-everywhere-then-gone": {"unavailable": {"next": 12}},
    "dropped-connections": {"drop": {"probability": 0.3, "limit": LIMIT}},
    "connection-resets": {"drop": {"probability": 0.3, "limit": LIMIT, "reset": True}},
    "malformed-json": {"malformed": {"probability": 0.3, "limit": LIMIT}},
    "malformed-creates": {"malformed": {"probability": 0.5, "limit": LIMIT, "method": "POST"}},
}


@pytest.mark.parametrize("faults", TRANSIENT.values(), ids=TRANSIENT.keys())
async def test_transient_faults_are_retried_until_each_user_exists_once(org, server, patient, faults):
    logins = hire(org)
    server.set_faults(seed=11, **faults)
    report = await sync(org)
    stats = wait_idle(server)
    injected = sum(stats["faults"].values())
    assert report.ok and report.done == USERS, report.failed
    assert injected > 0
    assert report.retries == injected  # each fault failed exactly one attempt, which was retried
    # These faults answer before the app: no create is lost, so none is sent twice.
    assert stats["creates_reached_app"] == USERS and stats["creates_committed"] == USERS
    assert_provisioned_once(org, server, logins)


@pytest.mark.parametrize("kind", ["rate_limit", "unavailable"])
async def test_retry_after_is_honoured(org, server, patient, monkeypatch, kind):
    monkeypatch.setattr(sending, "BACKOFF_CAP", 30.0)  # above Retry-After, which it would cap
    logins = hire(org)
    server.set_faults(seed=12, **{kind: {"probability": 0.3, "limit": LIMIT, "retry_after": 3}})
    waits: list[float] = []
    report = await sync(org, sleep=recorder(waits))
    injected = wait_idle(server)["faults"][kind]
    assert report.ok and report.done == USERS
    assert injected > 0 and waits == [3.0] * injected  # every wait is the server's, none is our backoff
    assert_provisioned_once(org, server, logins)


@pytest.mark.parametrize("when", ["before", "after"])
async def test_slow_replies_past_the_connector_timeout(org, server, patient, when):
    """``before``: the app serves the abandoned request later (the create may land after the
    retry's; scim2-server answers the loser 409).  ``after``: the create is done, the reply
    comes too late.  Either way exactly one user is created per login."""
    logins = hire(org)
    server.set_faults(seed=13, slow={"probability": 0.2, "limit": 20, "delay_ms": 800, "when": when})

    def connector(app: dict) -> ScimConnector:
        return ScimConnector(app["scim_url"], os.environ[TOKEN_ENV], timeout=0.25, max_connections=4)

    report = await sync(org, connector_factory=connector)
    stats = wait_idle(server)  # until the abandoned requests are served too
    assert report.ok and report.done == USERS, report.failed
    assert stats["faults"]["slow"] > 0 and report.retries == stats["faults"]["slow"]
    assert stats["creates_committed"] == USERS
    assert_provisioned_once(org, server, logins)


async def test_app_down_then_back_while_the_reconciler_backs_off(org, server):
    logins = hire(org)
    server.set_faults(app_down={"mode": "reset"})
    waits: list[float] = []
    record = recorder(waits)

    async def sleep(seconds: float) -> None:
        if not waits:
            server.set_faults(app_down=None)  # the app comes back during the first backoff
        await record(seconds)

    report = await sync(org, sleep=sleep)
    down = wait_idle(server)["faults"]["app_down"]
    assert report.ok and report.done == USERS
    assert down > 0 and report.retries == down == len(waits)
    assert_provisioned_once(org, server, logins)


async def test_updates_and_deactivations_under_faults_land_once(org, server, patient):
    logins = hire(org)
    assert (await sync(org)).ok
    suspended = logins[::3]
    for login in logins:
        org.update_user(login, {"title": f"Lead {login}"})
    for login in suspended:
        org.change_state(login, "suspend")
    server.reset_stats()
    server.set_faults(
        seed=14,
        unavailable={"probability": 0.2, "limit": LIMIT},
        after_commit={"probability": 0.3, "limit": LIMIT, "method": ["PATCH", "PUT"]},
    )
    report = await sync(org)
    stats = wait_idle(server)
    assert report.ok and report.done == USERS, report.failed
    assert stats["faults"]["after_commit"] > 0 and report.retries == sum(stats["faults"].values())
    assert "POST /Users" not in stats["requests"]
    server.clear_faults()
    remote = {u["userName"]: u for u in downstream(server, logins[0].rpartition("-")[0])}
    assert len(remote) == USERS
    for login in logins:
        # domain.plan: a deactivation sends no attribute changes, they go with the reactivation.
        assert remote[login]["title"] == ("Engineer" if login in suspended else f"Lead {login}")
        assert remote[login]["active"] is (login not in suspended)
        account = org.user_view(login)["apps"][0]["account"]
        assert account["state"] == ("deactivated" if login in suspended else "active") and not account["queued"]


# ------------------------------------------------------------------- lost replies


@pytest.mark.parametrize("reply", ["drop", "reset", "malformed"])
async def test_lost_replies_to_committed_creates_are_linked_not_duplicated(org, server, reply):
    logins = hire(org)
    server.set_faults(after_commit={"next": 10, "method": "POST", "path": "/Users", "reply": reply})
    report = await sync(org)
    stats = wait_idle(server)
    assert report.ok and report.done == USERS
    assert stats["faults"]["after_commit"] == 10 and report.retries == 10
    # The retry looked the user up by externalId before creating, found it and linked it:
    # no second POST at all.
    assert stats["creates_reached_app"] == USERS and stats["creates_committed"] == USERS
    assert_provisioned_once(org, server, logins)


async def test_lost_create_reply_then_conflict_is_resolved_by_linking(org, server):
    """The externalId lookup misses (a lagging search index), so the retry POSTs again:
    scim2-server answers 409 on the userName, and the reconciler links that user."""
    logins = hire(org)
    server.set_faults(after_commit={"next": 5, "method": "POST", "path": "/Users"}, stale_search={"query": "externalId"})
    report = await sync(org)
    stats = wait_idle(server)
    assert report.ok and report.done == USERS and report.retries == 5
    assert stats["creates_reached_app"] == USERS + 5 and stats["creates_committed"] == USERS
    assert stats["app_status"]["POST /Users 409"] == 5
    conflicts = [e for e in org.audit() if e["action"] == "downstream.call" and e["after"]["status"] == 409]
    assert len(conflicts) == 5
    assert_provisioned_once(org, server, logins)


async def remote_user(server: FaultServerProcess, user_id: str):
    async with ScimConnector(server.url, server.token) as connector:
        return await connector.find_user(external_id=user_id)


async def test_a_lost_create_for_a_user_who_then_loses_the_app_is_found_and_deactivated(org, server):
    """Found by the soak: the create's reply is lost and every lookup after it fails, then the user
    leaves the group.  The account the create made must be found and deactivated, not left active."""
    [login] = hire(org, 1)
    server.set_faults(
        after_commit={"next": 1, "method": "POST", "path": "/Users"}, unavailable={"next": sending.MAX_ATTEMPTS - 1, "method": "GET"}
    )
    assert not (await sync(org)).ok
    user_id = org.user_view(login)["id"]
    assert (await remote_user(server, user_id)).active  # created, but provtui never heard so
    org.remove_members("eng", [login])
    server.clear_faults()
    assert (await sync(org)).ok
    assert not (await remote_user(server, user_id)).active
    assert org.user_view(login)["apps"][0]["account"]["state"] == "deactivated"


async def test_a_create_lost_then_paused_mid_retry_is_looked_up_after_the_user_loses_the_app(org, server):
    """Found by the soak: a create's reply is lost and the run stops (or the app is quarantined) before
    the retry.  That a create may have reached the app must be kept, so that once the user is no longer
    entitled the account is found and deactivated rather than forgotten."""
    [login] = hire(org, 1)
    server.set_faults(after_commit={"next": 1, "method": "POST", "path": "/Users"})
    reconciler = build_engine(org, notify=False)

    async def stop_during_backoff(seconds: float) -> None:
        reconciler.stop()  # SIGTERM to a worker, in effect, while the key waits to retry

    reconciler._sleep = stop_during_backoff
    try:
        await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()
    user_id = org.user_view(login)["id"]
    assert (await remote_user(server, user_id)).active and org.pending_work() == 1
    org.remove_members("eng", [login])
    assert (await sync(org)).ok
    assert not (await remote_user(server, user_id)).active


async def test_a_dead_workers_create_for_a_user_who_then_loses_the_app_is_found_and_deactivated(org, server):
    """Found by the soak: a worker SIGKILLed after its POST, before committing the result, leaves the
    account downstream and the key leased to it; the user then leaves the group (which queues the key
    again: the dead worker's lease must survive that).  The next worker must find the account and
    deactivate it."""
    import socket

    from provtui.model.schema import DIRTY, account_key

    [login] = hire(org, 1)
    user_id, app_id = org.user_view(login)["id"], org.list_apps()[0]["id"]
    async with ScimConnector(server.url, server.token) as connector:
        await connector.create_user({"userName": login, "externalId": user_id}, active=True)
    key = account_key(app_id, user_id)
    with org.store.transaction() as tx:  # the dead worker's lease (no such process)
        tx.put(
            DIRTY,
            key,
            {**tx.get(DIRTY, key), "lease": {"owner": f"{socket.gethostname()}:999999999:dead", "until": "2999-01-01T00:00:00Z"}},
        )
    org.remove_members("eng", [login])
    assert (await sync(org)).ok
    assert not (await remote_user(server, user_id)).active


async def test_a_retry_after_longer_than_the_backoff_cap_is_not_cut_short(org, server, monkeypatch):
    """A long Retry-After is honoured in full: the key waits in the queue rather than in the run."""
    monkeypatch.setattr(sending, "BACKOFF_CAP", 30.0)  # its real value
    [login] = hire(org, 1)
    server.set_faults(rate_limit={"next": 1, "retry_after": 60})
    waits: list[float] = []
    report = await sync(org, sleep=recorder(waits))
    assert not report.failed and waits == []  # no early retry inside the run
    [deferred] = report.deferred
    assert deferred["user"] == login and deferred["status"] == 429
    [dirty] = org.store.all("dirty").values()
    assert (parse_iso(dirty["not_before"]) - utc_now()).total_seconds() > 55
    assert (await sync(org)).calls == 0  # still waiting: nothing is sent early
    assert org.user_view(login)["apps"][0]["account"]["queued"]


# ------------------------------------------------------------------- failures that stick


async def test_a_non_retryable_400_fails_at_once_and_keeps_the_server_message(org, server):
    logins = hire(org)
    detail = "userName does not meet naming policy P-7"
    server.set_faults(bad_request={"next": 1, "method": "POST", "path": "/Users", "detail": detail, "scim_type": "invalidValue"})
    report = await sync(org)
    stats = wait_idle(server)
    [failure] = report.failed
    assert failure["status"] == 400 and failure["error"] == detail and failure["action"] == "create"
    assert report.done == USERS - 1 and report.retries == 0
    account = org.user_view(failure["user"])["apps"][0]["account"]
    assert account["state"] == "failed" and account["last_error"] == detail
    assert account["attempts"] == 1 and account["remote_id"] is None
    assert stats["requests"]["POST /Users"] == USERS  # one attempt each, the rejected one included
    assert stats["creates_committed"] == USERS - 1
    assert_provisioned_once(org, server, logins, absent=(failure["user"],))


async def test_app_down_for_the_whole_run_fails_each_key_after_max_attempts(org, server):
    logins = hire(org, 5)
    server.set_faults(app_down={})
    report = await sync(org)
    stats = wait_idle(server)
    assert report.failed == [] and sorted(f["user"] for f in report.deferred) == logins
    assert report.retries == len(logins) * (sending.MAX_ATTEMPTS - 1)
    # first a create (no user could exist yet), then, since it may have reached the app, a lookup before each retry
    assert stats["requests"] == {"POST /Users": len(logins), "GET /Users": len(logins) * (sending.MAX_ATTEMPTS - 1)}
    account = org.user_view(logins[0])["apps"][0]["account"]
    assert account["state"] == "failed" and account["attempts"] == sending.MAX_ATTEMPTS
    assert "down" in account["last_error"]


async def test_keys_that_ran_out_of_attempts_on_a_transient_fault_are_retried_next_run(org, server):
    """MAX_ATTEMPTS is per key *per run*: an outage that outlasts one run must not turn
    into permanent failures."""
    logins = hire(org, 5)
    server.set_faults(app_down={})
    deferred = (await sync(org)).deferred
    assert len(deferred) == len(logins)
    server.clear_faults()
    latest = max(parse_iso(d["retry_at"]) for d in deferred)
    await asyncio.sleep(max(0.0, (latest - utc_now()).total_seconds()) + 0.01)  # each waits its backoff first
    assert org.pending_work() == len(logins)
    report = await sync(org)
    assert report.ok and report.done == len(logins)
    assert_provisioned_once(org, server, logins)


# ------------------------------------------------------------------- other sync processes


def run_sync(store, env: dict, **kwargs) -> subprocess.Popen:
    command = [sys.executable, "-m", "provtui", "sync", "--store", str(store)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def sync_env(server: FaultServerProcess) -> dict:
    env = {**os.environ, TOKEN_ENV: server.token}
    env.pop("PROVTUI_STORE", None)
    return env


async def test_a_second_worker_never_works_on_keys_the_first_still_holds(org, server, monkeypatch, tmp_path):
    """A worker claims its whole batch (up to CLAIM_BATCH keys) at once with one lease
    expiry, then works through it at the app's concurrency.  Against a slow app the batch
    outlasts LEASE_SECONDS (500 keys x 2 calls x 0.5 s / 4 = 125 s > 120 s); here the lease is
    shortened so the same happens in seconds.  A second worker then takes over keys the first
    is still reconciling or has queued, and both send the same calls."""
    monkeypatch.setattr("provtui.engine.leases.LEASE_SECONDS", 0.5)  # the first worker's leases only
    logins = hire(org)
    server.set_faults(slow={"delay_ms": 300})  # 30 keys x 2 calls x 0.3 s / 4 = 4.5 s
    first = asyncio.ensure_future(sync(org))
    while server.stats()["creates_committed"] < 3:  # the first worker is well under way...
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.6)  # ...and its leases have expired
    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "provtui",
        "sync",
        "--store",
        str(tmp_path / "store"),
        env=sync_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await second.communicate()
    report = await first
    stats = wait_idle(server)
    assert second.returncode == 0 and report.ok, (out, err, report.failed)
    assert_provisioned_once(org, server, logins)  # scim2-server's userName uniqueness prevents duplicates...
    # ...but each key must be reconciled by one worker: one create per user (fresh keys need no lookup).
    assert stats["requests"] == {"POST /Users": USERS}, stats


# ------------------------------------------------------------------- a killed sync process


@pytest.mark.slow
def test_sync_killed_mid_run_then_run_again_provisions_each_user_once(tmp_path, server):
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    env = sync_env(server)
    for round_ in range(int(os.environ.get("KILL_ROUNDS", 3))):  # more rounds to soak: KILL_ROUNDS=20
        store = tmp_path / f"store{round_}"
        logins = hire(make_org(store, server))
        # Every call takes 100 ms, so the run lasts seconds and is caught mid-flight.
        server.set_faults(reset=True, slow={"delay_ms": 100})
        server.reset_stats()
        kill_after = rng.randint(1, USERS - 2)  # users created downstream before the kill...
        extra = rng.uniform(0, 0.12)  # ...plus a random moment within the next call
        first = run_sync(store, env)
        try:
            while first.poll() is None and server.stats()["creates_committed"] < kill_after:
                time.sleep(0.005)
            time.sleep(extra)
            first.send_signal(signal.SIGKILL)
        finally:
            out, err = first.communicate(timeout=30)  # reaped: a zombie would still look alive to a lease check
        context = f"seed={seed} round={round_} kill_after={kill_after} extra={extra:.3f}: {out!r} {err!r}"
        assert first.returncode == -signal.SIGKILL, f"the first sync was not killed mid-run; {context}"
        server.clear_faults()
        second = run_sync(store, env)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, f"{context}; second run: {out!r} {err!r}"
        wait_idle(server)
        reopened = Service.open(store, actor="admin")
        assert reopened.pending_work() == 0, context
        assert_provisioned_once(reopened, server, logins)


# ------------------------------------------------------------------- quarantine


async def test_a_long_running_engine_works_on_an_app_again_once_another_process_resumes_it(org, server, monkeypatch):
    """Found by the soak: a worker that quarantined an app kept skipping its keys after an admin
    resumed it from another process, claiming and skipping them in a loop."""
    monkeypatch.setattr("provtui.engine.health.QUARANTINE_AFTER", 3)
    logins = hire(org, 8)
    server.set_faults(app_down={})
    reconciler = build_engine(org, notify=False)  # one engine for both runs, as in `provtui worker`
    try:
        assert (await reconciler.run_until_idle()).quarantined == ["Slack"]
        server.clear_faults()
        Service.open(org.location, actor="admin").resume_app("Slack")
        with org.store.transaction() as tx:  # deferred keys wait their backoff; make them due now
            for key, doc in list(org.store.all("dirty").items()):
                tx.put("dirty", key, {k: v for k, v in doc.items() if k != "not_before"})
        report = await asyncio.wait_for(reconciler.run_until_idle(), 60)  # before the fix: claimed and skipped forever
    finally:
        await reconciler.aclose()
    assert report.ok and report.done == len(logins)
    assert_provisioned_once(org, server, logins)


async def test_an_app_failing_persistently_is_quarantined_then_resumed(org, server, monkeypatch):
    monkeypatch.setattr("provtui.engine.health.QUARANTINE_AFTER", 3)
    logins = hire(org, 8)
    server.set_faults(app_down={})
    report = await sync(org)
    assert report.quarantined == ["Slack"] and not report.ok
    [status] = org.app_status("Slack")
    assert status["quarantined"] and "down" in status["quarantine_reason"]
    assert status["queued"] == len(logins)  # nothing is lost: the work waits
    assert any(e["action"] == "app.quarantine" for e in org.audit())
    server.clear_faults()
    server.reset_stats()
    quiet = await sync(org)  # paused: no call at all until an admin resumes it
    assert quiet.calls == 0 and server.stats()["requests"] == {}
    org.resume_app("Slack")
    assert not org.app_status("Slack")[0]["quarantined"]
    for login in logins:  # deferred keys wait their backoff; make them due now
        key = next(k for k, d in org.store.all("dirty").items() if d.get("user") == org.user_view(login)["id"])
        with org.store.transaction() as tx:
            tx.put("dirty", key, {k: v for k, v in tx.get("dirty", key).items() if k != "not_before"})
    report = await sync(org)
    assert report.ok and report.done == len(logins)
    assert_provisioned_once(org, server, logins)
    status = org.app_status("Slack")[0]
    assert status["queued"] == 0 and status["active"] == len(logins) and status["last_success"]
