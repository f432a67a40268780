"""App groups: an app's own groups imported, kept apart, and usable by rules to grant provtui groups."""

import asyncio
import json
import uuid

import pytest

from provtui.cli.main import main
from provtui.compose import build_engine
from provtui.connectors.scim import ScimConnector
from provtui.domain.errors import InvalidInput
from provtui.domain.rules import RuleState
from provtui.service import Service
from provtui.testing.scim_server import ScimServerProcess

TOKEN_ENV = "PROVTUI_TEST_APPGROUPS_TOKEN"


@pytest.fixture
def server():
    with ScimServerProcess(token="app-groups-token") as server:  # its own: listing reads every group there
        yield server


@pytest.fixture
def org(tmp_path, server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, server.token)
    service = Service.init(tmp_path / "store", actor="admin")
    service.create_app("Wiki", scim_url=server.url, token_env=TOKEN_ENV)
    service.create_app("Admin Console", scim_url="http://127.0.0.1:9/v2", token_env=TOKEN_ENV)
    for login in ("ada", "bob", "cy"):
        service.create_user(login, f"{login}@example.com", login.title(), "T", activate=True)
        service.assign("Wiki", login=login)
    assert asyncio.run(build_engine(service, notify=False).run_until_idle()).ok
    return service


async def make_remote_group(server, service, name, logins):
    ids = {service.user_view(login)["apps"][0]["account"]["remote_id"] for login in logins}
    async with ScimConnector(server.url, server.token) as connector:
        return await connector.create_group(name, None, ids | {uuid.uuid4().hex})  # plus an account nobody links


def test_app_groups_are_imported_kept_apart_and_feed_rules(org, server):
    remote = asyncio.run(make_remote_group(server, org, "wiki-admins", ["ada", "bob"]))
    plan = org.import_app_groups("Wiki", dry_run=True)
    assert plan["created"] == 1 and plan["members_added"] == 2 and org.list_groups() == []
    result = org.import_app_groups("Wiki")
    assert result["created"] == 1 and result["members_added"] == 2
    [group] = org.list_groups()
    assert group["name"] == "wiki-admins" and group["kind"] == "app:Wiki" and group["members"] == 2
    with pytest.raises(InvalidInput, match="app:Wiki group"):
        org.add_members("wiki-admins", ["cy"])
    # a rule places the app group's members in a provtui group, which carries its own apps
    org.create_group("console-users")
    org.assign("Admin Console", group="console-users")
    org.rules().create("from-wiki", groups=["console-users"], expr='isMemberOfGroupName("wiki-admins")', exclude=[])
    org.rules().change("from-wiki", state=RuleState.ACTIVE)
    assert org.user_view("ada")["groups"] == ["console-users", "wiki-admins"]
    console = next(a for a in org.user_view("ada")["apps"] if a["app"] == "Admin Console")
    assert console["entitled"] and console["via"] == ["group:console-users"]

    # membership changes in the app flow through on the next import
    async def drop_bob():
        async with ScimConnector(server.url, server.token) as connector:
            bob = next(a for a in org.user_view("bob")["apps"] if a["app"] == "Wiki")["account"]["remote_id"]
            await connector.update_group(
                remote.id, display_name=None, add=set(), remove={bob}, full_name="wiki-admins", external_id=None, full_members=set()
            )

    asyncio.run(drop_bob())
    assert org.import_app_groups("Wiki")["members_removed"] == 1
    assert org.user_view("bob")["groups"] == []  # left the app group, so the rule took console-users away too
    assert org.import_app_groups("Wiki")["unchanged"] == 1


def test_groups_provtui_pushed_are_not_app_groups(org, server):
    org.update_app("Wiki", push_groups=True)
    org.create_group("eng")
    org.add_members("eng", ["ada"])
    org.push_group("eng", "Wiki")
    assert asyncio.run(build_engine(org, notify=False).run_until_idle()).ok
    assert org.import_app_groups("Wiki")["created"] == 0


def test_cli_import_app_groups_and_group_kinds(org, server, monkeypatch, capsys):
    asyncio.run(make_remote_group(server, org, "editors", ["cy"]))
    monkeypatch.setenv("PROVTUI_STORE", str(org.location))
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")
    org.create_group("eng")
    assert main(["import", "app-groups", "Wiki", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 1
    assert main(["import", "app-groups", "Wiki"]) == 0
    capsys.readouterr()
    assert main(["group", "list", "--json"]) == 0
    kinds = {g["name"]: g["kind"] for g in json.loads(capsys.readouterr().out)}
    assert kinds == {"editors": "app:Wiki", "eng": "provtui"}
    assert main(["import", "app-groups", "Admin Console"]) == 1  # unreachable: a downstream failure
