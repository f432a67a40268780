"""The slapd test server itself: start, load, search, paging past the size limit, stop, failures."""

from __future__ import annotations

import socket

import ldap3
import pytest

from provtui.testing.slapd import (
    AD_TEST_USER_FILTER,
    SlapdError,
    SlapdProcess,
    ad_group_entry,
    ad_user_entry,
    generate_people,
    group_entry,
    person_entry,
    slapd_available,
    to_ldif,
)

pytestmark = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


def test_base_entries_and_ous_exist(slapd: SlapdProcess) -> None:
    assert slapd.running and slapd.uri.startswith("ldap://127.0.0.1:")
    with slapd.connection() as conn:
        conn.search(slapd.base_dn, "(objectClass=organizationalUnit)", search_scope=ldap3.LEVEL, attributes=["ou"])
        assert {str(e.ou) for e in conn.entries} >= {"people", "groups", "disabled"}
    with slapd.connection(as_reader=True) as conn:  # the reader binds and reads
        assert conn.search(slapd.people_dn, "(objectClass=*)", search_scope=ldap3.BASE)


def test_add_entries_then_search_them(slapd: SlapdProcess, ldap_ou: str) -> None:
    alice_dn, alice = person_entry(ldap_ou, "alice", "Alice", "Liddell", title="Engineer", password="pw-1")
    slapd.add_ldif([(alice_dn, alice), group_entry(ldap_ou, "readers", [alice_dn])])
    with slapd.connection(as_reader=True) as conn:
        conn.search(ldap_ou, "(uid=alice)", attributes=["cn", "title", "userPassword", "modifyTimestamp", "entryUUID"])
        (entry,) = conn.entries
        assert entry.entry_dn == alice_dn and str(entry.title) == "Engineer"
        assert str(entry.modifyTimestamp.value).startswith("20")  # maintained by slapd
        assert entry.entryUUID.value
        assert not entry.userPassword.values  # the ACL hides passwords from the reader
        conn.search(ldap_ou, "(member=uid=alice," + ldap_ou + ")", attributes=["cn"])
        assert [str(e.cn) for e in conn.entries] == ["readers"]
    # ...and the password works for the user's own bind.
    server = ldap3.Server(slapd.uri, get_info=ldap3.NONE)
    assert ldap3.Connection(server, alice_dn, "pw-1").bind()


def test_ldif_text_and_awkward_values_round_trip(slapd: SlapdProcess, ldap_ou: str) -> None:
    odd = {"cn": " Zoë 李 ", "sn": ":colon", "title": "<angle", "description": "ends with space "}
    dn, attributes = person_entry(ldap_ou, "odd", "Zoë", "李", **{k: v for k, v in odd.items() if k != "cn"})
    attributes["cn"] = odd["cn"]
    slapd.add_ldif(to_ldif([(dn, attributes)]))
    slapd.add_ldif(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: after\n")  # changetype records work
    with slapd.connection() as conn:
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["cn", "sn", "description", "title"])
        entry = conn.entries[0]
        assert (str(entry.cn), str(entry.sn), str(entry.description), str(entry.title)) == (
            " Zoë 李 ",
            ":colon",
            "ends with space ",
            "after",
        )


def test_ldapadd_failure_names_the_problem(slapd: SlapdProcess, ldap_ou: str) -> None:
    with pytest.raises(SlapdError, match=r"(?s)ldapadd failed.*uid=bad.*requires attribute 'sn'"):
        slapd.add_ldif([(f"uid=bad,{ldap_ou}", {"objectClass": ["inetOrgPerson"], "uid": "bad"})])  # no cn/sn


def test_paged_search_reads_past_the_size_limit(slapd: SlapdProcess, ldap_ou: str) -> None:
    slapd.add_ldif(generate_people(ldap_ou, 1200))
    with slapd.connection(as_reader=True) as conn:
        conn.raise_exceptions = False
        conn.search(ldap_ou, "(objectClass=inetOrgPerson)", attributes=["uid"])
        assert conn.result["description"] == "sizeLimitExceeded" and len(conn.entries) == 500
        entries = list(
            conn.extend.standard.paged_search(ldap_ou, "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=500, generator=True)
        )
    assert len({e["dn"] for e in entries if e["type"] == "searchResEntry"}) == 1200


def test_ad_schema_supports_ad_filters(slapd: SlapdProcess, ldap_ou: str) -> None:
    on_dn, on = ad_user_entry(ldap_ou, "jdoe", "John", "Doe")
    off_dn, off = ad_user_entry(ldap_ou, "mroe", "Mary", "Roe", disabled=True)
    slapd.add_ldif([(on_dn, on), (off_dn, off), ad_group_entry(ldap_ou, "Empty"), ad_group_entry(ldap_ou, "Staff", [on_dn])])
    with slapd.connection() as conn:
        disabled = "(userAccountControl:1.2.840.113556.1.4.803:=2)"  # AD's bitwise AND rule, as slapd has it
        conn.search(ldap_ou, f"(&{AD_TEST_USER_FILTER}{disabled})", attributes=["sAMAccountName"])
        assert [str(e.sAMAccountName) for e in conn.entries] == ["mroe"]
        conn.search(ldap_ou, "(whenChanged>=20000101000000Z)", attributes=["cn"])
        assert len(conn.entries) == 4
        conn.search(ldap_ou, "(objectClass=group)", attributes=["cn", "member"])
        assert sorted(str(e.cn) for e in conn.entries) == ["Empty", "Staff"]


def test_start_stop_and_cleanup() -> None:
    server = SlapdProcess(base_dn="o=acme", ad_schema=False, ous=("staff",))
    with server:
        pid, directory = server.pid, server.directory
        assert directory is not None and (directory / "slapd.conf").exists()
        with server.connection() as conn:
            assert conn.search("ou=staff,o=acme", "(objectClass=*)", search_scope=ldap3.BASE)
    assert not server.running and not directory.exists()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    server.stop()  # twice is fine


def test_a_taken_port_is_replaced_unless_fixed() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        server = SlapdProcess(ad_schema=False)
        server.port = taken  # as if another process took the port between probe and bind
        with server:
            assert server.port != taken
        with pytest.raises(SlapdError, match=r"(?s)exited with code \d+; its output:\n.*Address already in use"):
            SlapdProcess(port=taken, ad_schema=False).start()


def test_a_bad_configuration_fails_with_slapds_reason() -> None:
    class Broken(SlapdProcess):
        def _config(self) -> str:
            return super()._config().replace("moduleload back_mdb", "")

    with pytest.raises(SlapdError, match="(?s)exited with code.*mdb"):
        Broken(ad_schema=False).start()
