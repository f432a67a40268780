"""The Samba AD DC fixture itself: TLS that verifies, binds, objectGUID, groups, primaryGroupID, the helpers, clean stop.

Run with the plugin: ``pytest -p tests.integration.samba_fixtures tests/integration/test_samba_dc.py``.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import ldap3
import pytest
from ldap3.core.exceptions import LDAPInvalidCredentialsResult, LDAPNoSuchObjectResult, LDAPSocketOpenError

from provtui.testing.samba import DOMAIN_USERS_RID, UF_ACCOUNTDISABLE, SambaDC, free_loopback_ip, guid_string, ldap_ports_free
from tests.integration.samba_fixtures import require_samba, worker_series

PASSWORD = "Corr3ct-Horse-42"


def _read(connection: ldap3.Connection, dn: str, *attributes: str) -> dict[str, list]:
    connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
    return connection.response[0]["raw_attributes"]


def _text(values: list[bytes]) -> list[str]:
    return [value.decode() for value in values]


def test_ldaps_verifies_the_dc_certificate_against_its_ca_only(samba_dc: SambaDC) -> None:
    with samba_dc.connection() as connection:
        assert connection.bound and connection.server.ssl
        assert _text(_read(connection, "", "defaultNamingContext")["defaultNamingContext"]) == [samba_dc.base_dn]
    # The system's trust store does not know the throwaway CA: the same LDAPS bind must then fail.
    server = ldap3.Server(samba_dc.ldaps_uri, use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_REQUIRED), connect_timeout=5)
    with pytest.raises(LDAPSocketOpenError):
        ldap3.Connection(server, samba_dc.admin_dn, samba_dc.admin_password, auto_bind=True, raise_exceptions=True)


def test_starttls_and_plain_simple_binds_on_ldap(samba_dc: SambaDC) -> None:
    server = ldap3.Server(samba_dc.ldap_uri, tls=samba_dc.tls(), get_info=ldap3.NONE, connect_timeout=5)
    with ldap3.Connection(
        server, samba_dc.admin_dn, samba_dc.admin_password, auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND, raise_exceptions=True
    ) as connection:
        assert connection.tls_started and connection.bound
    with ldap3.Connection(server, samba_dc.admin_dn, samba_dc.admin_password, auto_bind=True, raise_exceptions=True) as connection:
        assert connection.bound and not connection.tls_started  # "ldap server require strong auth = no"


def test_a_user_with_a_password_binds_as_itself_and_has_an_object_guid(samba_dc: SambaDC, ad_ou: str) -> None:
    dn, guid = samba_dc.add_user(ad_ou, "jdoe", "John", "Doe", password=PASSWORD, mail="jdoe@example.test")
    assert dn == f"CN=John Doe,{ad_ou}"
    with samba_dc.connection() as admin:
        entry = _read(admin, dn, "objectGUID", "userPrincipalName", "userAccountControl", "mail")
    assert guid_string(entry["objectGUID"][0]) == guid and len(guid) == 36
    assert _text(entry["userPrincipalName"]) == ["jdoe@example.test"] and _text(entry["mail"]) == ["jdoe@example.test"]
    assert not int(entry["userAccountControl"][0]) & UF_ACCOUNTDISABLE
    for user in (dn, "jdoe@example.test", "EXAMPLE\\jdoe"):
        with samba_dc.connection(user, PASSWORD) as connection:
            assert connection.bound
    with pytest.raises(LDAPInvalidCredentialsResult):
        samba_dc.connection(dn, PASSWORD + "x")


def test_a_group_lists_its_members_and_they_list_it(samba_dc: SambaDC, ad_ou: str) -> None:
    ann, _ = samba_dc.add_user(ad_ou, "ann", "Ann", "Lee")
    bob, _ = samba_dc.add_user(ad_ou, "bob", "Bob", "Ray", disabled=True)
    group = samba_dc.add_group(ad_ou, "Engineers", [ann, bob], description="all of them")
    with samba_dc.connection() as admin:
        assert set(_text(_read(admin, group, "member")["member"])) == {ann, bob}
        assert _text(_read(admin, ann, "memberOf")["memberOf"]) == [group]
        assert int(_read(admin, bob, "userAccountControl")["userAccountControl"][0]) & UF_ACCOUNTDISABLE


def test_a_new_user_is_in_domain_users_by_primary_group_id_not_by_member(samba_dc: SambaDC, ad_ou: str) -> None:
    """The fact the product relies on: membership of a user's primary group shows in no ``member`` value."""
    dn, _ = samba_dc.add_user(ad_ou, "carol", "Carol", "King", password=PASSWORD)
    domain_users = f"CN=Domain Users,{samba_dc.users_dn}"
    with samba_dc.connection() as admin:
        user = _read(admin, dn, "primaryGroupID", "memberOf")
        group = _read(admin, domain_users, "primaryGroupToken", "member")
        assert int(user["primaryGroupID"][0]) == DOMAIN_USERS_RID == int(group["primaryGroupToken"][0])
        assert dn not in _text(group["member"]) and domain_users not in _text(user["memberOf"])
        admin.search(samba_dc.base_dn, f"(&(objectClass=group)(member={dn}))", attributes=["cn"])
        assert [found["dn"] for found in admin.response if found["type"] == "searchResEntry"] == []


def test_rename_modify_and_delete_a_subtree(samba_dc: SambaDC, ad_ou: str) -> None:
    inner = samba_dc.add_ou("inner", ad_ou)
    dn, guid = samba_dc.add_user(inner, "dave", "Dave", "Old")
    moved = samba_dc.rename(dn, "CN=Dave New", parent=ad_ou)
    assert moved == f"CN=Dave New,{ad_ou}"
    samba_dc.modify(moved, {"sn": "New", "description": ["renamed"], "telephoneNumber": [(ldap3.MODIFY_ADD, ["123"])]})
    with samba_dc.connection() as admin:
        entry = _read(admin, moved, "objectGUID", "sn", "description", "telephoneNumber")
        assert guid_string(entry["objectGUID"][0]) == guid  # a rename keeps the identity
        assert (_text(entry["sn"]), _text(entry["description"]), _text(entry["telephoneNumber"])) == (["New"], ["renamed"], ["123"])
        samba_dc.add_group(inner, "Inner group")
        samba_dc.delete(inner)
        with pytest.raises(LDAPNoSuchObjectResult):
            _read(admin, inner, "ou")


def _processes_using(directory: Path) -> list[int]:
    """The processes with a file open in ``directory`` (samba rewrites its command line, so that cannot tell)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd).startswith(f"{directory}/") for fd in (proc / "fd").iterdir()):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return found


def test_stop_leaves_no_samba_process_nor_directory(samba_dc: SambaDC) -> None:
    """A second DC (on this worker's next free address) with an admin password of our choosing, then stopped."""
    require_samba()
    first, step = worker_series()
    dc = SambaDC(free_loopback_ip(first, step), admin_password="Ch0sen-Admin-Pass")
    with dc:
        assert dc.ip != samba_dc.ip and dc.pid is not None
        pid, directory = dc.pid, Path(dc.directory or "")
        assert _processes_using(directory) == [pid]
        with dc.connection() as connection:
            assert connection.bound
    assert not dc.running and not directory.exists() and _processes_using(directory) == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert ldap_ports_free(dc.ip)
