"""Active Directory as a target, against a real Samba AD DC (issue #17, 6-8 and 10): names that cannot collide,
sAMAccountName within 20 characters and unique across the domain, accounts created disabled, given a password,
then enabled; no account enabled without a password; each clash says what clashes and where."""

from __future__ import annotations

import uuid
from pathlib import Path

import ldap3
import pytest

from provtui.domain.errors import InvalidInput
from provtui.service import Service
from provtui.testing.samba import SambaDC
from tests.helpers.ldap import sync

PASSWORD_ENV = "PROVTUI_TEST_AD_TARGET_PW"


@pytest.fixture
def service(tmp_path: Path, samba_dc: SambaDC, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv(PASSWORD_ENV, samba_dc.admin_password)
    return Service.init(tmp_path / "store", actor="admin")


def ad_app(service: Service, dc: SambaDC, base: str, *, uri: str | None = None, **options) -> None:
    ldap = {"uri": uri or dc.ldaps_uri, "bind_dn": dc.admin_dn, "password_env": PASSWORD_ENV, "base_dn": base, "flavor": "ad"}
    service.create_app("AD", ldap={**ldap, "ca_certificates": Path(dc.ca_file).read_text(), **options})


def hire(service: Service, login: str, first: str = "Sam", last: str = "Smith") -> str:
    service.create_user(login, f"{login.split('@')[0]}@example.org", first, last, activate=True)
    service.assign("AD", login=login)
    return login


def entry(dc: SambaDC, remote_id: str) -> tuple[str, dict]:
    with dc.connection() as conn:
        conn.search(dc.base_dn, f"(objectGUID={ldap3.utils.conv.escape_bytes(uuid.UUID(remote_id).bytes_le)})", attributes=["*"])
        [found] = [r for r in conn.response if r["type"] == "searchResEntry"]
        values = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in found["attributes"].items()}
        return found["dn"], {k: int(v) if k in ("userAccountControl", "pwdLastSet") else v for k, v in values.items()}


def remote_id(service: Service, login: str) -> str:
    return service.user_view(login)["apps"][0]["account"]["remote_id"]


async def test_two_sam_smiths_and_a_long_login_get_names_that_cannot_collide(service, samba_dc, ad_ou):
    ad_app(service, samba_dc, ad_ou)
    first, second = hire(service, f"ssmith{uuid.uuid4().hex[:4]}"), hire(service, f"ssmith{uuid.uuid4().hex[:4]}")
    long = hire(service, f"alexandria.ocasio.{uuid.uuid4().hex[:8]}@example.org", "Alexandria", "O" * 60)  # a display name of 71
    report = await sync(service)
    assert report.failed == [] and report.done == 3
    names = {login: entry(samba_dc, remote_id(service, login)) for login in (first, second, long)}
    for login in (first, second):
        dn, attributes = names[login]
        assert dn.lower().startswith(f"cn={login},") and attributes["sAMAccountName"] == login
        assert attributes["displayName"] == "Sam Smith"  # the display name stays what people see
    dn, attributes = names[long]
    assert len(attributes["sAMAccountName"]) <= 20 and attributes["sAMAccountName"] == long.split("@")[0][:20]
    assert dn.lower().startswith(f"cn={attributes['sAMAccountName'].lower()},")


async def test_accounts_are_created_disabled_given_a_password_then_enabled(service, samba_dc, ad_ou):
    ad_app(service, samba_dc, ad_ou)
    login = hire(service, f"pw{uuid.uuid4().hex[:6]}")
    report = await sync(service)
    assert report.failed == [] and report.done == 1
    _, attributes = entry(samba_dc, remote_id(service, login))
    assert attributes["userAccountControl"] == 0x200  # enabled, "password not required" cleared
    assert attributes["pwdLastSet"] > 0  # it has a password
    calls = [e["after"] for e in service.audit() if e["action"] == "downstream.call"]
    assert [c["method"] for c in calls if c["method"] in ("ADD", "MODIFY")][:3] == ["ADD", "MODIFY", "MODIFY"]  # add, password, enable

    service.change_state(login, "deactivate")
    assert (await sync(service)).ok
    assert entry(samba_dc, remote_id(service, login))[1]["userAccountControl"] == 0x202  # disabled, not deleted
    service.change_state(login, "reactivate")
    assert (await sync(service)).ok
    assert entry(samba_dc, remote_id(service, login))[1]["userAccountControl"] == 0x200


async def test_an_existing_passwordless_account_is_linked_but_enabled_only_with_a_password(service, samba_dc, ad_ou):
    login = f"link{uuid.uuid4().hex[:6]}"
    dn, guid = samba_dc.add_user(ad_ou, login, "Link", "Me", disabled=True)  # no password
    ad_app(service, samba_dc, ad_ou)
    hire(service, login, "Link", "Me")
    report = await sync(service)
    assert report.failed == [] and remote_id(service, login) == guid
    _, attributes = entry(samba_dc, guid)
    assert attributes["userAccountControl"] == 0x200 and attributes["pwdLastSet"] > 0  # a password first


async def test_a_login_taken_elsewhere_in_the_domain_says_by_what_and_where(service, samba_dc, ad_ou):
    other = samba_dc.add_ou("elsewhere", ad_ou)
    app_ou = samba_dc.add_ou("app", ad_ou)
    taken_by_group, taken_by_user = f"grp{uuid.uuid4().hex[:6]}", f"usr{uuid.uuid4().hex[:6]}"
    group_dn = samba_dc.add_group(other, taken_by_group)
    user_dn, _ = samba_dc.add_user(other, taken_by_user, "Other", "Person", password="Pa55-word-Ok")
    ad_app(service, samba_dc, app_ou)
    hire(service, taken_by_group)
    hire(service, taken_by_user)
    report = await sync(service)
    errors = {f["user"]: f["error"] for f in report.failed}
    assert f"taken in the domain by {group_dn} (a group)" in errors[taken_by_group]
    assert f"taken in the domain by {user_dn} (a user)" in errors[taken_by_user]


async def test_a_renamed_person_is_renamed_in_ad_not_replaced(service, samba_dc, ad_ou):
    ad_app(service, samba_dc, ad_ou)
    login, number = f"ren{uuid.uuid4().hex[:6]}", str(uuid.uuid4().int)[:8]
    service.add_source("hr", "csv", {})

    def export(name: str) -> bytes:
        return (
            f"Employee ID,Username,First Name,Last Name,Work Email,Status\n{number},{name},Sam,Smith,{login}@example.org,Active\n".encode()
        )

    service.import_csv(export(login), source="hr")
    service.assign("AD", login=login)
    assert (await sync(service)).done == 1
    guid = remote_id(service, login)
    renamed = f"{login}x"
    assert service.import_csv(export(renamed), source="hr")["updated"] == 1  # HR renamed them: the same employee
    report = await sync(service)
    assert report.failed == [] and remote_id(service, renamed) == guid
    dn, attributes = entry(samba_dc, guid)
    assert attributes["sAMAccountName"] == renamed and dn.lower().startswith(f"cn={renamed},")  # renamed, not replaced
    with samba_dc.connection() as conn:
        conn.search(ad_ou, "(objectClass=user)", attributes=["cn"])
        assert len([r for r in conn.response if r["type"] == "searchResEntry"]) == 1


def test_an_ad_app_over_plain_ldap_to_another_host_is_refused(service):
    ldap = {"uri": "ldap://dc1.example.test", "bind_dn": "CN=x,DC=example,DC=test", "password_env": PASSWORD_ENV}
    with pytest.raises(InvalidInput, match="would send passwords in clear"):
        service.create_app("AD", ldap={**ldap, "base_dn": "OU=x,DC=example,DC=test", "flavor": "ad"})
    service.create_app("AD", ldap={**ldap, "base_dn": "OU=x,DC=example,DC=test", "flavor": "ad", "tls": "starttls"})


async def test_over_plain_ldap_on_this_host_no_account_is_enabled_without_a_password(service, samba_dc, ad_ou):
    ad_app(service, samba_dc, ad_ou, uri=samba_dc.ldap_uri, tls="none")
    hire(service, f"plain{uuid.uuid4().hex[:6]}")
    report = await sync(service)
    assert [f["status"] for f in report.failed] == [400] and "only over TLS" in report.failed[0]["error"]
    with samba_dc.connection() as conn:
        conn.search(ad_ou, "(objectClass=user)", attributes=["cn"])
        assert [r for r in conn.response if r["type"] == "searchResEntry"] == []  # refused before anything was added


async def test_a_pushed_group_whose_name_a_user_holds_elsewhere_says_so(service, samba_dc, ad_ou):
    other, app_ou = samba_dc.add_ou("elsewhere", ad_ou), samba_dc.add_ou("app", ad_ou)
    name = f"team{uuid.uuid4().hex[:6]}"
    user_dn, _ = samba_dc.add_user(other, name, "Team", "Account", password="Pa55-word-Ok")  # a user holds the group's name
    ad_app(service, samba_dc, app_ou, groups_dn=app_ou)
    service.update_app("AD", push_groups=True)
    member = hire(service, f"mem{uuid.uuid4().hex[:6]}")
    service.create_group(name, "a team")
    service.add_members(name, [member])
    service.push_group(name, "AD")
    report = await sync(service)
    failure = next(f for f in report.failed if name in f["error"])
    assert f"sAMAccountName {name!r} is taken in the domain by {user_dn} (a user)" in failure["error"]
