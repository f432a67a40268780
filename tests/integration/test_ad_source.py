"""Active Directory as a source, against a real Samba AD DC (issue #17): a person is their objectGUID through
renames and moves (1), primary groups are memberships and builtin groups stay out (2), full runs settle (3),
expired accounts are people who left (4), LDAPS and STARTTLS trust the directory's own CA (5)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from provtui.domain.errors import SourceFailed
from provtui.service import Service
from provtui.testing.samba import SambaDC
from tests.helpers.ldap import add_ad_source, assert_full_runs_settle, quiet

PASSWORD_ENV = "PROVTUI_TEST_AD_SOURCE_PW"


@pytest.fixture
def service(tmp_path: Path, samba_dc: SambaDC, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv(PASSWORD_ENV, samba_dc.admin_password)
    return Service.init(tmp_path / "store", actor="admin")


def add_source(service: Service, dc: SambaDC, base: str, name: str = "ad", **options) -> None:
    add_ad_source(service, dc, base, password_env=PASSWORD_ENV, name=name, **options)


def sam(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def test_a_renamed_and_moved_ad_account_is_the_same_person(service, samba_dc, ad_ou):
    old, new = sam("user"), sam("user")
    dn, guid = samba_dc.add_user(ad_ou, old, "Sam", "Smith", password="Pa55-word-Ok")
    add_source(service, samba_dc, ad_ou)
    assert service.import_ldap("ad")["created"] == 1
    user_id = service.directory.user_id(old)

    moved = samba_dc.add_ou("moved", ad_ou)
    renamed = samba_dc.rename(dn, "CN=Sam Smith-Jones", parent=moved)
    samba_dc.modify(renamed, {"sAMAccountName": new})
    result = service.import_ldap("ad")
    assert (result["created"], result["updated"], result["deactivated"]) == (0, 1, 0), result
    assert service.directory.user_id(new) == user_id
    full = service.import_ldap("ad", full=True)  # the old login is not a person who left
    assert quiet(full), full
    assert service.user_view(new)["state"] == "active"
    entries = [d for d in service.store.all("source_entries").values() if d["source"] == "ad"]
    assert [(d["login"], d["uuid"]) for d in entries] == [(new, guid)]


def test_primary_groups_are_memberships_and_builtin_groups_stay_out(service, samba_dc, ad_ou):
    ada, bob = sam("ada"), sam("bob")
    ada_dn, _ = samba_dc.add_user(ad_ou, ada, "Ada", "Primary", password="Pa55-word-Ok")
    bob_dn, _ = samba_dc.add_user(ad_ou, bob, "Bob", "Member", password="Pa55-word-Ok")
    contractors = samba_dc.add_group(ad_ou, sam("contractors"), [ada_dn, bob_dn])
    with samba_dc.connection() as conn:
        conn.search(contractors, "(objectClass=*)", "BASE", attributes=["objectSid"])
        rid = int.from_bytes(conn.response[0]["raw_attributes"]["objectSid"][0][-4:], "little")
    samba_dc.modify(ada_dn, {"primaryGroupID": str(rid)})  # AD now lists ada in Contractors' member no more
    try:
        _primary_groups(service, samba_dc, ad_ou, ada, bob, ada_dn, bob_dn, contractors)
    finally:
        samba_dc.modify(ada_dn, {"primaryGroupID": "513"})  # else the OU cannot be deleted: AD keeps a primary group


def _primary_groups(service, samba_dc, ad_ou, ada, bob, ada_dn, bob_dn, contractors):
    with samba_dc.connection() as conn:
        conn.search(contractors, "(objectClass=*)", "BASE", attributes=["member"])
        assert [m.lower() for m in conn.response[0]["attributes"]["member"]] == [bob_dn.lower()]

    add_source(service, samba_dc, ad_ou, group_base=samba_dc.base_dn)  # every group of the domain is in reach
    result = service.import_ldap("ad")
    assert result["created"] == 2
    groups = {g["name"]: g for g in service.list_groups() if g["kind"] == "source:ad"}
    group = contractors.split(",")[0][3:]
    assert set(groups) == {group}, sorted(groups)  # not one of the 42 builtin groups
    assert service.user_view(ada)["groups"] == [group] and service.user_view(bob)["groups"] == [group]
    again = service.import_ldap("ad", full=True)
    assert quiet(again), again

    service.update_ldap_source("ad", group_base=samba_dc.users_dn, group_filter="(cn=Domain Users)")  # chosen by name
    service.import_ldap("ad")
    assert "Domain Users" in service.user_view(bob)["groups"]  # every user's primary group, named in no member list
    assert "Domain Users" in service.user_view(ada)["groups"]  # AD made her a listed member when her primary group changed


def test_expired_and_disabled_accounts_are_people_who_left_and_full_runs_settle(service, samba_dc, ad_ou):
    from datetime import UTC, datetime, timedelta

    def ticks(when: datetime) -> str:
        return str(int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10_000_000)

    now = datetime.now(UTC)
    stays, expired, later, disabled = sam("stay"), sam("gone"), sam("later"), sam("off")
    samba_dc.add_user(ad_ou, stays, "Stay", "Here", password="Pa55-word-Ok", accountExpires="9223372036854775807")
    gone_dn, _ = samba_dc.add_user(ad_ou, expired, "Gone", "Past", password="Pa55-word-Ok", accountExpires=ticks(now - timedelta(days=2)))
    samba_dc.add_user(ad_ou, later, "Later", "Soon", password="Pa55-word-Ok", accountExpires=ticks(now + timedelta(days=30)))
    off_dn, _ = samba_dc.add_user(ad_ou, disabled, "Off", "Before", disabled=True)
    samba_dc.add_group(ad_ou, sam("all"), [gone_dn, off_dn])
    add_source(service, samba_dc, ad_ou)

    first = service.import_ldap("ad")
    assert first["created"] == 2  # neither the expired nor the disabled account was ever anyone here
    assert {service.user_view(login)["state"] for login in (stays, later)} == {"active"}
    assert_full_runs_settle(service, "ad")

    samba_dc.modify(gone_dn, {"accountExpires": ticks(now + timedelta(days=90))})  # extended: they are back
    assert service.import_ldap("ad")["created"] == 1
    samba_dc.modify(gone_dn, {"accountExpires": ticks(now - timedelta(minutes=5))})  # and now it ended
    result = service.import_ldap("ad", confirm=True)
    assert result["deactivated"] == 1 and service.user_view(expired)["state"] == "deprovisioned"


def test_ldaps_and_starttls_trust_the_directorys_ca_and_say_how_when_they_do_not(service, samba_dc, ad_ou):
    person = sam("tls")
    samba_dc.add_user(ad_ou, person, "Tee", "Ls", password="Pa55-word-Ok")
    service.add_ldap_source(
        "untrusted", uri=samba_dc.ldaps_uri, bind_dn=samba_dc.admin_dn, password_env=PASSWORD_ENV, base_dn=ad_ou, flavor="ad"
    )
    with pytest.raises(SourceFailed, match="--ca-file") as failed:
        service.import_ldap("untrusted")
    assert failed.value.exit_code == 2  # a certificate that does not verify will not fix itself
    add_source(service, samba_dc, ad_ou, name="starttls")
    service.update_ldap_source("starttls", uri=samba_dc.ldap_uri, tls="starttls", password_env=PASSWORD_ENV)
    assert service.import_ldap("starttls")["created"] == 1
