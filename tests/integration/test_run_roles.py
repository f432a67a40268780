"""The run commands (sync, worker, retry) enforce roles, for real OS users (issue #14).

As in tests/integration/test_os_users.py, each command runs in a forked child that really switches to the
user's uid and groups, then calls the CLI's main(). A store member with no role and a read-only
admin get exit 4 and change nothing; an app admin's run touches only their app, and the audit
names them beside the engine.
"""

import concurrent.futures.thread  # noqa: F401  (the engine's threads: the child may not read the stdlib under /root)
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

import provtui.cli.ops  # noqa: F401  (imported before the fork, as test_os_users does)
import provtui.engine.reconciler  # noqa: F401
import provtui.engine.worker  # noqa: F401
import provtui.service  # noqa: F401
from provtui.service import Service
from provtui.testing.fault_server import FaultServerProcess
from tests.helpers.os_users import needs_root, run_as
from tests.helpers.os_users import os_users as make_os_users

pytestmark = needs_root

TOKEN_ENV = "PROVTUI_TEST_RUN_ROLES_TOKEN"
UNSET_ENV = "PROVTUI_TEST_RUN_ROLES_UNSET"  # GitHub's token variable: never set, so its accounts fail for good


@pytest.fixture(scope="module")
def os_users():
    with make_os_users("run", {"member": "rm", "reader": "rr", "slack_admin": "ra"}) as made:
        yield made


@pytest.fixture(scope="module")
def server():
    with FaultServerProcess(token="run-roles-token") as server:
        yield server


@pytest.fixture
def store(os_users, server, monkeypatch):
    """A store shared with the group: Slack (on the fault server) and GitHub (its token unset), both
    assigned to ada and bob; roles: the member none, the reader read-only, slack_admin app-admin of Slack."""
    group, names = os_users
    monkeypatch.setenv(TOKEN_ENV, server.token)
    monkeypatch.delenv(UNSET_ENV, raising=False)
    server.clear_faults()
    server.reset_stats()
    root = Path(tempfile.mkdtemp(prefix="provtui-run-roles-"))
    os.chmod(root, 0o755)
    path = root / "store"
    try:
        assert run_as(None, "init", "--store", str(path), "--group", group) == 0
        service = Service.open(path, actor="root")
        service.create_app("Slack", scim_url=server.url, token_env=TOKEN_ENV)
        service.create_app("GitHub", scim_url="http://127.0.0.1:9/v2", token_env=UNSET_ENV)
        prefix = uuid.uuid4().hex[:6]
        logins = [f"{prefix}-ada", f"{prefix}-bob"]
        for login in logins:
            service.create_user(login, f"{login}@example.com", "R", "Oles", activate=True)
            service.assign("Slack", login=login)
            service.assign("GitHub", login=login)
        service.grant(names["reader"], "read-only")
        service.grant(names["slack_admin"], "app-admin", apps=["Slack"])
        yield path, names, logins
    finally:
        shutil.rmtree(root, ignore_errors=True)


def accounts(path: Path, logins: list[str]) -> dict[tuple[str, str], dict]:
    service = Service.open(path, actor="root")
    return {(login, a["app"]): a["account"] for login in logins for a in service.user_view(login)["apps"]}


def test_a_member_with_no_role_and_a_read_only_admin_may_not_run_sync_worker_or_retry(store, server):
    path, names, logins = store
    before = accounts(path, logins)
    for who in ("member", "reader"):
        for command in (["sync"], ["sync", "--max-wait", "0"], ["worker"], ["retry"], ["retry", "--app", "Slack"]):
            assert run_as(names[who], "--store", str(path), *command) == 4, (who, command)
    assert server.stats()["requests"] == {}  # no call was sent...
    assert accounts(path, logins) == before  # ...and no account marked failed, or anything else changed
    assert all(account["queued"] and account["state"] != "failed" for account in before.values())
    events = Service.open(path, actor="root").audit()
    assert not any(e["actor"] == "provtui-engine" for e in events)


def test_an_app_admins_run_touches_only_their_app_and_the_audit_names_them(store, server):
    path, names, logins = store
    admin = names["slack_admin"]
    assert run_as(admin, "--store", str(path), "sync", "--max-wait", "30") == 0  # all of *their* work is done
    after = accounts(path, logins)
    for login in logins:
        assert after[(login, "Slack")]["state"] == "active" and not after[(login, "Slack")]["queued"]
        github = after[(login, "GitHub")]
        assert github["queued"] and github["state"] != "failed" and not github.get("last_error")  # never touched
    assert server.stats()["creates_committed"] == len(logins)
    engine_events = [e for e in Service.open(path, actor="root").audit() if e["actor"] == "provtui-engine"]
    assert engine_events and all(e["run_by"] == admin for e in engine_events)
    assert any(e["action"] == "downstream.call" for e in engine_events)


def test_an_app_admin_may_retry_only_their_apps(store):
    """`retry` with no --app would touch every app: an app admin names theirs (as tests/unit/test_roles.py's matrix has it)."""
    path, names, logins = store
    admin = names["slack_admin"]
    assert run_as(None, "--store", str(path), "sync", "--max-wait", "5") == 1  # GitHub's token is not set: failed for good
    failed = accounts(path, logins)
    assert all(failed[(login, "GitHub")]["state"] == "failed" and not failed[(login, "GitHub")]["queued"] for login in logins)
    assert run_as(admin, "--store", str(path), "retry", "--app", "Slack") == 0  # theirs: nothing failed there
    assert run_as(admin, "--store", str(path), "retry", "--app", "GitHub") == 4
    assert run_as(admin, "--store", str(path), "retry") == 4  # every app, GitHub too
    assert all(not a["queued"] for a in accounts(path, logins).values())
    assert run_as(None, "--store", str(path), "retry", "--app", "GitHub") == 0
    assert all(accounts(path, logins)[(login, "GitHub")]["queued"] for login in logins)
    events = Service.open(path, actor="root").audit(action="provisioning.retry")
    assert [(e["actor"], e["target"], e["after"]["accounts"]) for e in events] == [("root", "GitHub", len(logins))]
