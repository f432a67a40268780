"""The LDAP connector against a real slapd (OpenLDAP and AD-flavoured entries) and its pure mapping."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import ldap3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provtui.connectors.ldap import (
    AD_ATTRIBUTE_MAP,
    OPENLDAP_ATTRIBUTE_MAP,
    LdapConflict,
    LdapError,
    LdapSettings,
    LdapUser,
    LdapWriter,
    ad_password_value,
    dn_within,
    entry_to_profile,
    format_generalized_time,
    format_uuid,
    is_disabled,
    next_mark,
    normalise_dn,
    parse_generalized_time,
    parse_range_option,
    read_groups,
    read_users,
    resolve_members,
)
from provtui.connectors.ldap import entries as ldap_entries
from provtui.connectors.ldap import source as ldap_source
from provtui.testing.scim_server import free_port
from provtui.testing.slapd import (
    AD_TEST_USER_FILTER,
    SlapdProcess,
    ad_group_entry,
    ad_user_entry,
    generate_people,
    group_entry,
    person_entry,
    slapd_available,
)
from tests.helpers.ldap import PASSWORD_ENV

Settings = Callable[..., LdapSettings]
needs_slapd = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


def by_login(users: list[LdapUser]) -> dict[str | None, LdapUser]:
    return {user.login: user for user in users}


def modify(slapd: SlapdProcess, dn: str, **replace: Any) -> None:
    with slapd.connection() as conn:
        conn.modify(dn, {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in replace.items()})


# --------------------------------------------------------------------------- reading OpenLDAP


@needs_slapd
def test_read_users_with_the_default_openldap_map(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    people, disabled = slapd.add_ou("people", ldap_ou), slapd.add_ou("disabled", ldap_ou)
    boss_dn, boss = person_entry(people, "boss", "Big", "Boss", title="CEO", departmentNumber="Exec", displayName="The Boss")
    alice_dn, alice = person_entry(
        people, "alice", "Alice", "Liddell", ou="Engineering", manager=boss_dn, mail=["alice@example.org", "alice.liddell@example.org"]
    )
    bob_dn, bob = person_entry(disabled, "bob", "Bob", "Builder", manager=f"cn=ghost,{ldap_ou}")
    zoe_dn, zoe = person_entry(people, "zoe", "Zoë", "李")
    nouid_dn = f"cn=No Uid,{people}"
    nouid = {"objectClass": ["inetOrgPerson"], "cn": "No Uid", "sn": "Uid", "mail": "nouid@example.org"}
    slapd.add_ldif([(boss_dn, boss), (alice_dn, alice), (bob_dn, bob), (zoe_dn, zoe), (nouid_dn, nouid)])

    users, mark = read_users(ldap_settings(ldap_ou, disabled_bases=(disabled,)))

    found = by_login(users)
    assert set(found) == {"boss", "alice", "bob", "zoe", None}
    assert found["boss"].profile == {
        "login": "boss",
        "email": "boss@example.org",
        "firstName": "Big",
        "lastName": "Boss",
        "displayName": "The Boss",
        "title": "CEO",
        "department": "Exec",
    }
    assert found["alice"].profile == {
        "login": "alice",
        "email": "alice@example.org",
        "firstName": "Alice",
        "lastName": "Liddell",
        "displayName": "Alice Liddell",
        "department": "Engineering",
        "manager": "boss",
    }
    assert found["alice"].manager_dn == boss_dn and not found["alice"].disabled
    assert found["bob"].disabled and "manager" not in found["bob"].profile  # the ghost manager stays a DN
    assert found["bob"].manager_dn == f"cn=ghost,{ldap_ou}"
    assert found["zoe"].profile["firstName"] == "Zoë" and found["zoe"].profile["lastName"] == "李"
    assert found[None].dn == nouid_dn and found[None].profile["email"] == "nouid@example.org"
    assert all(uuid.UUID(user.uuid) for user in users)  # entryUUID
    newest = max(parse_generalized_time(u.modify_timestamp) for u in users if u.modify_timestamp)
    assert mark.endswith("Z") and parse_generalized_time(mark) <= newest + timedelta(seconds=1)


@needs_slapd
def test_paged_reads_return_every_entry_past_the_size_limit(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    slapd.add_ldif(generate_people(ldap_ou, 1200))
    users, _ = read_users(ldap_settings(ldap_ou, page_size=500))  # as the reader: limited to 500 per search
    assert len(users) == 1200 and len({u.login for u in users}) == 1200
    assert by_login(users)["user00042"].profile["department"] == "Finance"
    assert len(read_users(ldap_settings(ldap_ou, page_size=170))[0]) == 1200


@needs_slapd
def test_incremental_read_returns_only_what_changed(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    slapd.add_ldif(generate_people(ldap_ou, 5))
    time.sleep(1.1)  # modifyTimestamp has 1-second resolution: let the loaded entries' second pass
    settings_ = ldap_settings(ldap_ou, max_clock_skew=0)  # the server is this host: no skew
    users, mark = read_users(settings_)
    assert len(users) == 5

    modify(slapd, f"uid=user00002,{ldap_ou}", title="Changed")
    changed, mark2 = read_users(settings_, changed_since=mark)

    assert [(u.login, u.profile["title"]) for u in changed] == [("user00002", "Changed")]
    assert parse_generalized_time(mark2) >= parse_generalized_time(mark)
    again, _ = read_users(settings_, changed_since=mark2)
    assert {u.login for u in again} <= {"user00002"}  # at most the boundary second is read again


@needs_slapd
def test_a_change_in_the_same_second_as_a_read_is_not_lost(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    slapd.add_ldif(generate_people(ldap_ou, 3))
    settings_ = ldap_settings(ldap_ou, max_clock_skew=0)
    _, mark = read_users(settings_)
    modify(slapd, f"uid=user00001,{ldap_ou}", title="Right after the read")  # very likely the same second
    changed, _ = read_users(settings_, changed_since=mark)
    assert "user00001" in {u.login for u in changed}
    assert by_login(changed)["user00001"].profile["title"] == "Right after the read"


@needs_slapd
def test_the_default_clock_skew_margin_reads_recent_changes_again(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    slapd.add_ldif(generate_people(ldap_ou, 3))
    _, mark = read_users(ldap_settings(ldap_ou))  # max_clock_skew=5: the last 5 s are not trusted yet
    again, _ = read_users(ldap_settings(ldap_ou), changed_since=mark)
    assert len(again) == 3  # duplicates, never losses


@needs_slapd
def test_a_user_moved_into_the_disabled_ou_shows_up_disabled(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    people, disabled = slapd.add_ou("people", ldap_ou), slapd.add_ou("disabled", ldap_ou)
    slapd.add_ldif(generate_people(people, 2))
    time.sleep(1.1)
    settings_ = ldap_settings(ldap_ou, disabled_bases=(disabled,), max_clock_skew=0)
    _, mark = read_users(settings_)
    with slapd.connection() as conn:
        assert conn.modify_dn(f"uid=user00001,{people}", "uid=user00001", new_superior=disabled)
    (moved,), _ = read_users(settings_, changed_since=mark)  # a rename updates modifyTimestamp
    assert moved.login == "user00001" and moved.disabled and dn_within(moved.dn, disabled)


@needs_slapd
def test_read_groups_resolves_members(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    people, groups = slapd.add_ou("people", ldap_ou), slapd.add_ou("groups", ldap_ou)
    entries = list(generate_people(people, 3))
    dns = [dn for dn, _ in entries]
    eng_dn = f"cn=eng,{groups}"
    slapd.add_ldif(
        [
            *entries,
            group_entry(groups, "eng", [dns[0], dns[1].upper(), slapd.reader_dn]),
            group_entry(groups, "all", [eng_dn, dns[2]], description="Everyone"),
        ]
    )
    settings_ = ldap_settings(ldap_ou, group_base=groups)
    users, _ = read_users(settings_)

    plain = {g.name: g for g in read_groups(settings_)}
    # slapd stores DN values with its own attribute-type spelling: compare normalised.
    assert [normalise_dn(dn) for dn in plain["eng"].member_dns] == [normalise_dn(dn) for dn in (dns[0], dns[1], slapd.reader_dn)]
    assert plain["eng"].members == ()
    resolved = {g.name: g for g in read_groups(settings_, users=users)}
    assert resolved["eng"].members == ("user00000", "user00001")  # DNs compare case-insensitively
    assert [normalise_dn(dn) for dn in resolved["eng"].unresolved] == [normalise_dn(slapd.reader_dn)]
    assert resolved["all"].members == ("user00002",)
    assert [normalise_dn(dn) for dn in resolved["all"].subgroups] == [normalise_dn(eng_dn)]
    assert resolved["all"].description == "Everyone" and uuid.UUID(resolved["all"].uuid or "")


# --------------------------------------------------------------------------- reading AD-flavoured entries


@needs_slapd
def test_read_users_ad_flavour(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    guid = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
    jdoe_dn, jdoe = ad_user_entry(
        ldap_ou,
        "jdoe",
        "John",
        "Doe",
        mail="john.doe@corp.example",
        department="Sales",
        title="Rep",
        object_guid=guid.bytes_le,
        when_changed="20200101000000Z",
    )
    mroe_dn, mroe = ad_user_entry(ldap_ou, "mroe", "Mary", "Roe", user_account_control=514, manager=jdoe_dn, when_changed="20230615120000Z")
    kim_dn, kim = ad_user_entry(
        ldap_ou,
        "kim",
        "Kim",
        "Lee",
        user_account_control=0x10200,  # never expires
        when_changed="20230615120001Z",
    )
    slapd.add_ldif(
        [
            (jdoe_dn, jdoe),
            (mroe_dn, mroe),
            (kim_dn, kim),
            ad_group_entry(ldap_ou, "Staff", [jdoe_dn, mroe_dn]),
            ad_group_entry(ldap_ou, "Nobody"),
        ]
    )
    settings_ = ldap_settings(ldap_ou, flavor="ad", user_filter=AD_TEST_USER_FILTER)

    users, mark = read_users(settings_)

    found = by_login(users)
    assert found["jdoe"].profile == {
        "login": "jdoe",
        "email": "john.doe@corp.example",
        "firstName": "John",
        "lastName": "Doe",
        "displayName": "John Doe",
        "title": "Rep",
        "department": "Sales",
    }
    assert found["jdoe"].uuid == str(guid) and not found["jdoe"].disabled
    assert found["mroe"].disabled and found["mroe"].profile["manager"] == "jdoe"
    assert found["mroe"].profile["email"] == "mroe@example.org"  # no mail: userPrincipalName
    assert not found["kim"].disabled
    assert mark == "20230615120002.0Z"  # AD's form; the newest whenChanged + 1 s (older than now - skew)

    changed, _ = read_users(settings_, changed_since="20230101000000.0Z")
    assert {u.login for u in changed} == {"mroe", "kim"}
    groups = {g.name: g for g in read_groups(settings_, users=users)}
    assert groups["Staff"].members == ("jdoe", "mroe") and groups["Nobody"].member_dns == ()


@needs_slapd
def test_incremental_ad_read_resolves_a_manager_outside_the_changes(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    boss_dn, boss = ad_user_entry(ldap_ou, "boss", "Big", "Boss", when_changed="20200101000000Z")
    emp_dn, emp = ad_user_entry(ldap_ou, "emp", "Em", "Ployee", manager=boss_dn, when_changed="20240101000000Z")
    slapd.add_ldif([(boss_dn, boss), (emp_dn, emp)])
    settings_ = ldap_settings(ldap_ou, flavor="ad", user_filter=AD_TEST_USER_FILTER)
    (changed,), _ = read_users(settings_, changed_since="20230101000000Z")
    assert changed.login == "emp" and changed.profile["manager"] == "boss"


# --------------------------------------------------------------------------- failures


@needs_slapd
def test_wrong_password_is_not_retryable_and_not_echoed(
    slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "Wr0ng-S3cret-Value")
    with pytest.raises(LdapError) as caught:
        read_users(ldap_settings(ldap_ou))
    error = caught.value
    assert not error.retryable and error.result_code == 49
    assert "invalidCredentials" in str(error) and slapd.reader_dn in str(error)
    for text in (str(error), repr(error)):
        assert "Wr0ng-S3cret-Value" not in text and slapd.reader_password not in text


def test_a_missing_or_empty_password_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    settings_ = LdapSettings("ldap://127.0.0.1:1", "cn=x,dc=example,dc=org", "PROVTUI_NO_SUCH_VAR", "dc=example,dc=org")
    monkeypatch.delenv("PROVTUI_NO_SUCH_VAR", raising=False)
    with pytest.raises(LdapError, match="PROVTUI_NO_SUCH_VAR is not set") as caught:
        read_users(settings_)
    assert not caught.value.retryable
    monkeypatch.setenv("PROVTUI_NO_SUCH_VAR", "")  # an empty password would be an anonymous bind
    with pytest.raises(LdapError, match="PROVTUI_NO_SUCH_VAR is empty"):
        read_groups(settings_)


def test_server_down_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVTUI_DOWN_PW", "pw-down-123")
    settings_ = LdapSettings(f"ldap://127.0.0.1:{free_port()}", "cn=x,dc=example,dc=org", "PROVTUI_DOWN_PW", "dc=example,dc=org", timeout=2)
    with pytest.raises(LdapError) as caught:
        read_users(settings_)
    assert caught.value.retryable and "pw-down-123" not in str(caught.value)


def test_a_server_that_never_answers_times_out_retryably(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVTUI_HANG_PW", "pw-hang-123")
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings_ = LdapSettings(
            f"ldap://127.0.0.1:{silent.getsockname()[1]}", "cn=x,dc=example,dc=org", "PROVTUI_HANG_PW", "dc=example,dc=org", timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(LdapError) as caught:
            read_users(settings_)
    # A hang detector, not a speed check: without the timeout the read would never end.
    assert caught.value.retryable and time.monotonic() - started < 60


@needs_slapd
def test_a_server_stopped_between_reads_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    with SlapdProcess(ad_schema=False, ous=("people",)) as server:
        server.add_ldif(generate_people(server.people_dn, 2))
        monkeypatch.setenv("PROVTUI_STOP_PW", server.admin_password)
        settings_ = LdapSettings(server.uri, server.bind_dn, "PROVTUI_STOP_PW", server.base_dn, timeout=2)
        assert len(read_users(settings_)[0]) == 2
    with pytest.raises(LdapError) as caught:
        read_users(settings_)
    assert caught.value.retryable


@needs_slapd
@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [({"base_dn": "ou=missing,dc=example,dc=org"}, "noSuchObject"), ({"user_filter": "(objectClass=inetOrgPerson"}, "filter")],
)
def test_configuration_mistakes_are_not_retryable(ldap_settings: Settings, overrides: dict[str, Any], pattern: str) -> None:
    values = {"base_dn": "dc=example,dc=org", **overrides}
    with pytest.raises(LdapError, match=pattern) as caught:
        read_users(ldap_settings(**values))
    assert not caught.value.retryable


@needs_slapd
def test_a_malformed_mark_is_rejected_not_spliced_into_the_filter(ldap_ou: str, ldap_settings: Settings) -> None:
    with pytest.raises(LdapError, match="not an LDAP GeneralizedTime") as caught:
        read_users(ldap_settings(ldap_ou), changed_since="20240101000000Z)(uid=*")
    assert not caught.value.retryable


def test_settings_are_validated() -> None:
    base = {"uri": "ldap://h", "bind_dn": "cn=x", "password_env": "V", "base_dn": "dc=x"}
    for bad in (
        {"flavor": "novell"},
        {"uri": "http://h"},
        {"page_size": 0},
        {"timeout": 0},
        {"password_env": ""},
        {"attribute_map": {"email": "mail"}},
        {"attribute_map": {"login": []}},
    ):
        with pytest.raises(ValueError):
            LdapSettings(**{**base, **bad})
    ad = LdapSettings(**base, flavor="ad")
    assert ad.effective_user_filter == "(&(objectClass=user)(objectCategory=person))"
    assert ad.effective_attribute_map["login"] == ("sAMAccountName",) and ad.change_attribute == "whenChanged"
    assert LdapSettings(**base, user_filter="uid=*").effective_user_filter == "(uid=*)"


# --------------------------------------------------------------------------- pure functions


def test_generalized_time_forms() -> None:
    expected = datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_generalized_time("20240131235959Z") == expected
    assert parse_generalized_time("20240131235959.0Z") == expected
    assert parse_generalized_time("20240201005959+0100") == expected
    assert parse_generalized_time("202401312359Z") == expected.replace(second=0)
    assert parse_generalized_time("20240131235959.5Z") == expected + timedelta(milliseconds=500)
    assert format_generalized_time(expected) == "20240131235959Z"
    assert format_generalized_time(expected, "ad") == "20240131235959.0Z"
    for bad in ("", "2024", "20240131235959", "20240131235959Z)(x=*"):
        with pytest.raises(ValueError):
            parse_generalized_time(bad)


def test_next_mark() -> None:
    now = datetime(2024, 5, 1, 12, 0, 30, 400_000, tzinfo=UTC)
    old = datetime(2024, 5, 1, 11, 0, 0, tzinfo=UTC)
    assert next_mark(old, now, None, 5) == old + timedelta(seconds=1)  # settled: no re-read
    assert next_mark(now - timedelta(seconds=1), now, None, 5) == datetime(2024, 5, 1, 12, 0, 25, tzinfo=UTC)
    assert next_mark(None, now, None, 0) == now.replace(microsecond=0)
    later = now + timedelta(hours=1)  # a previous mark ahead of this read's cap is kept when nothing changed
    assert next_mark(None, now, later, 5) == later.replace(microsecond=0)


def test_uuid_range_dn_and_disabled_helpers() -> None:
    guid = uuid.UUID("6f3c2a1b-0000-4000-8000-00aabbccddee")
    assert format_uuid(guid.bytes_le) == str(guid) and format_uuid([]) == "[]" and format_uuid(None) is None
    assert parse_range_option("member;range=0-1499") == ("member", 0, 1499)
    assert parse_range_option("Member;Range=1500-*") == ("Member", 1500, None)
    assert parse_range_option("member") is None
    assert normalise_dn("UID=Alice, OU=People,dc=Example ,dc=org") == "uid=alice,ou=people,dc=example,dc=org"
    assert normalise_dn("not a dn") == "not a dn"
    assert dn_within("uid=a,ou=Disabled,dc=x", "ou=disabled,DC=x") and not dn_within("uid=a,ou=disabledx,dc=x", "ou=disabled,dc=x")
    assert is_disabled({"userAccountControl": [b"514"]}, "cn=a", "ad")
    assert not is_disabled({"userAccountControl": [b"512"]}, "cn=a", "ad")
    assert not is_disabled({"userAccountControl": [b"junk"]}, "cn=a", "ad")
    assert not is_disabled({"userAccountControl": [b"514"]}, "cn=a", "openldap")  # only AD reads the bit
    assert resolve_members(["UID=A,dc=x", "cn=g,dc=x", "cn=z,dc=x"], {"uid=a,dc=x": "a"}, ["CN=G,dc=x"]) == (
        ("a",),
        ("cn=g,dc=x",),
        ("cn=z,dc=x",),
    )


def test_ad_ranged_member_retrieval_follows_every_range() -> None:
    pages = {
        "member;range=1500-*": {"member;range=1500-2999": [f"cn=u{i}".encode() for i in range(1500, 3000)]},
        "member;range=3000-*": {"member;range=3000-*": [b"cn=u3000"]},
    }

    class FakeSession:
        def read_entry(self, dn: str, search_filter: str, attributes: list[str]) -> dict[str, list[bytes]]:
            return pages[attributes[0]]

    first = {"cn": [b"big"], "member;range=0-1499": [f"cn=u{i}".encode() for i in range(1500)]}
    values = ldap_source._member_values(FakeSession(), "cn=big", first)  # type: ignore[arg-type]
    assert values == [f"cn=u{i}" for i in range(3001)]


@needs_slapd
def test_the_session_follows_ranges_itself_not_ldap3(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    """ldap3's auto-range merged AD's later ranges into a plain ``member`` beside the first range's key, which
    _member_values then took for a first range again: with it off, a real connection hands back exactly what the
    server sent, the shape the test above feeds (issue #17, 9)."""
    from provtui.connectors.ldap.session import Session

    with Session(ldap_settings(ldap_ou)) as session:
        assert session._require().auto_range is False
    doubled = {"member;range=0-1": [b"cn=a", b"cn=b"], "member": [b"cn=a", b"cn=b", b"cn=c"]}  # ldap3's auto-range shape

    class NoMoreRanges:
        def read_entry(self, *args: object) -> dict:
            return {"member;range=2-*": [b"cn=c"]}

    assert ldap_source._member_values(NoMoreRanges(), "cn=g", doubled) == ["cn=a", "cn=b", "cn=c"]  # type: ignore[arg-type]


def test_entry_to_profile_rules() -> None:
    raw = {
        "UID": [b"jdoe"],
        "mail": ["", "  second@example.org "],
        "givenName": [b"\xff\xfeJo"],
        "sn": [],
        "cn": ["John Doe"],
        "departmentNumber": [None],
        "ou": ["Ops", "Other"],
    }
    assert entry_to_profile(raw) == {
        "login": "jdoe",
        "email": "second@example.org",
        "firstName": "\ufffd\ufffdJo",
        "displayName": "John Doe",
        "department": "Ops",
    }
    assert entry_to_profile({"sAMAccountName": ["x"], "userPrincipalName": ["x@corp"]}, flavor="ad") == {"login": "x", "email": "x@corp"}
    assert entry_to_profile({"uid": ["a"], "title": ["t"]}, {"login": "uid", "job": ["title"]}) == {"login": "a", "job": "t"}


_ATTRIBUTE_NAMES = sorted(
    {name for names in (*OPENLDAP_ATTRIBUTE_MAP.values(), *AD_ATTRIBUTE_MAP.values()) for name in names}
    | {"objectClass", "x-odd", "member;range=0-1"}
)
_values = st.one_of(
    st.none(), st.text(), st.binary(), st.integers(), st.lists(st.one_of(st.none(), st.text(), st.binary(), st.integers()), max_size=4)
)
_names = st.one_of(st.sampled_from(_ATTRIBUTE_NAMES).flatmap(lambda n: st.sampled_from([n, n.lower(), n.upper()])), st.text(max_size=12))


@given(raw=st.dictionaries(_names, _values, max_size=12), flavor=st.sampled_from(["openldap", "ad"]))
@settings(max_examples=200, deadline=None)
def test_entry_to_profile_never_raises(raw: dict[str, Any], flavor: str) -> None:
    profile = entry_to_profile(raw, None, flavor)
    expected_keys = set(OPENLDAP_ATTRIBUTE_MAP if flavor == "openldap" else AD_ATTRIBUTE_MAP)
    assert set(profile) <= expected_keys
    for value in profile.values():
        assert isinstance(value, str) and value and value == value.strip()


@given(values=st.lists(st.one_of(st.text(), st.binary()), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_entry_to_profile_takes_the_first_nonempty_value(values: list[str | bytes]) -> None:
    texts = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in values]
    expected = next((t.strip() for t in texts if t.strip()), None)
    profile = entry_to_profile({"mail": values}, {"email": "mail"})
    assert profile.get("email") == expected


_rdn_part = st.text(alphabet=st.sampled_from("abcXYZ019 -._é"), min_size=1, max_size=8).filter(lambda t: t.strip())


@given(parts=st.lists(st.tuples(st.sampled_from(["uid", "CN", "ou", "Dc"]), _rdn_part), min_size=1, max_size=5))
@settings(max_examples=150, deadline=None)
def test_normalise_dn_fast_path_agrees_with_the_parser(parts: list[tuple[str, str]]) -> None:
    dn = ",".join(f"{name}={value}" for name, value in parts)
    parsed = ldap_entries.parse_dn(dn, escape=False, strip=True)
    assert normalise_dn(dn) == ",".join(f"{a.strip().lower()}={v.strip().lower()}" for a, v, _ in parsed)


@given(text=st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_normalise_dn_never_raises(text: str) -> None:
    assert isinstance(normalise_dn(text), str)


# --------------------------------------------------------------------------- writing (LdapWriter)


PROFILE = {
    "login": "nina",
    "email": "nina@example.org",
    "firstName": "Nina",
    "lastName": "Simone",
    "title": "Singer",
    "department": "Music",
}


@needs_slapd
def test_writer_creates_updates_renames_and_deletes_users(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    people = slapd.add_ou("people", ldap_ou)
    settings_ = ldap_settings(ldap_ou, as_admin=True)
    with LdapWriter(settings_, people_dn=people) as writer:
        boss_dn = writer.create_user(
            {**PROFILE, "login": "boss", "email": "boss@example.org", "firstName": "Big", "lastName": "Boss", "displayName": "The Boss"}
        )
        dn = writer.create_user({**PROFILE, "manager": "boss"}, password="N1na-pw!")
        assert dn == f"uid=nina,{people}" and writer.find_user("nina").dn == dn  # type: ignore[union-attr]
        with pytest.raises(LdapConflict):
            writer.create_user(PROFILE)
        dn = writer.update_user(dn, {"title": "Pianist", "department": None, "login": "nina.s"})
        assert dn == f"uid=nina.s,{people}"
        assert writer.delete(boss_dn) and not writer.delete(boss_dn)  # already gone is fine
    found = by_login(read_users(ldap_settings(ldap_ou))[0])
    assert set(found) == {"nina.s"}
    assert found["nina.s"].profile == {
        "login": "nina.s",
        "email": "nina@example.org",
        "firstName": "Nina",
        "lastName": "Simone",
        "displayName": "Nina Simone",
        "title": "Pianist",
    }
    assert found["nina.s"].manager_dn == boss_dn  # the manager was written as a DN (now dangling)
    server = ldap3.Server(slapd.uri, get_info=ldap3.NONE)
    assert ldap3.Connection(server, dn, "N1na-pw!").bind()  # slapd hashed and stored the password


@needs_slapd
def test_writer_disables_openldap_users_by_moving_them(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    people, disabled = slapd.add_ou("people", ldap_ou), slapd.add_ou("disabled", ldap_ou)
    settings_ = ldap_settings(ldap_ou, as_admin=True, disabled_bases=(disabled,))
    with LdapWriter(settings_, people_dn=people) as writer:
        dn = writer.create_user(PROFILE)
        off = writer.set_disabled(dn, True)
        assert off == f"uid=nina,{disabled}" and writer.set_disabled(off, True) == off
        (user,) = read_users(ldap_settings(ldap_ou, disabled_bases=(disabled,)))[0]
        assert user.disabled and user.dn == off
        assert writer.set_disabled(off, False) == dn
    no_base = LdapWriter(ldap_settings(ldap_ou, as_admin=True), people_dn=people)
    with no_base as writer, pytest.raises(LdapError, match="disabled_bases"):
        writer.set_disabled(dn, True)


@needs_slapd
def test_writer_flips_the_ad_disable_bit(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    settings_ = ldap_settings(ldap_ou, as_admin=True, flavor="ad", user_filter=AD_TEST_USER_FILTER)
    with LdapWriter(settings_, user_object_classes=("inetOrgPerson", "provtuiADUser")) as writer:
        dn = writer.create_user({**PROFILE, "login": "nsimone"}, extra={"userPrincipalName": "nsimone@example.org"})
        assert dn == f"cn=nsimone,{ldap_ou}"  # named by its sAMAccountName: unique in the domain, within 64
        assert writer.find_user("nsimone").disabled  # type: ignore[union-attr]  # no password yet: created disabled (546)
        writer.set_disabled(dn, False)
        assert not writer.find_user("nsimone").disabled  # type: ignore[union-attr]
        writer.set_disabled(dn, True)
        with slapd.connection() as conn:
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["userAccountControl"])
            assert str(conn.entries[0].userAccountControl.value) == "514"  # 512 | ACCOUNTDISABLE
        with pytest.raises(LdapError, match="only over TLS"):
            writer.set_password(dn, "secret-Pw-1")
    assert ad_password_value("ab") == '"ab"'.encode("utf-16-le")


@needs_slapd
def test_writer_manages_group_members(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    people, groups = slapd.add_ou("people", ldap_ou), slapd.add_ou("groups", ldap_ou)
    settings_ = ldap_settings(ldap_ou, as_admin=True, group_base=groups)
    with LdapWriter(settings_, people_dn=people) as writer:
        a = writer.create_user({**PROFILE, "login": "a"})
        b = writer.create_user({**PROFILE, "login": "b"})
        group = writer.create_group("band", [a], description="The band")
        writer.update_members(group, add=[b, a])  # a is already there: fine
        writer.update_members(group, remove=[a, a])  # removing twice: fine
        with pytest.raises(LdapError, match="(?i)object ?class") as caught:
            writer.update_members(group, remove=[b])  # groupOfNames: MUST member
        assert not caught.value.retryable
    users, _ = read_users(ldap_settings(ldap_ou))
    (band,) = read_groups(ldap_settings(ldap_ou, group_base=groups), users=users)
    assert band.members == ("b",) and band.description == "The band"


@needs_slapd
def test_writer_errors_never_show_the_password(slapd: SlapdProcess, ldap_ou: str, ldap_settings: Settings) -> None:
    with LdapWriter(ldap_settings(ldap_ou, as_admin=True)) as writer, pytest.raises(LdapError) as caught:
        writer.set_password(f"uid=nobody,{ldap_ou}", "Secret-Never-Shown-42")
    assert "Secret-Never-Shown-42" not in str(caught.value) + repr(caught.value)
    assert slapd.admin_password not in str(caught.value)
    with LdapWriter(ldap_settings(ldap_ou)) as reader_only, pytest.raises(LdapError) as denied:
        reader_only.create_user(PROFILE)  # the reader may not write
    assert denied.value.result_code == 50 and not denied.value.retryable
