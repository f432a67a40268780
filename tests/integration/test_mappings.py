"""Attribute mappings: expressions per downstream attribute, create-only policy, payload preview."""

import json
import uuid

import pytest

from provtui.cli.main import main
from provtui.compose import build_engine
from provtui.connectors.scim import ScimConnector
from provtui.domain.errors import InvalidInput
from provtui.domain.mapping import DEFAULT_SCIM_MAPPINGS, ENTERPRISE, WORK_EMAIL, default_mappings, map_attributes
from provtui.service import Service

TOKEN_ENV = "PROVTUI_TEST_MAPPING_TOKEN"


def test_defaults_reproduce_the_first_mapping():
    profile = {
        "login": "ada",
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "L",
        "displayName": "Ada L",
        "title": "Countess",
        "department": "Eng",
    }
    assert map_attributes("u1", profile, default_mappings()) == {
        "externalId": "u1",
        "userName": "ada",
        "name.givenName": "Ada",
        "name.familyName": "L",
        WORK_EMAIL: "ada@example.com",
        "displayName": "Ada L",
        "title": "Countess",
        f"{ENTERPRISE}:department": "Eng",
    }
    assert len(DEFAULT_SCIM_MAPPINGS) == 7


@pytest.fixture
def org(store_location, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    service = Service.init(store_location, actor="admin")
    service.create_app("Wiki", scim_url=scim_server.url, token_env=TOKEN_ENV)
    service.login = f"m-{uuid.uuid4().hex[:6]}"
    service.create_user(
        service.login, f"{service.login}@example.com", "Ada", "Lovelace", {"title": "Countess", "costCenter": "42"}, activate=True
    )
    service.assign("Wiki", login=service.login)
    return service


async def sync(service):
    reconciler = build_engine(service)
    try:
        return await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()


async def remote(service, scim_server):
    remote_id = service.user_view(service.login)["apps"][0]["account"]["remote_id"]
    async with ScimConnector(scim_server.url, scim_server.token) as connector:
        return await connector.get_user(remote_id)


async def test_custom_mappings_and_the_create_only_policy(org, scim_server):
    org.set_mapping("Wiki", "displayName", 'user.firstName + " " + user.lastName + " (" + user.costCenter + ")"')
    org.set_mapping("Wiki", "title", "String.toUpperCase(user.title)", on="create")
    preview = org.preview_payload("Wiki", org.login)
    assert preview["payload"]["displayName"] == "Ada Lovelace (42)" and preview["payload"]["title"] == "COUNTESS"
    assert preview["create_only"] == ["title"]
    assert (await sync(org)).ok
    user = await remote(org, scim_server)
    assert user.attributes["displayName"] == "Ada Lovelace (42)" and user.attributes["title"] == "COUNTESS"
    org.update_user(org.login, {"title": "Analyst", "costCenter": "7"})
    assert (await sync(org)).ok
    user = await remote(org, scim_server)
    assert user.attributes["displayName"] == "Ada Lovelace (7)"  # always: follows the profile
    assert user.attributes["title"] == "COUNTESS"  # on create only: left as it was


async def test_a_mapping_change_reprovisions_existing_accounts(org, scim_server):
    await sync(org)
    org.set_mapping("Wiki", "nickName", "String.toLowerCase(user.firstName)")
    assert org.user_view(org.login)["apps"][0]["account"]["queued"]
    assert (await sync(org)).ok
    assert (await remote(org, scim_server)).attributes["nickName"] == "ada"
    org.set_mapping("Wiki", "nickName", None)
    assert [m["target"] for m in org.mappings("Wiki")] == [m["target"] for m in DEFAULT_SCIM_MAPPINGS]


def test_mapping_validation_names_what_is_wrong(org):
    with pytest.raises(InvalidInput) as error:
        org.set_mapping("Wiki", "title", "user.title +")
    assert error.value.field == "EXPR" and "column" in str(error.value)
    with pytest.raises(InvalidInput, match="cannot be mapped"):
        org.set_mapping("Wiki", "externalId", "user.login")
    with pytest.raises(InvalidInput, match="not a SCIM attribute path"):
        org.set_mapping("Wiki", "bad path!", "user.login")
    with pytest.raises(InvalidInput, match="isMemberOfGroupName"):
        org.set_mapping("Wiki", "title", 'isMemberOfGroupName("x") ? "a" : "b"')


async def test_a_mapping_that_fails_on_one_user_fails_that_account_only(org):
    org.set_mapping("Wiki", "title", "String.substring(user.title, 0, 3) + " + " + ".join(["user.title"] * 70))
    org.update_user(org.login, {"title": "x" * 1000})  # the longest a value may be typed; the mapping makes 70,003
    report = await sync(org)
    [failure] = report.failed
    assert failure["action"] == "map" and "longer than 65,536 characters" in failure["error"]
    assert org.user_view(org.login)["apps"][0]["account"]["state"] == "failed"


def test_cli_mapping_contract(org, monkeypatch, capsys):
    monkeypatch.setenv("PROVTUI_STORE", str(org.location))
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")
    assert main(["app", "map", "Wiki", "displayName", 'user.lastName + ", " + user.firstName', "--on", "always"]) == 0
    capsys.readouterr()
    assert main(["app", "mappings", "Wiki", "--json"]) == 0
    mappings = json.loads(capsys.readouterr().out)
    assert {"target": "displayName", "expr": 'user.lastName + ", " + user.firstName', "on": "always"} in mappings
    assert main(["app", "preview", "Wiki", org.login, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["displayName"] == "Lovelace, Ada" and payload["userName"] == org.login
    assert payload["externalId"] == org.user_view(org.login)["id"] and "schemas" in payload
    assert main(["app", "map", "Wiki", "title", "user.title ==="]) == 2
    assert "column" in capsys.readouterr().err
