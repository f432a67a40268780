"""SCIM provisioning end to end, against a real scim2-server process."""

import uuid

import httpx
import pytest

from provtui.compose import build_engine
from provtui.connectors.scim import ScimConnector
from provtui.domain.mapping import ENTERPRISE, WORK_EMAIL
from provtui.service import Service

TOKEN_ENV = "PROVTUI_TEST_SCIM_TOKEN"


@pytest.fixture
def org(store_location, scim_server, monkeypatch):
    """A store with one SCIM app on the shared server; logins are unique per test."""
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    service = Service.init(store_location, actor="admin")
    service.create_app("Slack", scim_url=scim_server.url, token_env=TOKEN_ENV)
    service.create_group("eng")
    service.assign("Slack", group="eng")
    prefix = uuid.uuid4().hex[:6]

    def hire(name: str, **extra) -> str:
        login = f"{prefix}-{name}"
        service.create_user(login, f"{login}@example.com", name.title(), "Tester", extra, activate=True)
        service.add_members("eng", [login])
        return login

    service.hire = hire
    return service


async def sync(service):
    reconciler = build_engine(service)
    try:
        return await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()


async def remote(scim_server, service, login):
    account = service.user_view(login)["apps"][0]["account"]
    async with ScimConnector(scim_server.url, scim_server.token) as connector:
        return await connector.get_user(account["remote_id"])


def calls(service):
    return [e["after"] for e in service.audit() if e["action"] == "downstream.call"]


async def test_create_with_default_mapping_then_nothing_to_do(org, scim_server):
    login = org.hire("ada", title="Engineer", department="R&D")
    report = await sync(org)
    assert report.ok and report.done == 1
    account = org.user_view(login)["apps"][0]["account"]
    assert account["state"] == "active" and account["remote_id"] and not account["queued"]
    user = await remote(scim_server, org, login)
    assert user.active
    assert user.attributes["userName"] == login
    assert user.attributes["externalId"] == org.user_view(login)["id"]
    assert user.attributes["name.givenName"] == "Ada"
    assert user.attributes[WORK_EMAIL] == f"{login}@example.com"
    assert user.attributes["title"] == "Engineer"
    assert user.attributes[f"{ENTERPRISE}:department"] == "R&D"
    sent = len(calls(org))
    again = await sync(org)
    assert again.calls == 0 and again.done == 0 and len(calls(org)) == sent  # nothing changed: no request


async def test_every_call_made_for_a_user_names_them_and_is_in_their_history(org, scim_server):
    ada, bob = org.hire("ada"), org.hire("bob")
    await sync(org)
    org.remove_members("eng", [ada])
    await sync(org)
    made = [c for c in calls(org) if c.get("user") == ada]
    assert [(c["method"], c["path"].startswith("/Users")) for c in made if c["method"] != "GET"] == [("POST", True), ("PATCH", True)]
    assert {c.get("user") for c in calls(org)} == {ada, bob}
    history = [(e["action"], (e["after"] or {}).get("method")) for e in org.user_history(ada)]
    assert history.count(("downstream.call", "POST")) == 1 and history.count(("downstream.call", "PATCH")) == 1
    assert all(e["after"].get("user") != bob for e in org.user_history(ada) if e["action"] == "downstream.call")


async def test_many_edits_become_one_patch(org, scim_server):
    login = org.hire("bo")
    await sync(org)
    before = len(calls(org))
    for title in ("A", "B", "C"):
        org.update_user(login, {"title": title})
    org.update_user(login, {"department": "Ops"})
    report = await sync(org)
    user_calls = [c for c in calls(org)[before:] if c["path"].startswith("/Users")]  # not /ServiceProviderConfig
    assert report.done == 1 and [c["method"] for c in user_calls] == ["PATCH"]
    user = await remote(scim_server, org, login)
    assert user.attributes["title"] == "C" and user.attributes[f"{ENTERPRISE}:department"] == "Ops"


async def test_suspend_then_unsuspend_before_sync_sends_nothing(org):
    login = org.hire("cy")
    await sync(org)
    before = len(calls(org))
    org.change_state(login, "suspend")
    org.change_state(login, "unsuspend")
    report = await sync(org)
    assert report.calls == 0 and len(calls(org)) == before


async def test_lifecycle_deactivates_never_deletes_and_reactivates(org, scim_server):
    login = org.hire("di")
    await sync(org)
    org.change_state(login, "suspend")
    await sync(org)
    assert (await remote(scim_server, org, login)).active is False
    assert org.user_view(login)["apps"][0]["account"]["state"] == "deactivated"
    org.change_state(login, "unsuspend")
    await sync(org)
    assert (await remote(scim_server, org, login)).active is True
    org.change_state(login, "deactivate")
    await sync(org)
    assert (await remote(scim_server, org, login)).active is False
    org.change_state(login, "reactivate")
    await sync(org)
    assert (await remote(scim_server, org, login)).active is True
    assert "DELETE" not in {c["method"] for c in calls(org)}


async def test_losing_one_path_keeps_access_losing_the_last_deactivates(org, scim_server):
    login = org.hire("ed")
    org.assign("Slack", login=login)
    await sync(org)
    before = len(calls(org))
    org.remove_members("eng", [login])
    assert (await sync(org)).calls == 0 and len(calls(org)) == before
    org.unassign("Slack", login=login)
    await sync(org)
    assert (await remote(scim_server, org, login)).active is False
    view = org.user_view(login)["apps"][0]
    assert view["entitled"] is False and view["account"]["state"] == "deactivated"


async def test_existing_account_is_linked_not_duplicated(org, scim_server):
    login = f"{uuid.uuid4().hex[:6]}-fay"
    async with ScimConnector(scim_server.url, scim_server.token) as connector:
        existing = await connector.create_user({"userName": login, "name.givenName": "Old"}, active=False)
    org.create_user(login, f"{login}@example.com", "Fay", "Tester", activate=True)
    org.add_members("eng", [login])
    report = await sync(org)
    assert report.ok
    account = org.user_view(login)["apps"][0]["account"]
    assert account["remote_id"] == existing.id
    user = await remote(scim_server, org, login)
    assert user.active and user.attributes["name.givenName"] == "Fay"
    statuses = [c["status"] for c in calls(org)]
    assert 409 in statuses  # the create conflicted and was resolved by a lookup
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {scim_server.token}"}) as client:
        found = (await client.get(f"{scim_server.url}/Users", params={"filter": f'userName eq "{login}"'})).json()
    assert found["totalResults"] == 1


async def test_pending_work_survives_a_restart(org, scim_server):
    login = org.hire("gus")
    reopened = Service.open(org.location, actor="admin")
    assert reopened.pending_work() == 1
    assert (await sync(reopened)).done == 1
    assert (await remote(scim_server, reopened, login)).active


async def test_put_is_used_when_patch_is_unsupported(org, scim_server):
    login = org.hire("hal")
    await sync(org)
    org.update_user(login, {"title": "Boss"})

    class NoPatch(ScimConnector):
        async def patch_supported(self):
            return False

    reconciler = build_engine(org, connector_factory=lambda app: NoPatch(app["scim_url"], scim_server.token, on_call=lambda *a: None))
    try:
        assert (await reconciler.run_until_idle()).ok
    finally:
        await reconciler.aclose()
    assert (await remote(scim_server, org, login)).attributes["title"] == "Boss"


async def test_missing_token_fails_visibly(org, monkeypatch):
    login = org.hire("ivy")
    monkeypatch.delenv(TOKEN_ENV)
    report = await sync(org)
    assert not report.ok
    [failure] = report.failed
    assert failure["user"] == login and TOKEN_ENV in failure["error"]
    account = org.user_view(login)["apps"][0]["account"]
    assert account["state"] == "failed" and TOKEN_ENV in account["last_error"]


async def test_downstream_error_is_kept_on_the_account(org, scim_server):
    login = org.hire("jo")
    await sync(org)
    org.update_user(login, {"title": "x" * 10})
    # A connector on a base URL that does not exist: a non-retryable 404 with the server's message.
    reconciler = build_engine(org, connector_factory=lambda app: ScimConnector(scim_server.url + "/nowhere", scim_server.token))
    try:
        report = await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()
    assert not report.ok and report.failed[0]["status"] == 404
    assert org.user_view(login)["apps"][0]["account"]["last_error"]
