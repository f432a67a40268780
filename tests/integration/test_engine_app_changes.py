"""The engine and a changed app record (issue #14's follow-ups).

An app whose secret reference was cleared (a super admin moved it and named no new token) is paused once, with a
message naming the app and the command that fixes it, and no call sent; naming a token lifts the pause at the next
run.  A running engine (the worker, the console's) notices an app's record changed and builds that app's
connector again before its next call: the next account goes to the new endpoint with the new token, and nothing
else is rebuilt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from provtui.compose import build_engine
from provtui.connectors.config import MissingSecretReference, connection_fingerprint, connector_for
from provtui.model.schema import APP_HEALTH, APPS
from provtui.service import Service
from provtui.testing.fault_server import FaultServerProcess

OLD_ENV, NEW_ENV = "PROVTUI_TEST_MOVE_OLD_TOKEN", "PROVTUI_TEST_MOVE_NEW_TOKEN"


@pytest.fixture(scope="module")
def servers():
    """Two SCIM servers, each accepting only its own token."""
    with FaultServerProcess(token="old-" + uuid.uuid4().hex) as old, FaultServerProcess(token="new-" + uuid.uuid4().hex) as new:
        yield old, new


@pytest.fixture
def org(tmp_path, servers, monkeypatch):
    old, new = servers
    monkeypatch.setenv(OLD_ENV, old.token)
    monkeypatch.setenv(NEW_ENV, new.token)
    for server in servers:
        server.clear_faults()
        server.reset_stats()
    root = Service.init(tmp_path / "store", actor=None)
    root.create_app("CRM", scim_url=old.url, token_env=OLD_ENV)
    root.create_app("Other", scim_url=old.url, token_env=OLD_ENV)
    root.create_group("sales")
    root.assign("CRM", group="sales")
    return root


def hire(service, app_group="sales"):
    login = f"mv-{uuid.uuid4().hex[:8]}"
    service.create_user(login, f"{login}@example.com", "M", "V", activate=True)
    service.add_members(app_group, [login])
    return login


def state(service, login, app="CRM"):
    service.refresh()
    return next(a for a in service.user_view(login)["apps"] if a["app"] == app)["account"]


def rejected_statuses(server):
    return {k: v for k, v in server.stats()["app_status"].items() if k.endswith((" 401", " 403"))}


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# -- a cleared secret reference ----------------------------------------------------------


def test_connector_for_names_the_app_and_the_fix_when_no_secret_is_named():
    scim = {"id": "a", "name": "CRM", "kind": "scim", "scim_url": "http://127.0.0.1:9/v2", "token_env": None, "settings": {}}
    with pytest.raises(MissingSecretReference) as raised:
        connector_for(scim)
    assert raised.value.message == "app CRM has no token: `provtui app update CRM --token-env NAME`"
    assert raised.value.status is None and not raised.value.retryable
    ldap = {
        "id": "b",
        "name": "Dir",
        "kind": "ldap",
        "settings": {},
        "ldap": {"uri": "ldap://127.0.0.1:9", "bind_dn": "cn=a,dc=x", "password_env": None, "base_dn": "dc=x"},
    }
    with pytest.raises(MissingSecretReference, match=r"^app Dir has no bind password: `provtui app update Dir --password-env NAME`$"):
        connector_for(ldap)


async def test_a_moved_app_without_a_token_is_paused_once_then_resumes_when_one_is_named(org, servers, tmp_path):
    old, new = servers
    logins = [hire(org) for _ in range(3)]
    engine = build_engine(org, notify=False)  # one engine across runs, as the console and the worker keep theirs
    try:
        assert (await engine.run_until_idle()).ok
        root = Service.open(tmp_path / "store", actor=None)  # a super admin, elsewhere
        assert root.update_app("CRM", scim_url=new.url)["cleared"] == ["token_env"]
        logins.append(hire(root))  # something to send (the accounts already made need no call)
        old.reset_stats()
        report = await engine.run_until_idle()
        message = "app CRM has no token: `provtui app update CRM --token-env NAME`"
        assert report.failed == [] and [(r["app"], r["status"], r["error"]) for r in report.credentials_rejected] == [
            ("CRM", None, message)
        ]
        assert old.stats()["requests"] == {} and new.stats()["requests"] == {}  # nothing sent anywhere
        org.refresh()
        health = org.store.get(APP_HEALTH, org.directory.app("CRM")["id"])
        assert health["credentials_rejected"] and health["misconfigured"] and health["credentials_error"] == message
        [status] = org.app_status("CRM")
        assert status["credentials_rejected"] and status["queued"] == 1  # the new hire waits
        assert all(state(org, login)["state"] != "failed" for login in logins)
        events = [e for e in org.audit() if e["action"] == "app.credentials_rejected"]
        assert len(events) == 1 and events[0]["after"] == {"status": None, "error": message}
        await engine.run_until_idle()  # still paused (probed on its back-off), not failed nor audited again
        org.refresh()
        assert org.app_status("CRM")[0]["credentials_rejected"] and org.app_status("CRM")[0]["queued"] == 1
        assert len([e for e in org.audit() if e["action"] == "app.credentials_rejected"]) == 1

        root.refresh()
        root.update_app("CRM", token_env=NEW_ENV)  # the fix: probed at the next run, whatever the back-off says
        report = await engine.run_until_idle()
        assert report.ok, report
        assert state(org, logins[-1])["state"] == "active" and new.stats()["creates_committed"] == 1
        assert rejected_statuses(new) == {} and old.stats()["requests"] == {}
        org.refresh()
        health = org.store.get(APP_HEALTH, org.directory.app("CRM")["id"])
        assert not health.get("credentials_rejected") and "misconfigured" not in health
    finally:
        await engine.aclose()
    outputs = [str(report), str(list(org.audit())), str(org.app_status())]
    assert not any(secret in text for secret in (old.token, new.token) for text in outputs)


# -- a changed record: the connector built again ---------------------------------------------


async def test_the_console_engine_builds_only_a_changed_apps_connector_again(org, servers, tmp_path):
    old, new = servers
    root = Service.open(tmp_path / "store", actor=None)
    root.assign("Other", group="sales")
    hire(org)
    engine = build_engine(org, notify=False)
    try:
        assert (await engine.run_until_idle()).ok
        crm, other = (org.directory.app(name)["id"] for name in ("CRM", "Other"))
        before = dict(engine._connectors)
        root.refresh()
        root.update_app("CRM", rate=50.0)  # not the connection: the connector is kept
        hire(root)
        assert (await engine.run_until_idle()).ok
        assert engine._connectors[crm] is before[crm] and engine._connectors[other] is before[other]
        root.update_app("CRM", scim_url=new.url, token_env=NEW_ENV)
        old.reset_stats()
        login = hire(root)
        assert (await engine.run_until_idle()).ok
        assert engine._connectors[crm] is not before[crm] and engine._connectors[other] is before[other]
        assert state(org, login)["state"] == "active" and state(org, login, "Other")["state"] == "active"
        assert new.stats()["creates_committed"] == 1 and rejected_statuses(new) == {}
        assert old.stats()["creates_committed"] == 1  # Other's account, on the server it stayed on
        org.refresh()
        assert connection_fingerprint(org.store.get(APPS, crm)) == engine._built_from[crm]
    finally:
        await engine.aclose()


def test_a_running_worker_follows_an_app_moved_to_another_server(org, servers, tmp_path):
    old, new = servers
    store = tmp_path / "store"
    env = {**os.environ, OLD_ENV: old.token, NEW_ENV: new.token}
    worker = subprocess.Popen(
        [sys.executable, "-m", "provtui", "worker", "--store", str(store)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = hire(org)
        assert wait_for(lambda: state(org, first)["state"] == "active")
        assert old.stats()["creates_committed"] == 1
        old.reset_stats()
        root = Service.open(store, actor=None)  # a super admin moves the app, the worker running on
        root.update_app("CRM", scim_url=new.url, token_env=NEW_ENV)
        second = hire(root)
        assert wait_for(lambda: state(org, second)["state"] == "active"), state(org, second)
        assert worker.poll() is None  # never restarted
        assert new.stats()["creates_committed"] == 1 and rejected_statuses(new) == {}  # there, with the new token
        assert old.stats()["creates_committed"] == 0 and rejected_statuses(old) == {}
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=15)
        assert worker.returncode == 0, err
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
