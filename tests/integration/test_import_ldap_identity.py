"""A directory person is their entry's immutable id (entryUUID here; objectGUID on AD: tests/integration/test_ad_*):
a rename or a move within the base is an update of the same person, and their login change reaches the apps as an
update of the same account, never a deprovision plus a create (issue #17, 1).  And a second full run with nothing
changed in the directory reports and writes nothing (issue #17, 3)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from provtui.model.schema import SOURCE_ENTRIES
from provtui.service import Service
from provtui.testing.slapd import SlapdProcess, group_entry, person_entry, slapd_available
from tests.helpers.ldap import PASSWORD_ENV, assert_full_runs_settle, quiet, sync

pytestmark = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")
TOKEN_ENV = "PROVTUI_TEST_IDENTITY_TOKEN"


@pytest.fixture
def service(tmp_path, ldap_settings):  # ldap_settings: sets the password variable
    return Service.init(tmp_path / "store", actor="admin")


def add_source(service: Service, slapd: SlapdProcess, base: str) -> None:
    service.add_ldap_source("corp", uri=slapd.uri, bind_dn=slapd.reader_dn, password_env=PASSWORD_ENV, base_dn=base)


def rename(slapd: SlapdProcess, dn: str, rdn: str, new_superior: str | None = None) -> str:
    with slapd.connection() as conn:
        assert conn.modify_dn(dn, rdn, delete_old_dn=True, new_superior=new_superior), conn.result
    return f"{rdn},{new_superior or dn.split(',', 1)[1]}"


async def test_a_renamed_entry_is_the_same_person_and_the_app_account_is_renamed(service, slapd, ldap_ou, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    old, new = f"ren{uuid.uuid4().hex[:6]}", f"ren{uuid.uuid4().hex[:6]}x"
    [(dn, _)] = entries = [person_entry(ldap_ou, old, "Ada", "Lovelace")]
    slapd.add_ldif([*entries, group_entry(ldap_ou, "eng", [dn])])
    add_source(service, slapd, ldap_ou)
    assert service.import_ldap("corp")["created"] == 1
    user_id = service.directory.user_id(old)
    service.create_app("Chat", scim_url=scim_server.url, token_env=TOKEN_ENV)
    service.assign("Chat", login=old)
    assert (await sync(service)).done == 1
    remote_id = service.user_view(old)["apps"][0]["account"]["remote_id"]

    moved = slapd.add_ou("moved", ldap_ou)
    rename(slapd, dn, f"uid={new}", new_superior=moved)  # renamed and moved in one step; AD rewrites eng's member DN itself
    with slapd.connection() as conn:
        conn.modify(f"cn=eng,{ldap_ou}", {"member": [("MODIFY_REPLACE", [f"uid={new},{moved}"])]})
    plan = service.import_ldap("corp", dry_run=True)
    assert (plan["created"], plan["updated"], plan["deactivated"]) == (0, 1, 0)
    result = service.import_ldap("corp")
    assert (result["created"], result["updated"], result["deactivated"]) == (0, 1, 0)
    assert service.directory.user_id(new) == user_id and service.user_view(new)["groups"] == ["eng"]
    with pytest.raises(Exception, match="no user"):
        service.user_view(old)
    entries_now = [d for d in service.store.all(SOURCE_ENTRIES).values() if d["source"] == "corp"]
    assert [d["login"] for d in entries_now] == [new]  # the old DN is gone from what the source last saw

    report = await sync(service)
    assert report.failed == [] and report.done == 1
    account = service.user_view(new)["apps"][0]["account"]
    assert account["remote_id"] == remote_id and account["state"] == "active"
    response = httpx.get(f"{scim_server.url}/Users/{remote_id}", headers={"Authorization": f"Bearer {scim_server.token}"})
    assert response.json()["userName"] == new and response.json()["active"] is True
    history = [e["action"] for e in service.user_history(new)]
    assert history.count("user.import") == 2 and "app.assign" in history  # the history follows the person through the rename

    for _ in range(2):
        again = service.import_ldap("corp", full=True)
        assert quiet(again), again


def test_a_second_full_run_with_nothing_changed_reports_and_writes_nothing(service, slapd, ldap_ou):
    people = [person_entry(ldap_ou, f"q{i}{uuid.uuid4().hex[:4]}", "Q", f"P{i}") for i in range(3)]
    disabled = slapd.add_ou("disabled", ldap_ou)
    gone = person_entry(disabled, f"qd{uuid.uuid4().hex[:4]}", "Gone", "Before")  # disabled before their first import
    slapd.add_ldif([*people, gone, group_entry(ldap_ou, "all", [dn for dn, _ in people] + [gone[0]])])
    service.add_ldap_source(
        "corp", uri=slapd.uri, bind_dn=slapd.reader_dn, password_env=PASSWORD_ENV, base_dn=ldap_ou, disabled_bases=[disabled]
    )
    first = service.import_ldap("corp", full=True)
    assert first["created"] == 3
    assert_full_runs_settle(service, "corp")


def test_an_expired_account_is_a_person_who_left_and_one_whose_expiry_passes_is_caught_by_the_next_run(
    service, slapd, ldap_ou, monkeypatch
):
    from datetime import UTC, datetime, timedelta

    import provtui.service.imports.ldap as ldap_imports

    today = (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
    shadow = ["inetOrgPerson", "shadowAccount"]
    gone, soon, never = (f"{p}{uuid.uuid4().hex[:5]}" for p in ("exp", "soon", "nev"))
    slapd.add_ldif(
        [
            person_entry(ldap_ou, gone, "Gone", "Past", objectClass=shadow, shadowExpire=str(today - 3)),
            person_entry(ldap_ou, soon, "Soon", "Tomorrow", objectClass=shadow, shadowExpire=str(today + 1)),
            person_entry(ldap_ou, never, "Never", "Expires", objectClass=shadow, shadowExpire="-1"),
        ]
    )
    add_source(service, slapd, ldap_ou)
    first = service.import_ldap("corp")
    assert first["created"] == 2  # the expired one was never anyone here: not created, as a disabled entry is not
    assert {service.user_view(login)["state"] for login in (soon, never)} == {"active"}
    with slapd.connection() as conn:  # their expiry is extended: they come back, as a re-enabled account does
        conn.modify(f"uid={gone},{ldap_ou}", {"shadowExpire": [("MODIFY_REPLACE", [str(today + 30)])]})
    assert service.import_ldap("corp")["created"] == 1

    later = datetime.now(UTC) + timedelta(days=2)  # tomorrow came: no timestamp changed, the incremental run goes full
    monkeypatch.setattr(ldap_imports, "utc_now", lambda: later)
    result = service.import_ldap("corp", full=False, confirm=True)  # 1 of 3: above the safeguard
    assert result["mode"] == "full" and result["deactivated"] == 1
    assert service.user_view(soon)["state"] == "deprovisioned" and service.user_view(never)["state"] == "active"
    assert service.import_ldap("corp", full=False)["mode"] == "incremental"  # settled
