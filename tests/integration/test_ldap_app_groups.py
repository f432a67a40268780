"""An LDAP/AD app's own groups imported as app groups (issue #9): `provtui import app-groups` on an
LDAP app, against a real slapd, the same way as for a SCIM app (tests/integration/test_app_groups.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from types import SimpleNamespace

import ldap3
import pytest

from provtui.cli.main import main
from provtui.connectors.ldap import LdapAppConnector, group_name, resolve_members
from provtui.connectors.scim import ScimConnector
from provtui.domain.rules import RuleState
from provtui.service import Service
from provtui.testing.scim_server import ScimServerProcess, free_port
from provtui.testing.slapd import SlapdProcess, ad_group_entry, ad_user_entry, group_entry, person_entry
from tests.helpers.ldap import AD_TEST_OPTIONS, entries, ldap_app_target, make_ldap_service, sync

SCIM_TOKEN_ENV = "PROVTUI_TEST_LDAP_APP_GROUPS_TOKEN"


@pytest.fixture
def groups_dn(slapd: SlapdProcess, tree: SimpleNamespace) -> str:
    """Where the app's groups live (its groups_dn), beside its people."""
    return slapd.add_ou("groups", tree.base)


@pytest.fixture
def org(tmp_path, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str) -> Service:
    """An OpenLDAP app "Directory" with group push on, and ada, bob and cy provisioned into it."""
    service = make_ldap_service(tmp_path / "store", ldap_app_target(slapd, tree, groups_dn=groups_dn), push_groups=True)
    for login, first in (("ada", "Ada"), ("bob", "Bob"), ("cy", "Cy")):
        service.hire(login, first, "Tester")
    assert asyncio.run(sync(service)).ok
    return service


def person(subtree: SimpleNamespace, login: str) -> str:
    return f"uid={login},{subtree.people}"


def group_names(service: Service) -> dict[str, tuple[str, int]]:
    return {g["name"]: (g["kind"], g["members"]) for g in service.list_groups()}


def audited(service: Service, action: str) -> list[dict]:
    return [e for e in service.audit() if e["action"] == action]


def test_import_dry_run_and_reimport_follow_the_directory(org: Service, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str) -> None:
    outside = slapd.add_ou("elsewhere", tree.base)
    slapd.add_ldif([person_entry(outside, "ada", "Ada", "Elsewhere")])  # same uid, outside the app's bases
    slapd.add_ldif(
        [
            group_entry(
                groups_dn,
                "wiki-admins",
                [person(tree, "ada"), person(tree, "bob"), f"uid=ghost,{tree.people}", f"uid=ada,{outside}", groups_dn],
            ),
            (
                "cn=readers," + groups_dn,
                {"objectClass": ["groupOfUniqueNames"], "cn": "readers", "uniqueMember": [person(tree, "cy") + "#'0101'B"]},
            ),
        ]
    )
    plan = org.import_app_groups("Directory", dry_run=True)
    assert plan["dry_run"] and plan["created"] == 2 and plan["members_added"] == 3
    assert sorted((g["group"], g["add"]) for g in plan["groups"]) == [("readers", ["cy"]), ("wiki-admins", ["ada", "bob"])]
    assert org.list_groups() == [] and audited(org, "import.app-groups") == []  # nothing written

    result = org.import_app_groups("Directory")
    assert {k: result[k] for k in ("app", "created", "members_added", "skipped")} == {
        "app": "Directory",
        "created": 2,
        "members_added": 3,
        "skipped": 0,
    }
    assert group_names(org) == {"wiki-admins": ("app:Directory", 2), "readers": ("app:Directory", 1)}
    assert org.user_view("ada")["groups"] == ["wiki-admins"]
    assert len(audited(org, "import.app-groups")) == 1
    assert org.import_app_groups("Directory")["unchanged"] == 2

    with slapd.connection() as conn:  # the directory changes: bob leaves, cy joins, readers is deleted
        conn.modify(
            f"cn=wiki-admins,{groups_dn}",
            {"member": [(ldap3.MODIFY_DELETE, [person(tree, "bob")]), (ldap3.MODIFY_ADD, [person(tree, "cy")])]},
        )
        conn.delete(f"cn=readers,{groups_dn}")
    again = org.import_app_groups("Directory")
    assert {k: again[k] for k in ("updated", "removed", "members_added", "members_removed")} == {
        "updated": 1,
        "removed": 1,
        "members_added": 1,
        "members_removed": 2,
    }
    assert org.user_view("bob")["groups"] == [] and org.user_view("cy")["groups"] == ["wiki-admins"]
    assert group_names(org)["readers"] == ("app:Directory", 0)  # kept, emptied: as for a SCIM app
    assert org.import_app_groups("Directory")["unchanged"] == 1


def test_groups_provtui_pushed_are_not_imported(org: Service, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str) -> None:
    org.create_group("eng")
    org.add_members("eng", ["ada"])
    org.push_group("eng", "Directory")
    assert asyncio.run(sync(org)).ok
    assert list(entries(slapd, groups_dn, "(objectClass=groupOfNames)")) == [f"cn=eng,{groups_dn}"]
    slapd.add_ldif([group_entry(groups_dn, "ops", [person(tree, "bob")])])
    assert org.import_app_groups("Directory")["created"] == 1
    assert group_names(org) == {"eng": ("provtui", 1), "ops": ("app:Directory", 1)}
    with slapd.connection() as conn:  # an admin drops provtui's marker: the engine's record still knows the group
        conn.modify(f"cn=eng,{groups_dn}", {"description": [(ldap3.MODIFY_REPLACE, ["engineering"])]})
    assert org.import_app_groups("Directory")["unchanged"] == 1
    assert group_names(org) == {"eng": ("provtui", 1), "ops": ("app:Directory", 1)}


def test_a_rule_on_an_imported_group_grants_a_group_and_its_app(
    org: Service, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str
) -> None:
    console = SimpleNamespace(people=slapd.add_ou("console", tree.base), disabled=slapd.add_ou("console-off", tree.base))
    org.create_app("Console", ldap=ldap_app_target(slapd, console))
    slapd.add_ldif([group_entry(groups_dn, "ops", [person(tree, "ada"), person(tree, "bob")])])
    assert org.import_app_groups("Directory")["members_added"] == 2
    org.create_group("console-users")
    org.assign("Console", group="console-users")
    org.rules().create("from-ops", groups=["console-users"], expr='isMemberOfGroupName("ops")', exclude=[])
    org.rules().change("from-ops", state=RuleState.ACTIVE)
    assert org.user_view("ada")["groups"] == ["console-users", "ops"] and org.user_view("cy")["groups"] == []
    access = next(a for a in org.user_view("bob")["apps"] if a["app"] == "Console")
    assert access["entitled"] and access["via"] == ["group:console-users"]
    assert asyncio.run(sync(org)).ok
    assert sorted(entries(slapd, console.people)) == [f"uid=ada,{console.people}", f"uid=bob,{console.people}"]
    accounts = {login: next(a for a in org.user_view(login)["apps"] if a["app"] == "Console")["account"] for login in ("ada", "bob")}
    assert all(a["state"] == "active" and a["remote_id"] for a in accounts.values())


def test_huge_and_malformed_groups_give_clean_results(org: Service, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str) -> None:
    dangling = [f"uid=gone{i:05d},{tree.people}" for i in range(4000)]  # slapd keeps DNs of entries that never were
    slapd.add_ldif(
        [group_entry(groups_dn, "everyone", [*dangling, person(tree, "cy")]), group_entry(groups_dn, "nobody-here", [dangling[0]])]
    )
    result = org.import_app_groups("Directory")
    assert result["created"] == 2 and result["members_added"] == 1
    assert group_names(org) == {"everyone": ("app:Directory", 1), "nobody-here": ("app:Directory", 0)}
    # what slapd cannot hold: entries without a cn, member values that are not DNs
    assert group_name("cn=Doe\\, J.,ou=g,dc=x", {"cn": [b"Doe, J."]}) == "Doe, J."
    assert group_name("cn=x,ou=g,dc=x", {"cn": [b"other", b"x"]}) == "x"
    assert group_name("ou=team,dc=x", {}) == "team"
    assert resolve_members(["not a dn", "", "=,", "UID=A,dc=x"], {"uid=a,dc=x": "uuid-a"})[0] == ("uuid-a",)


def test_cli_output_matches_the_scim_case(
    org: Service, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    slapd.add_ldif([group_entry(groups_dn, "editors", [person(tree, "cy")])])
    monkeypatch.setenv("PROVTUI_STORE", str(org.location))
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "admin")

    def cli_json(*argv: str) -> dict | list:
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    with ScimServerProcess(token="ldap-app-groups-token") as server:
        monkeypatch.setenv(SCIM_TOKEN_ENV, server.token)
        org.create_app("Wiki", scim_url=server.url, token_env=SCIM_TOKEN_ENV)

        async def scim_group() -> None:
            async with ScimConnector(server.url, server.token) as connector:
                await connector.create_group("wiki-editors", None, {uuid.uuid4().hex})

        asyncio.run(scim_group())
        scim_plan = cli_json("import", "app-groups", "Wiki", "--dry-run")
        scim_result = cli_json("import", "app-groups", "Wiki")
    ldap_plan = cli_json("import", "app-groups", "Directory", "--dry-run")
    ldap_result = cli_json("import", "app-groups", "Directory")
    assert set(ldap_plan) == set(scim_plan) and set(ldap_result) == set(scim_result)
    assert [set(g) for g in ldap_plan["groups"]] == [set(g) for g in scim_plan["groups"]]
    assert ldap_result["created"] == 1 and ldap_result["members_added"] == 1
    kinds = {g["name"]: g["kind"] for g in cli_json("group", "list")}
    assert kinds == {"editors": "app:Directory", "wiki-editors": "app:Wiki"}
    org.create_app("Offline", ldap=ldap_app_target(slapd, tree, uri=f"ldap://127.0.0.1:{free_port()}"))
    assert main(["import", "app-groups", "Offline"]) == 1  # unreachable: a downstream failure
    assert "reading Offline's groups failed: could not connect" in capsys.readouterr().err


def test_active_directory_groups(tmp_path, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str) -> None:
    guids = {login: uuid.uuid4().bytes_le for login in ("gbush", "nsimone")}
    slapd.add_ldif(
        [
            ad_user_entry(tree.people, "gbush", "Grace", "Bush", object_guid=guids["gbush"]),
            ad_user_entry(tree.people, "nsimone", "Nina", "Simone", object_guid=guids["nsimone"]),
        ]
    )
    service = make_ldap_service(
        tmp_path / "store", ldap_app_target(slapd, tree, flavor="ad", disable_method=None, groups_dn=groups_dn, **AD_TEST_OPTIONS)
    )
    service.hire("gbush", "Grace", "Bush")
    service.hire("nsimone", "Nina", "Simone")
    assert asyncio.run(sync(service)).ok  # linked by sAMAccountName: remote ids are the objectGUIDs
    sales_guid = uuid.uuid4().bytes_le
    slapd.add_ldif(
        [
            ad_group_entry(
                groups_dn, "Sales, EMEA", [f"cn=Grace Bush,{tree.people}", f"cn=Nina Simone,{tree.people}"], objectGUID=sales_guid
            ),
            ad_group_entry(groups_dn, "Empty", objectGUID=uuid.uuid4().bytes_le),
        ]
    )
    result = service.import_app_groups("Directory")
    assert result["created"] == 2 and result["members_added"] == 2
    assert group_names(service) == {"Sales- EMEA": ("app:Directory", 2), "Empty": ("app:Directory", 0)}

    async def listed() -> dict[str, set[str]]:
        async with LdapAppConnector(service.directory.app("Directory")["ldap"]) as connector:  # no group push needed
            return {g.display_name: g.members async for g in connector.list_groups()}

    members = asyncio.run(listed())
    assert members == {"Sales, EMEA": {str(uuid.UUID(bytes_le=g)) for g in guids.values()}, "Empty": set()}


def test_a_group_named_as_people_name_it_is_pushed_with_its_dn_escaped(
    org: Service, slapd: SlapdProcess, tree: SimpleNamespace, groups_dn: str
) -> None:
    """#18: "R&D, Ingeniería" (a comma and an accent) is a group name; its LDAP group is cn=R&D\\, Ingeniería."""
    org.create_group("R&D, Ingeniería")
    org.add_members("R&D, Ingeniería", ["ada", "bob"])
    org.push_group("R&D, Ingeniería", "Directory")
    assert asyncio.run(sync(org)).ok
    with slapd.connection() as conn:
        conn.search(groups_dn, "(objectClass=groupOfNames)", attributes=["cn", "member"])
        [entry] = conn.entries
    assert entry.cn.value == "R&D, Ingeniería"
    assert sorted(entry.member.values) == [person(tree, "ada"), person(tree, "bob")]
