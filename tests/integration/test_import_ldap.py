"""LDAP / AD imports through the service and the CLI, against a real slapd: users, groups, incremental runs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import ldap3
import pytest

from provtui.clock import parse_iso, utc_now
from provtui.connectors.ldap import normalise_dn
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.model.schema import DIRTY, MEMBERS, SOURCE_ENTRIES, account_key, group_key
from provtui.service import Service
from provtui.service.imports import SourceFailed
from provtui.testing.slapd import (
    AD_TEST_USER_FILTER,
    SlapdProcess,
    ad_group_entry,
    ad_user_entry,
    generalized_time,
    group_entry,
    person_entry,
    slapd_available,
)
from tests.helpers.ldap import PASSWORD_ENV

pytestmark = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


def modify(slapd: SlapdProcess, dn: str, **replace: Any) -> None:
    with slapd.connection() as conn:
        assert conn.modify(
            dn, {name: [(ldap3.MODIFY_REPLACE, value if isinstance(value, list) else [value])] for name, value in replace.items()}
        )


def delete(slapd: SlapdProcess, *dns: str) -> None:
    with slapd.connection() as conn:
        for dn in dns:
            assert conn.delete(dn)


@pytest.fixture
def service(tmp_path, ldap_settings):  # ldap_settings: sets the password variable
    return Service.init(tmp_path / "store", actor="admin")


def add_source(service: Service, slapd: SlapdProcess, base: str, name: str = "corp", **options: Any) -> dict:
    return service.importer().add_ldap_source(
        name, uri=slapd.uri, bind_dn=slapd.reader_dn, password_env=PASSWORD_ENV, base_dn=base, **options
    )


def people(slapd: SlapdProcess, base: str, *uids: str) -> list[str]:
    entries = [person_entry(base, uid, uid.capitalize(), "Person", title="Engineer") for uid in uids]
    slapd.add_ldif(entries)
    return [dn for dn, _ in entries]


def counts(result: dict) -> tuple[int, ...]:
    return tuple(result[k] for k in ("created", "updated", "unchanged", "suspended", "deactivated", "reactivated"))


# --------------------------------------------------------------------------- OpenLDAP: users and groups


def test_full_import_creates_users_and_groups_with_their_members(service, slapd, ldap_ou):
    alice, bob, carol = people(slapd, ldap_ou, "alice", "bob", "carol")
    eng = f"cn=eng,{ldap_ou}"
    slapd.add_ldif(
        [group_entry(ldap_ou, "eng", [alice, bob, slapd.reader_dn], description="Engineers"), group_entry(ldap_ou, "all", [eng, carol])]
    )  # nested: eng's members are in all
    add_source(service, slapd, ldap_ou)
    importer = service.importer()

    seq = service.store.seq
    plan = importer.import_ldap("corp", dry_run=True)
    assert counts(plan) == (3, 0, 0, 0, 0, 0) and plan["mode"] == "full" and service.store.seq == seq
    assert {a["dn"] for a in plan["actions"]} == {alice, bob, carol}
    assert {(g["group"], g["action"], tuple(g["add"])) for g in plan["group_actions"]} == {
        ("eng", "create", ("alice", "bob")),
        ("all", "create", ("alice", "bob", "carol")),
    }

    result = importer.import_ldap("corp")
    assert counts(result) == (3, 0, 0, 0, 0, 0) and result["rejected"] == []
    assert result["groups"] == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "skipped": 0,
        "members_added": 5,
        "members_removed": 0,
    }
    assert service.store.seq == seq + 1  # users, groups, memberships and the mark: one transaction
    view = service.user_view("alice")
    assert view["state"] == "active" and view["source"] == "corp" and view["groups"] == ["all", "eng"]
    assert view["profile"]["title"] == "Engineer" and view["profile"]["email"] == "alice@example.org"
    assert service.user_view("carol")["groups"] == ["all"]
    [group] = [g for g in service.list_groups() if g["name"] == "eng"]
    assert group["kind"] == "source:corp" and group["description"] == "Engineers" and group["members"] == 2
    member = service.store.get(MEMBERS, next(iter(service.store.lookup(MEMBERS, "group", group["id"]))))
    assert member["via"] == "source:corp"

    again = importer.import_ldap("corp")  # incremental now: nothing changed
    assert again["mode"] == "incremental" and again["created"] == again["updated"] == again["deactivated"] == 0
    assert again["groups"]["unchanged"] == 2 and again["groups"]["members_added"] == 0
    source = service.list_sources()[0]
    assert source["kind"] == "ldap" and source["last_outcome"] == "applied" and source["last_mode"] == "incremental"
    with pytest.raises(InvalidInput, match="mastered by the source 'corp'"):
        service.update_user("alice", {"title": "Boss"})


def test_group_membership_changes_queue_the_accounts_and_pushed_groups(service, slapd, ldap_ou):
    alice, bob, carol = people(slapd, ldap_ou, "alice", "bob", "carol")
    slapd.add_ldif([group_entry(ldap_ou, "eng", [alice, bob])])
    add_source(service, slapd, ldap_ou)
    service.importer().import_ldap("corp")
    app = service.create_app("Wiki", scim_url="http://127.0.0.1:9/scim", token_env="WIKI_TOKEN", push_groups=True)
    service.assign("Wiki", group="eng")
    service.push_group("eng", "Wiki")
    with service.store.transaction() as tx:
        for key in list(service.store.all(DIRTY)):
            tx.delete(DIRTY, key)

    modify(slapd, f"cn=eng,{ldap_ou}", member=[alice, carol])  # bob leaves, carol joins
    result = service.importer().import_ldap("corp")
    assert result["groups"]["members_added"] == 1 and result["groups"]["members_removed"] == 1
    ids = {login: service.user_view(login)["id"] for login in ("alice", "bob", "carol")}
    eng = service.directory.group("eng")["id"]
    dirty = service.store.all(DIRTY)
    assert account_key(app["id"], ids["carol"]) in dirty and account_key(app["id"], ids["bob"]) in dirty
    assert account_key(app["id"], ids["alice"]) not in dirty  # untouched
    assert group_key(app["id"], eng) in dirty
    assert service.user_view("bob")["groups"] == [] and service.user_view("carol")["groups"] == ["eng"]
    events = [e for e in service.audit() if e["action"] == "group.source-sync"]
    assert events[-1]["after"] == {"source": "corp", "added": ["carol"], "removed": ["bob"]}


def test_a_group_gone_from_the_directory_loses_its_source_members(service, slapd, ldap_ou):
    alice, bob = people(slapd, ldap_ou, "alice", "bob")
    slapd.add_ldif([group_entry(ldap_ou, "eng", [alice, bob])])
    add_source(service, slapd, ldap_ou)
    service.importer().import_ldap("corp")
    with pytest.raises(InvalidInput, match="source:corp group"):  # its membership is the directory's, as in Okta
        service.add_members("eng", ["alice"])
    delete(slapd, f"cn=eng,{ldap_ou}")
    result = service.importer().import_ldap("corp")
    assert result["groups"]["removed"] == 1 and result["groups"]["members_removed"] == 2
    assert service.user_view("alice")["groups"] == [] and service.user_view("bob")["groups"] == []
    assert service.importer().import_ldap("corp")["groups"]["removed"] == 0  # once


def test_group_names_taken_by_provtui_groups_get_the_source_name(service, slapd, ldap_ou):
    (alice,) = people(slapd, ldap_ou, "alice")
    slapd.add_ldif([group_entry(ldap_ou, "eng", [alice]), group_entry(ldap_ou, "R&D team", [alice])])
    service.create_group("eng")
    add_source(service, slapd, ldap_ou)
    service.importer().import_ldap("corp")
    assert service.user_view("alice")["groups"] == ["R-D team", "eng (corp)"]
    assert service.directory.members_of(service.directory.group("eng")["id"]) == []


def test_incremental_runs_never_deactivate_a_full_run_does(service, slapd, ldap_ou):
    dns = people(slapd, ldap_ou, *(f"p{n}" for n in range(10)))
    add_source(service, slapd, ldap_ou)
    importer = service.importer()
    assert importer.import_ldap("corp")["created"] == 10
    delete(slapd, dns[0])
    incremental = importer.import_ldap("corp")
    assert incremental["mode"] == "incremental" and incremental["deactivated"] == 0
    assert service.user_view("p0")["state"] == "active"
    full = importer.import_ldap("corp", full=True)
    assert full["mode"] == "full" and full["deactivated"] == 1
    assert service.user_view("p0")["state"] == "deprovisioned"
    entries = {normalise_dn(doc["dn"]) for doc in service.store.all(SOURCE_ENTRIES).values()}
    assert normalise_dn(dns[1]) in entries and normalise_dn(dns[0]) not in entries  # the DN index follows


def test_the_safeguard_holds_a_mass_deactivation_and_keeps_the_mark(service, slapd, ldap_ou):
    dns = people(slapd, ldap_ou, *(f"p{n}" for n in range(10)))
    add_source(service, slapd, ldap_ou)
    importer = service.importer()
    importer.import_ldap("corp")
    before = service.store.get("sources", "corp")["ldap"]
    delete(slapd, *dns[:3])  # 30% of the active users
    seq = service.store.seq
    with pytest.raises(HeldForConfirmation) as held:
        importer.import_ldap("corp", full=True)
    assert "3 of 10" in str(held.value) and sorted(held.value.details["would_deactivate"]) == ["p0", "p1", "p2"]
    assert service.store.seq == seq + 1  # only the attempt is recorded
    source = service.store.get("sources", "corp")
    assert source["ldap"] == before and source["last_attempt"]["outcome"] == "held"
    assert service.user_view("p0")["state"] == "active"
    assert importer.import_ldap("corp", full=True, confirm=True)["deactivated"] == 3


def test_entries_that_cannot_be_imported_are_rejected_with_their_dn(service, slapd, ldap_ou):
    good, bad, twin1, twin2 = (
        person_entry(ldap_ou, "good", "Good", "One"),
        person_entry(ldap_ou, "bad", "Bad", "Mail", mail="not-an-email"),
        person_entry(ldap_ou, "twin", "Twin", "A"),
        person_entry(f"ou=sub,{ldap_ou}", "twin", "Twin", "B"),
    )
    slapd.add_ou("sub", ldap_ou)
    slapd.add_ldif([good, bad, twin1, twin2])
    add_source(service, slapd, ldap_ou)
    result = service.importer().import_ldap("corp")
    assert result["created"] == 1
    rejected = {r["dn"]: r for r in result["rejected"]}
    assert set(rejected) == {bad[0], twin1[0], twin2[0]}
    assert rejected[bad[0]]["column"] == "mail" and "not an email" in rejected[bad[0]]["reason"]
    assert rejected[twin1[0]]["column"] == "uid" and twin2[0] in rejected[twin1[0]]["reason"]
    assert all(isinstance(r["line"], int) for r in result["rejected"])


# --------------------------------------------------------------------------- AD-flavoured entries


def ad_people(ldap_ou: str, when: str = "20230101000000Z") -> list[tuple[str, dict]]:
    return [ad_user_entry(ldap_ou, sam, sam.capitalize(), "Doe", when_changed=when) for sam in ("jdoe", "mroe", "kim", "lee", "ann", "sam")]


def test_ad_incremental_run_imports_only_the_changed_entry_and_deactivates_a_disabled_user(service, slapd, ldap_ou):
    users = ad_people(ldap_ou)
    slapd.add_ldif([*users, ad_group_entry(ldap_ou, "Staff", [users[0][0], users[1][0]]), ad_group_entry(ldap_ou, "Nobody")])
    add_source(service, slapd, ldap_ou, flavor="ad", user_filter=AD_TEST_USER_FILTER)
    importer = service.importer()
    first = importer.import_ldap("corp")
    assert counts(first) == (6, 0, 0, 0, 0, 0) and first["groups"]["created"] == 2
    assert service.user_view("jdoe")["profile"]["email"] == "jdoe@example.org"  # userPrincipalName
    assert service.store.get("sources", "corp")["ldap"]["mark"] == "20230101000001.0Z"  # newest whenChanged + 1 s

    now = generalized_time()
    modify(slapd, users[0][0], userAccountControl="514", whenChanged=now)  # jdoe disabled (1 of 6: under the safeguard)
    slapd.add_ldif([ad_user_entry(ldap_ou, "newbie", "New", "Bie", when_changed=now)])
    second = importer.import_ldap("corp")
    assert second["mode"] == "incremental"
    assert counts(second) == (1, 0, 0, 0, 1, 0)  # only jdoe and newbie were read: nobody is "unchanged"
    assert service.user_view("jdoe")["state"] == "deprovisioned" and service.user_view("kim")["state"] == "active"
    assert service.user_view("newbie")["state"] == "active"
    assert service.user_view("mroe")["groups"] == ["Staff"]  # members resolved through the stored DN index
    assert second["groups"]["members_removed"] == 0

    modify(slapd, users[0][0], userAccountControl="512", whenChanged=generalized_time(utc_now() + timedelta(seconds=2)))
    assert importer.import_ldap("corp")["reactivated"] == 1
    assert service.user_view("jdoe")["state"] == "active"


def test_a_disabled_entry_never_imported_is_not_created(service, slapd, ldap_ou):
    slapd.add_ldif([ad_user_entry(ldap_ou, "gone", "Gone", "Away", disabled=True), *ad_people(ldap_ou)])
    add_source(service, slapd, ldap_ou, flavor="ad", user_filter=AD_TEST_USER_FILTER)
    result = service.importer().import_ldap("corp")
    assert result["created"] == 6 and result["unchanged"] == 1
    assert "gone" not in [u["login"] for u in service.list_users()[1]]


# --------------------------------------------------------------------------- scheduling and failures


def test_due_sources_follow_the_interval(service, slapd, ldap_ou):
    people(slapd, ldap_ou, "alice")
    add_source(service, slapd, ldap_ou, interval=15)
    add_source(service, slapd, ldap_ou, name="manual-only")
    importer = service.importer()
    assert importer.due_sources() == ["corp"]  # never run
    [outcome] = importer.run_due_imports()
    assert outcome["outcome"] == "applied" and outcome["result"]["created"] == 1
    ran = parse_iso(service.store.get("sources", "corp")["last_run"]["time"])
    assert importer.due_sources(ran + timedelta(minutes=14)) == []
    assert importer.due_sources(ran + timedelta(minutes=15)) == ["corp"]


def test_a_failed_run_names_the_problem_without_the_password(service, slapd, ldap_ou, monkeypatch):
    add_source(service, slapd, ldap_ou)
    monkeypatch.setenv(PASSWORD_ENV, "Wr0ng-S3cret-Value")
    with pytest.raises(SourceFailed) as failed:
        service.importer().import_ldap("corp")
    assert failed.value.exit_code == 2 and "invalidCredentials" in str(failed.value)
    assert "Wr0ng-S3cret-Value" not in str(failed.value)
    source = service.store.get("sources", "corp")
    assert source["last_attempt"]["outcome"] == "failed" and "ldap" not in source
    assert "Wr0ng-S3cret-Value" not in json.dumps(service.audit())


def test_settings_are_checked_when_the_source_is_added(service):
    importer = service.importer()
    with pytest.raises(InvalidInput, match="--uri"):
        importer.add_ldap_source("x", uri="http://nope", bind_dn="cn=a", password_env="V", base_dn="dc=x")
    with pytest.raises(InvalidInput, match="--password-env"):
        importer.add_ldap_source("x", uri="ldap://h", bind_dn="cn=a", password_env="not a name", base_dn="dc=x")
    with pytest.raises(InvalidInput, match="--interval"):
        importer.add_ldap_source("x", uri="ldap://h", bind_dn="cn=a", password_env="V", base_dn="dc=x", interval=0)
    with pytest.raises(InvalidInput, match="not an LDAP source setting"):
        importer.add_ldap_source("x", uri="ldap://h", bind_dn="cn=a", password_env="V", base_dn="dc=x", password="s")
    service.add_source("hr", "csv", {})
    with pytest.raises(InvalidInput, match="not an LDAP one"):
        importer.import_ldap("hr")


# --------------------------------------------------------------------------- the CLI


def test_cli_ldap_contract(ldap_settings, cli, slapd, ldap_ou, monkeypatch):
    alice, bob = people(slapd, ldap_ou, "alice", "bob")
    bad = person_entry(ldap_ou, "bad", "Bad", "Mail", mail="nope")
    slapd.add_ldif([bad, group_entry(ldap_ou, "eng", [alice])])
    code, out, err = cli(
        "source",
        "add-ldap",
        "corp",
        "--uri",
        slapd.uri,
        "--bind-dn",
        slapd.reader_dn,
        "--password-env",
        PASSWORD_ENV,
        "--base-dn",
        ldap_ou,
        "--group-base",
        ldap_ou,
        "--interval",
        "30",
    )
    assert code == 0, err
    with pytest.raises(SystemExit) as usage:
        cli("source", "add-ldap", "x", "--uri", slapd.uri, "--bind-dn", "a", "--password-env", "V", "--base-dn", "b", "--interval", "soon")
    assert usage.value.code == 2
    [source] = json.loads(cli("source", "list", "--json")[1])
    assert source["kind"] == "ldap" and source["interval"] == 30 and source["settings"]["password_env"] == PASSWORD_ENV

    code, out, err = cli("import", "ldap", "corp", "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["created"] == 2 and json.loads(cli("user", "list", "--json")[1]) == []
    assert {"created", "updated", "unchanged", "suspended", "deactivated", "reactivated", "rejected"} <= plan.keys()
    [rejected] = plan["rejected"]
    assert rejected["dn"] == bad[0] and rejected["column"] == "mail" and isinstance(rejected["line"], int)
    assert bad[0] in err

    code, out, err = cli("import", "ldap", "corp")
    assert code == 0 and "imported from corp (full read): 2 created" in out and "groups: 1 created" in out
    assert json.loads(cli("user", "show", "alice", "--json")[1])["groups"] == ["eng"]

    modify(slapd, f"cn=eng,{ldap_ou}", member=[bob])
    code, out, _ = cli("import", "ldap", "corp", "--json")
    assert code == 0 and json.loads(out)["groups"]["members_added"] == 1
    assert json.loads(cli("user", "show", "alice", "--json")[1])["groups"] == []
    assert json.loads(cli("user", "show", "bob", "--json")[1])["groups"] == ["eng"]

    delete(slapd, alice, bob)  # only the rejected entry is left: no valid person (issue #14)
    code, out, err = cli("import", "ldap", "corp", "--full", "--confirm", "--json")
    assert code == 2 and json.loads(out)["refused"] is True and "no valid person" in err
    code, out, err = cli("import", "ldap", "corp", "--full", "--allow-empty", "--json")
    assert code == 3 and json.loads(out)["held"] is True and "2 of 2" in err
    assert cli("import", "ldap", "corp", "--full", "--allow-empty", "--confirm")[0] == 0

    monkeypatch.setenv(PASSWORD_ENV, "Wr0ng-S3cret-Value")
    code, out, err = cli("import", "ldap", "corp")
    assert code == 2 and "invalidCredentials" in err and "Wr0ng-S3cret-Value" not in out + err
    monkeypatch.delenv(PASSWORD_ENV)
    code, _, err = cli("import", "ldap", "corp")
    assert code == 2 and f"{PASSWORD_ENV} is not set" in err
    assert cli("import", "ldap", "nope")[0] == 2


def test_cli_server_down_exits_1(ldap_settings, cli, slapd, ldap_ou):  # ldap_settings: sets the password variable
    from provtui.testing.scim_server import free_port

    assert (
        cli(
            "source",
            "add-ldap",
            "down",
            "--uri",
            f"ldap://127.0.0.1:{free_port()}",
            "--bind-dn",
            slapd.reader_dn,
            "--password-env",
            PASSWORD_ENV,
            "--base-dn",
            ldap_ou,
        )[0]
        == 0
    )
    code, _, err = cli("import", "ldap", "down")
    assert code == 1 and "could not connect" in err
