"""Group push, password sync and the deletion policy, against a real scim2-server."""

import asyncio
import uuid

import pytest

from provtui.compose import build_engine
from provtui.connectors.scim import ScimConnector
from provtui.domain.errors import InvalidInput
from provtui.service import Service

TOKEN_ENV = "PROVTUI_TEST_FEATURES_TOKEN"


@pytest.fixture
def org(tmp_path, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    service = Service.init(tmp_path / "store", actor="admin")
    service.create_app("Slack", scim_url=scim_server.url, token_env=TOKEN_ENV, push_groups=True, sync_password=True)
    service.prefix = uuid.uuid4().hex[:6]
    service.create_group(f"{service.prefix}-eng")
    service.assign("Slack", group=f"{service.prefix}-eng")
    return service


def hire(service, *names):
    logins = [f"{service.prefix}-{n}" for n in names]
    for login in logins:
        service.create_user(login, f"{login}@example.com", login.title(), "Tester", activate=True)
    service.add_members(f"{service.prefix}-eng", logins)
    return logins


async def sync(service, **kwargs):
    reconciler = build_engine(service, **kwargs)
    try:
        return await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()


def remote_ids(service, logins):
    return {service.user_view(login)["apps"][0]["account"]["remote_id"] for login in logins}


async def remote_group(scim_server, service, group_name):
    group_id = service.directory.group(group_name)["id"]
    async with ScimConnector(scim_server.url, scim_server.token) as connector:
        return await connector.find_group(external_id=group_id)


# -- group push --------------------------------------------------------------------------


async def test_push_a_group_with_its_members(org, scim_server):
    eng = f"{org.prefix}-eng"
    ada, bob = hire(org, "ada", "bob")
    org.push_group(eng, "Slack")
    report = await sync(org)
    assert report.ok
    group = await remote_group(scim_server, org, eng)
    assert group.display_name == eng and group.members == remote_ids(org, [ada, bob])


async def test_membership_changes_are_patched_and_renames_follow(org, scim_server):
    eng = f"{org.prefix}-eng"
    ada, bob = hire(org, "ada", "bob")
    org.push_group(eng, "Slack")
    await sync(org)
    before = len(org.audit())
    [cy] = hire(org, "cy")  # joins: account created, then added to the group
    org.remove_members(eng, [bob])
    await sync(org)
    group = await remote_group(scim_server, org, eng)
    assert group.members == remote_ids(org, [ada, cy])
    group_calls = [
        e["after"] for e in org.audit()[before:] if e["action"] == "downstream.call" and e["after"]["path"].startswith("/Groups")
    ]
    assert {c["method"] for c in group_calls} <= {"PATCH", "GET"} and any(c["method"] == "PATCH" for c in group_calls)
    org.rename_group(eng, f"{org.prefix}-engineering")
    await sync(org)
    assert (await remote_group(scim_server, org, f"{org.prefix}-engineering")).display_name == f"{org.prefix}-engineering"


async def test_put_is_used_for_groups_when_patch_is_unsupported(org, scim_server):
    eng = f"{org.prefix}-eng"
    ada, bob = hire(org, "ada", "bob")
    org.push_group(eng, "Slack")
    await sync(org)
    org.remove_members(eng, [ada])
    report = await sync(org, connector_factory=lambda app: ScimConnector(app["scim_url"], scim_server.token, use_patch=False))
    assert report.ok
    assert (await remote_group(scim_server, org, eng)).members == remote_ids(org, [bob])


async def test_unpush_leaves_or_deletes_the_group(org, scim_server):
    eng = f"{org.prefix}-eng"
    hire(org, "ada")
    org.push_group(eng, "Slack")
    await sync(org)
    org.unpush_group(eng, "Slack")
    await sync(org)
    assert await remote_group(scim_server, org, eng) is not None  # left downstream
    org.push_group(eng, "Slack")
    await sync(org)  # found again by externalId and linked, not duplicated
    org.unpush_group(eng, "Slack", delete=True)
    await sync(org)
    assert await remote_group(scim_server, org, eng) is None
    with pytest.raises(InvalidInput, match="not pushed"):
        org.unpush_group(eng, "Slack")


def test_push_needs_an_app_that_pushes_groups(org):
    org.create_app("Plain", scim_url="http://127.0.0.1:9/v2", token_env=TOKEN_ENV)
    with pytest.raises(InvalidInput, match="does not push groups"):
        org.push_group(f"{org.prefix}-eng", "Plain")


# -- passwords ----------------------------------------------------------------------------


async def test_password_is_pushed_and_never_stored_or_audited(org, scim_server, tmp_path):
    [ada] = hire(org, "ada")
    await sync(org)
    targets = org.password_targets(ada)
    assert [t["app"] for t in targets] == ["Slack"]
    secret = "Canary-Pa55word-" + uuid.uuid4().hex
    reconciler = build_engine(org)
    try:
        results = await reconciler.push_passwords(targets, {targets[0]["app_id"]: org.check_password(secret)})
    finally:
        await reconciler.aclose()
    assert results == [{"app": "Slack", "error": None}]
    org.record_password_change(ada, results, random=False)
    event = org.audit()[-1]
    assert event["action"] == "user.password" and event["after"]["apps"] == ["Slack"]
    for path in (tmp_path / "store").iterdir():
        assert secret not in path.read_text(errors="replace")
    assert any(e["action"] == "downstream.call" and e["after"]["method"] == "PATCH" for e in org.audit())


def test_password_targets_need_an_active_user(org):
    [ada] = hire(org, "ada")
    assert org.password_targets(ada) == []  # no account yet
    org.change_state(ada, "suspend")
    with pytest.raises(InvalidInput, match="suspended"):
        org.password_targets(ada)


# -- deletion policy ----------------------------------------------------------------------


async def test_deactivate_only_by_default_delete_after_the_retention_period(org, scim_server, monkeypatch):
    [ada] = hire(org, "ada")
    await sync(org)
    remote_id = org.user_view(ada)["apps"][0]["account"]["remote_id"]
    org.change_state(ada, "deactivate")
    await sync(org)
    await sync(org)
    async with ScimConnector(scim_server.url, scim_server.token) as connector:
        assert (await connector.get_user(remote_id)).active is False  # default: deactivated, never deleted
    org.update_app("Slack", delete_after_days=30)
    monkeypatch.setenv("PROVTUI_FROZEN_TIME", "2099-01-01T00:00:00+00:00")  # 30 days and more later
    report = await sync(org)
    assert report.ok
    async with ScimConnector(scim_server.url, scim_server.token) as connector:
        assert await connector.get_user(remote_id) is None
    account = org.user_view(ada)["apps"][0]["account"]
    assert account["state"] == "deleted" and account["remote_id"] is None
    assert any(e["action"] == "downstream.call" and e["after"]["method"] == "DELETE" for e in org.audit())
    org.change_state(ada, "reactivate")  # a returning user gets a new account
    await sync(org)
    assert org.user_view(ada)["apps"][0]["account"]["state"] == "active"


# -- rate and concurrency -------------------------------------------------------------------


async def test_rate_limit_setting_spaces_calls(org):
    org.update_app("Slack", rate=20.0, concurrency=2)
    hire(org, *[f"u{i}" for i in range(10)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await sync(org)
    elapsed = loop.time() - started
    assert report.ok and report.done == 10
    print(f"10 users, 20 calls at 20/s: {elapsed:.2f} s")  # reported, not asserted (timing never decides a test)
    assert org.directory.app("Slack")["settings"] == {**org.directory.app("Slack")["settings"], "rate": 20.0, "concurrency": 2}


# -- manual apps: the engine's decisions never overwrite what an admin did meanwhile ------------------


async def test_a_task_done_while_the_engine_decides_is_kept_and_the_leaver_gets_a_deprovision_task(tmp_path, monkeypatch):
    from provtui.engine.accounts import Accounts

    service = Service.init(tmp_path / "store", actor="admin")
    service.create_app("Payroll", manual=True, notify=["it@example.com"])
    service.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    service.assign("Payroll", login="ada")
    assert (await sync(service, notify=False)).ok
    [provision] = service.task_list(open_only=True)
    service.change_state("ada", "deactivate")  # she leaves before the account is made...

    decide = Accounts._manual

    def admin_closes_the_task_meanwhile(self, item, app, account, desired):
        outcome = decide(self, item, app, account, desired)  # the engine decides: cancel the provision task
        if outcome.writes and service.task_list(open_only=True):
            service.complete_task(provision["id"])  # ...but the admin made it, and says so, before that is written
        return outcome

    monkeypatch.setattr(Accounts, "_manual", admin_closes_the_task_meanwhile)
    assert (await sync(service, notify=False)).ok
    tasks = {t["id"]: t for t in service.task_list()}
    assert tasks[provision["id"]]["state"] == "done"  # not overwritten as cancelled
    [deprovision] = [t for t in tasks.values() if t["state"] == "open"]
    assert deprovision["action"] == "deprovision" and deprovision["user"] == "ada"  # the account made is taken away
    assert service.user_view("ada")["apps"][0]["account"]["state"] == "task-open"
