"""Fuzzing LDAP / AD entries on their way to profiles, groups and an import.

The pure conversions (entry -> LdapUser, DNs, member lists, GeneralizedTime, the change mark,
entry -> import row) are given hypothesis-made attribute values: missing attributes, several
values where one is expected, binary values, odd Unicode, huge values, malformed DNs, an
objectGUID of the wrong length, a non-numeric userAccountControl, malformed timestamps.  They
must return a well-formed result or, where they raise, a ValueError only.  Then a handful of
hostile entries go through a real slapd and the import: each bad entry is reported by its DN,
the rest are applied (the import's contract), nothing is half-written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provtui.connectors.ldap import (
    AD_ATTRIBUTE_MAP,
    OPENLDAP_ATTRIBUTE_MAP,
    LdapSettings,
    dn_within,
    format_uuid,
    next_mark,
    normalise_dn,
    parse_generalized_time,
    parse_range_option,
    resolve_members,
    split_dn,
)
from provtui.connectors.ldap import source as ldap_source
from provtui.domain.errors import InvalidInput
from provtui.domain.users import validate_login
from provtui.model.schema import USERS
from provtui.service import Service
from provtui.service.imports import ldap_rows
from provtui.testing.slapd import AD_TEST_USER_FILTER, ad_user_entry, group_entry, person_entry, slapd_available
from tests.helpers.ldap import PASSWORD_ENV

odd_text = st.one_of(
    st.text(max_size=24),
    st.text(st.characters(categories=["Cc", "Cf", "Mn", "Zs", "Co"]), max_size=8),
    st.sampled_from(["", " ", "\u202eevil\u202c", "\x00", "e\u0301\u0301", "\U0001f600", "שלום", "ǅ", "ﬃ", "İ"]),
    st.integers(min_value=300, max_value=100_000).map(lambda n: "v" * n),  # huge
)
values = st.one_of(st.none(), odd_text, st.binary(max_size=40), st.integers(), st.floats())
multi = st.one_of(values, st.lists(values, max_size=4))
hostile_dns = st.one_of(
    odd_text,
    st.lists(st.tuples(st.sampled_from(["uid", "CN", "ou", "dc", "", "=", "1.2.3"]), odd_text), min_size=1, max_size=4).map(
        lambda parts: ",".join(f"{name}={value}" for name, value in parts)
    ),
    st.sampled_from(["cn=a\\", "cn=#zz", "cn=a+", ",,,", "cn=\\,x,ou=y", 'cn="open', "uid=a;x", "=", "cn=a,,dc=b"]),
)
timestamps = st.one_of(
    odd_text,
    st.sampled_from(
        [
            "99991231235959Z",
            "99991231235959-2359",
            "00010101000000+2359",
            "00010101000000Z",
            "20241301000000Z",
            "20240230000000Z",
            "20240101246060Z",
            "20240101000000.9999999999Z",
            "２０２４０１０１０００００００Z",
            "20240101000000+9999",
            "2024010100Z",
        ]
    ),
    st.from_regex(r"\A\d{4,14}(\.\d{0,9})?(Z|[+-]\d{2,4})?\Z", fullmatch=True),
)
guids = st.one_of(st.binary(min_size=0, max_size=40), st.binary(min_size=16, max_size=16), odd_text, st.none())


def entry_for(flavor: str) -> st.SearchStrategy[dict[str, Any]]:
    """An entry's attributes as ldap3 returns them, each one maybe missing, multi-valued or odd."""
    mapped = sorted({name for names in (OPENLDAP_ATTRIBUTE_MAP if flavor == "openldap" else AD_ATTRIBUTE_MAP).values() for name in names})
    optional = {name: multi for name in mapped}
    optional |= {
        "userAccountControl": st.one_of(multi, st.sampled_from(["514", "512", "-2", "0x2", "1e3", "²", "9" * 5000])),
        "whenChanged": st.one_of(timestamps, st.lists(timestamps, max_size=3)),
        "modifyTimestamp": st.one_of(timestamps, st.lists(timestamps, max_size=3)),
        "objectGUID": st.one_of(guids, st.lists(guids, max_size=2)),
        "entryUUID": multi,
        "manager": st.one_of(hostile_dns, st.lists(hostile_dns, max_size=2)),
    }
    return st.fixed_dictionaries({}, optional=optional)


SETTINGS = {
    flavor: LdapSettings(
        uri="ldap://127.0.0.1:1",
        bind_dn="cn=r",
        password_env="X",
        base_dn="dc=example,dc=org",
        flavor=flavor,
        disabled_bases=("ou=disabled,dc=example,dc=org",),
    )
    for flavor in ("openldap", "ad")
}


@st.composite
def users(draw) -> tuple[str, list[tuple[str, dict]]]:
    flavor = draw(st.sampled_from(["openldap", "ad"]))
    entries = draw(st.lists(st.tuples(hostile_dns, entry_for(flavor)), max_size=6))
    return flavor, entries


# --------------------------------------------------------------------------- pure conversions


@given(flavored=users())
@settings(max_examples=300, deadline=None)
def test_any_entry_becomes_a_well_formed_user(flavored):
    flavor, entries = flavored
    settings_ = SETTINGS[flavor]
    for dn, raw in entries:
        user = ldap_source.to_user(dn, raw, settings_, settings_.effective_attribute_map)
        assert user.dn == dn and isinstance(user.disabled, bool)
        assert all(isinstance(v, str) and v and v == v.strip() for v in user.profile.values())
        assert user.login is None or user.login == user.profile["login"]
        assert user.uuid is None or (isinstance(user.uuid, str) and user.uuid)
        assert user.manager_dn is None or isinstance(user.manager_dn, str)


@given(flavored=users())
@settings(max_examples=300, deadline=None)
def test_every_entry_is_imported_or_rejected_by_its_position(flavored):
    """ldap_rows: each entry is either a row with a valid login or a rejection naming its line and an attribute."""
    flavor, entries = flavored
    settings_ = SETTINGS[flavor]
    read = [ldap_source.to_user(dn, raw, settings_, settings_.effective_attribute_map) for dn, raw in entries]
    parsed, dns = ldap_rows(read, settings_)
    assert dns == {line: user.dn for line, user in enumerate(read, start=1)}
    lines = [row.line for row in parsed.rows] + [rejection.line for rejection in parsed.rejections]
    assert sorted(lines) == list(range(1, len(read) + 1))
    for row in parsed.rows:
        assert validate_login(row.login) == row.login
        assert all(v is None or isinstance(v, str) for v in row.profile.values())
    for rejection in parsed.rejections:
        assert rejection.column and rejection.reason


@given(text=timestamps)
@settings(max_examples=300, deadline=None)
def test_generalized_time_is_a_utc_datetime_or_a_value_error(text):
    try:
        when = parse_generalized_time(text)
    except ValueError:
        return
    assert when.tzinfo is not None and when.utcoffset().total_seconds() == 0


@given(
    text=timestamps,
    started=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    skew=st.floats(0, 3600),
)
@settings(max_examples=200, deadline=None)
def test_the_next_mark_never_overflows(text, started, skew):
    """Regression: an entry changed "in the year 9999" made newest + 1 s overflow, failing the whole import."""
    try:
        newest = parse_generalized_time(text)
    except ValueError:
        return
    mark = next_mark(newest, started, None, skew)
    assert mark <= started


@pytest.mark.parametrize("text", ["00010101000000+2359", "99991231235959-2359"])
def test_a_generalized_time_beyond_the_calendar_is_a_value_error(text):
    """Regression: an offset pushing a time past year 1 or 9999 raised OverflowError, which the reader did not expect."""
    with pytest.raises(ValueError, match="GeneralizedTime"):
        parse_generalized_time(text)


@given(dn=hostile_dns, base=hostile_dns)
@settings(max_examples=300, deadline=None)
def test_dn_helpers_take_any_text(dn, base):
    key = normalise_dn(dn)
    assert isinstance(key, str) and normalise_dn(dn) == key
    rdn, parent = split_dn(dn)
    assert isinstance(rdn, str) and isinstance(parent, str)
    assert isinstance(dn_within(dn, base), bool) and dn_within(dn, dn)


@given(members=st.lists(hostile_dns, max_size=8), known=st.lists(hostile_dns, max_size=4), groups=st.lists(hostile_dns, max_size=3))
@settings(max_examples=200, deadline=None)
def test_any_member_list_is_resolved_into_logins_subgroups_or_unresolved(members, known, groups):
    logins_by_dn = {normalise_dn(dn): f"user{n}" for n, dn in enumerate(known)}
    logins, subgroups, unresolved = resolve_members(members, logins_by_dn, groups)
    assert set(logins) <= set(logins_by_dn.values())
    assert len(subgroups) + len(unresolved) <= len(members)
    assert set(subgroups) | set(unresolved) <= set(members)


@given(value=guids)
@settings(max_examples=200, deadline=None)
def test_an_object_guid_of_any_length_is_text_or_none(value):
    text = format_uuid(value)
    assert text is None or (isinstance(text, str) and text == text.strip() and text)
    if isinstance(value, bytes) and len(value) == 16:
        assert len(text) == 36


@given(name=st.one_of(odd_text, st.from_regex(r"\Amember;range=\d{1,30}-(\d{1,30}|\*)\Z", fullmatch=True)))
@settings(max_examples=200, deadline=None)
def test_range_options_parse_or_are_none(name):
    option = parse_range_option(name)
    assert option is None or (option[1] >= 0 and (option[2] is None or option[2] >= 0))


# --------------------------------------------------------------------------- through slapd and the importer

needs_slapd = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


@needs_slapd
def test_hostile_entries_are_rejected_by_dn_and_the_rest_applied(tmp_path, slapd, ldap_ou, ldap_settings):
    huge = "t" * 20_000
    entries = [
        person_entry(ldap_ou, "fine", "Fine", "Person", title="Engineer"),
        person_entry(ldap_ou, "rtl", "\u202eevil\u202c", "e\u0301\u0301", title="שלום"),  # odd but valid: imported
        person_entry(ldap_ou, "huge", "Huge", "Title", title=huge),  # too long: rejected
        person_entry(ldap_ou, "nul", "Nul", "Bell\x07"),  # a control character: rejected
        person_entry(ldap_ou, "twomail", "Two", "Mails", mail=["a@example.org", "b@example.org"]),  # first wins
        person_entry(ldap_ou, "badmail", "Bad", "Mail", mail="no@@at"),  # rejected
        person_entry(ldap_ou, "bad login!", "Bad", "Login"),  # rejected
        (f"cn=No Uid,{ldap_ou}", {"objectClass": ["inetOrgPerson"], "cn": "No Uid", "sn": "Uid"}),  # rejected
        person_entry(ldap_ou, "mgr", "Has", "Manager", manager=f"uid=nobody\\,here,{ldap_ou}"),  # unresolvable: kept
    ]
    group = group_entry(ldap_ou, "Mixed", [entries[0][0], f"uid=ghost,{ldap_ou}", entries[2][0], f"cn=a\\+b,{ldap_ou}"])
    slapd.add_ldif([*entries, group])
    service = Service.init(tmp_path / "store", actor="admin")
    service.importer().add_ldap_source("corp", uri=slapd.uri, bind_dn=slapd.reader_dn, password_env=PASSWORD_ENV, base_dn=ldap_ou)
    result = service.importer().import_ldap("corp")
    rejected = {r["dn"]: r for r in result["rejected"]}
    assert set(rejected) == {entries[i][0] for i in (2, 3, 5, 6, 7)}, rejected
    assert rejected[entries[2][0]]["column"] == "title" and "longer" in rejected[entries[2][0]]["reason"]
    assert rejected[entries[7][0]]["column"] == "uid"
    service.store.refresh()
    logins = {u["login"] for u in service.store.all(USERS).values()}
    assert logins == {"fine", "rtl", "twomail", "mgr"}
    assert service.user_view("twomail")["profile"]["email"] == "a@example.org"
    assert service.user_view("rtl")["profile"]["title"] == "שלום"
    assert "manager" not in service.user_view("mgr")["profile"]
    assert service.user_view("fine")["groups"] == ["Mixed"]  # the ghost, the rejected and the odd DN are not members
    assert service.user_view("rtl")["state"] == "active"


@needs_slapd
def test_an_ad_entry_changed_in_the_year_9999_imports(tmp_path, slapd, ldap_ou, ldap_settings):
    """Regression: whenChanged 99991231235959Z (and a short objectGUID, a disabled uAC) failed the whole run."""
    slapd.add_ldif(
        [
            ad_user_entry(ldap_ou, "future", "Far", "Future", when_changed="99991231235959Z", object_guid=b"\x01\x02"),
            ad_user_entry(ldap_ou, "off", "Is", "Off", disabled=True),
            ad_user_entry(ldap_ou, "plain", "Plain", "User"),
        ]
    )
    service = Service.init(tmp_path / "store", actor="admin")
    importer = service.importer()
    importer.add_ldap_source(
        "ad",
        uri=slapd.uri,
        bind_dn=slapd.reader_dn,
        password_env=PASSWORD_ENV,
        base_dn=ldap_ou,
        flavor="ad",
        user_filter=AD_TEST_USER_FILTER,
    )
    result = importer.import_ldap("ad")
    assert result["created"] == 2 and result["rejected"] == []
    mark = service.store.get("sources", "ad")["ldap"]["mark"]
    assert parse_generalized_time(mark) <= datetime.now(UTC)
    with pytest.raises(InvalidInput):
        service.user_view("off")
