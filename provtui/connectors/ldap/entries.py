"""Pure functions on what a directory returns: entries to profiles, DNs, GeneralizedTime and change
marks, UUIDs, ranged attributes, group members; and the records a read yields (LdapUser, LdapGroup)."""

from __future__ import annotations

import re
import uuid as uuid_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ldap3.core import exceptions as ldap_exc
from ldap3.utils.dn import parse_dn, to_dn

from provtui.connectors.ldap.settings import ACCOUNTDISABLE, USER_ACCOUNT_CONTROL, AttributeMap, normalise_attribute_map

_GENERALIZED_TIME = re.compile(
    r"^(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?P<H>\d{2})(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d{2}(?:\d{2})?)$"
)
_RANGE_OPTION = re.compile(r"^(?P<attr>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)


@dataclass(frozen=True)
class LdapUser:
    """One user entry. ``login`` is None when the entry lacks the login attribute: report it,
    don't treat it as gone. ``profile["manager"]`` is the manager's login when the manager
    could be resolved, else absent (``manager_dn`` keeps the DN)."""

    dn: str
    login: str | None
    profile: dict[str, str]
    disabled: bool
    modify_timestamp: str | None
    uuid: str | None = None
    manager_dn: str | None = None
    expires: datetime | None = None  # when the account stops working (accountExpires / shadowExpire); None: never


@dataclass(frozen=True)
class LdapGroup:
    """One group. ``member_dns`` are as stored. When ``read_groups`` is given the users,
    ``members`` holds the members' logins, ``subgroups`` the DNs of member groups found in
    the same read, and ``unresolved`` every other member DN (outside the users' filter or base)."""

    dn: str
    name: str
    member_dns: tuple[str, ...]
    uuid: str | None = None
    description: str | None = None
    members: tuple[str, ...] = ()
    subgroups: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _index(raw: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Values by lower-case attribute name without options (``;binary``), in the entry's order."""
    index: dict[str, list[Any]] = {}
    for name, values in raw.items():
        if not isinstance(name, str) or values is None:
            continue
        if isinstance(values, (str, bytes, bytearray, memoryview)) or not isinstance(values, Iterable):
            values = [values]
        index.setdefault(name.split(";", 1)[0].lower(), []).extend(values)
    return index


def _first_text(values: Iterable[Any] | None) -> str | None:
    for value in values or ():
        if value is None:
            continue
        text = _text(value).strip()
        if text:
            return text
    return None


def first_value(raw: Mapping[str, Any], attribute: str) -> str | None:
    """The first non-empty value of ``attribute`` (matched case-insensitively, options such as
    ``;binary`` ignored) as text, bytes decoded as UTF-8 with errors replaced; None if absent."""
    return _first_text(_index(raw).get(attribute.lower()))


def _profile_from_index(index: Mapping[str, list[Any]], attribute_map: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    profile: dict[str, str] = {}
    for key, candidates in attribute_map.items():
        for attribute in candidates:
            value = _first_text(index.get(attribute.lower()))
            if value is not None:
                profile[key] = value
                break
    return profile


def entry_to_profile(raw: Mapping[str, Any], attribute_map: AttributeMap | None = None, flavor: str = "openldap") -> dict[str, str]:
    """Map an entry's attributes (name -> list of str/bytes) to a provtui profile.

    For each profile key the first candidate attribute with a non-empty value wins, and of
    a multi-valued attribute the first value. Attribute names match case-insensitively.
    Bytes are decoded as UTF-8 (errors replaced), values are stripped, missing or empty
    attributes leave the key out. ``manager`` keeps the manager's DN: resolving it to a
    login needs the directory (see ``read_users``).
    """
    return _profile_from_index(_index(raw), normalise_attribute_map(attribute_map, flavor))


def normalise_dn(dn: str) -> str:
    """A comparison key for a DN: attribute types and values lower-cased, spaces around
    separators dropped (the attributes in DNs here, uid/cn/ou/dc, match case-insensitively)."""
    if not any(c in dn for c in '\\"+#;<>'):  # the common case, without the cost of a full parse
        parts = [part.partition("=") for part in dn.split(",")]
        if all(sep and name.strip() for name, sep, _ in parts):
            return ",".join(f"{name.strip().lower()}={value.strip().lower()}" for name, _, value in parts)
    try:
        parsed = parse_dn(dn, escape=False, strip=True)
    except (ldap_exc.LDAPException, ValueError, IndexError):  # a malformed DN still gets a key
        return dn.strip().lower()
    out: list[str] = []
    for attribute, value, separator in parsed:
        out.append(f"{attribute.strip().lower()}={value.strip().lower()}")
        out.append("+" if separator == "+" else ",")
    return "".join(out[:-1])


def split_dn(dn: str) -> tuple[str, str]:
    """(first RDN, parent DN) honouring escapes: ``cn=Doe\\, John,ou=x`` -> (``cn=Doe\\, John``, ``ou=x``)."""
    if "=" not in dn:
        return dn.strip(), ""
    try:
        rdns = [rdn.strip() for rdn in to_dn(dn)]
    except (ldap_exc.LDAPException, ValueError, IndexError):
        rdn, _, parent = dn.partition(",")
        return rdn.strip(), parent.strip()
    return (rdns[0], ",".join(rdns[1:])) if rdns else ("", "")


def dn_within(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or lies below it."""
    dn_key, base_key = normalise_dn(dn), normalise_dn(base)
    return dn_key == base_key or dn_key.endswith("," + base_key)


def is_disabled(raw: Mapping[str, Any], dn: str, flavor: str = "openldap", disabled_bases: Iterable[str] = ()) -> bool:
    """AD: userAccountControl has ACCOUNTDISABLE (0x2). Any flavor: the DN is under a disabled base."""
    if flavor == "ad":
        control = first_value(raw, USER_ACCOUNT_CONTROL)
        if control is not None:
            try:
                if int(control) & ACCOUNTDISABLE:
                    return True
            except ValueError:
                pass
    return any(dn_within(dn, base) for base in disabled_bases)


_AD_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_AD_NEVER = 0x7FFFFFFFFFFFFFFF
_AD_LAST = int((datetime(9999, 1, 1, tzinfo=UTC) - _AD_EPOCH).total_seconds()) * 10_000_000  # beyond: never, in practice


def account_expiry(raw: Mapping[str, Any], flavor: str) -> datetime | None:
    """When the entry's account expires (AD accountExpires, OpenLDAP shadowExpire), or None for never/unreadable."""
    attribute = "accountExpires" if flavor == "ad" else "shadowExpire"
    value = first_value(raw, attribute)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if flavor == "ad":
        if number <= 0 or number >= min(_AD_NEVER, _AD_LAST):
            return None
        return _AD_EPOCH + timedelta(microseconds=number // 10)
    if number < 0 or number > 2_900_000:  # -1: never; past year 9900: never, in practice
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=number)


def parse_generalized_time(value: str) -> datetime:
    """An LDAP GeneralizedTime (20240131235959Z, AD's 20240131235959.0Z, offsets) as an aware UTC datetime."""
    match = _GENERALIZED_TIME.match(value.strip())
    if match is None:
        raise ValueError(f"not an LDAP GeneralizedTime: {value!r}")
    when = datetime(
        int(match["Y"]), int(match["m"]), int(match["d"]), int(match["H"]), int(match["M"] or 0), int(match["S"] or 0), tzinfo=UTC
    )
    if match["frac"]:
        when += timedelta(microseconds=int((match["frac"] + "000000")[:6]))
    tz = match["tz"]
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        try:
            when -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5] or 0))
        except OverflowError:  # the offset moves it past year 1 or 9999: as unreadable as a bad date
            raise ValueError(f"not an LDAP GeneralizedTime within the calendar: {value!r}") from None
    return when


def format_generalized_time(when: datetime, flavor: str = "openldap") -> str:
    """``when`` to the second in UTC; AD's form carries the ``.0`` fraction its filters expect."""
    text = when.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return f"{text}.0Z" if flavor == "ad" else f"{text}Z"


def _floor_second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


def next_mark(newest_seen: datetime | None, read_started: datetime, changed_since: datetime | None, max_clock_skew: float) -> datetime:
    """The mark for the next incremental read (see provtui.connectors.ldap.source for why it is safe)."""
    cap = _floor_second(read_started - timedelta(seconds=max_clock_skew))
    # newest + 1 s, only when below the cap: a server's "year 9999" plus a second would overflow.
    mark = cap if newest_seen is None or _floor_second(newest_seen) >= cap else _floor_second(newest_seen) + timedelta(seconds=1)
    if changed_since is not None and newest_seen is None:
        mark = max(mark, _floor_second(changed_since))
    return mark


def format_uuid(value: Any) -> str | None:
    """entryUUID text as is; AD's 16-byte little-endian objectGUID as its usual string form."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)) and len(value) == 16:
        return str(uuid_module.UUID(bytes_le=bytes(value)))
    text = _text(value).strip()
    return text or None


def sid_rid(value: Any) -> int | None:
    """The RID (last sub-authority) of a binary objectSid, or None: revision, count, 6-byte authority, then
    ``count`` little-endian 32-bit sub-authorities (MS-DTYP 2.4.2.2)."""
    if not isinstance(value, (bytes, bytearray)) or len(value) < 12:
        return None
    count = value[1]
    if count == 0 or len(value) < 8 + 4 * count:
        return None
    return int.from_bytes(value[8 + 4 * (count - 1) : 8 + 4 * count], "little")


def parse_range_option(name: str) -> tuple[str, int, int | None] | None:
    """``member;range=0-1499`` -> ("member", 0, 1499); ``;range=1500-*`` -> ("member", 1500, None)."""
    match = _RANGE_OPTION.match(name)
    if match is None:
        return None
    high = match["high"]
    return match["attr"], int(match["low"]), None if high == "*" else int(high)


def resolve_members(
    member_dns: Iterable[str], logins_by_dn: Mapping[str, str], group_dns: Iterable[str] = ()
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(logins, subgroup DNs, unresolved DNs) of a group's members; ``logins_by_dn`` is keyed by normalise_dn."""
    groups = {normalise_dn(dn) for dn in group_dns}
    logins: set[str] = set()
    subgroups: list[str] = []
    unresolved: list[str] = []
    for dn in member_dns:
        key = normalise_dn(dn)
        if key in logins_by_dn:
            logins.add(logins_by_dn[key])
        elif key in groups:
            subgroups.append(dn)
        else:
            unresolved.append(dn)
    return tuple(sorted(logins)), tuple(subgroups), tuple(unresolved)


def first_raw(raw: Mapping[str, Any], attribute: str) -> Any:
    wanted = attribute.lower()
    for name, values in raw.items():
        if name.split(";", 1)[0].lower() == wanted and values:
            return values[0] if isinstance(values, (list, tuple)) else values
    return None
