"""LDAP source connector (OpenLDAP and Active Directory) over ldap3: reading users and groups.

Imports read users with a paged search (RFC 2696, marked critical so a server that cannot
page fails loudly instead of silently stopping at its size limit), map each entry to a
provtui profile with the pure :func:`entry_to_profile`, and return a change mark for the
next incremental read.

Incremental reads and their mark
    ``read_users(settings, changed_since=mark)`` adds ``(<change attribute>>=mark)`` to the
    user filter (``modifyTimestamp`` for OpenLDAP, ``whenChanged`` for AD; both have
    1-second resolution). The mark it returns is *not* simply the newest timestamp seen:
    a paged read is not a snapshot, so an entry changed during the read, behind the page
    cursor, is missed while a later one may be seen. The returned mark is therefore

        min(newest timestamp seen + 1 s, start of this read - max_clock_skew), to the second

    (and never earlier than ``changed_since`` when nothing was seen). Every change the read
    did not reflect happened after it started, so it is at or after the mark: nothing is
    lost as long as the server's clock is no more than ``max_clock_skew`` behind ours.
    Entries changed within the skew window before the read are read again next time:
    imports must be idempotent upserts (they are: the service reconciles, it does not
    replay). With ``max_clock_skew=0`` (server on this host) and a read that starts in a
    later second than the newest change, the next read returns only later changes.

    Incremental reads cannot see deletions, nor entries moved out of the base or the
    filter: run a full read periodically and treat "absent from a full read" as gone.
    AD's whenChanged is not replicated (each DC keeps its own): point incremental reads
    at one DC (uSNChanged plus the DC's invocationId would be the exact AD method).

Errors are :class:`LdapError` with ``retryable`` set for what may pass (server down or busy,
timeouts, dropped connections) and not for what needs a person (bad credentials, base DN,
filter, TLS trust). The bind password is read from ``os.environ[password_env]`` at connect
time; it never appears in a message, a repr, or a chained exception (see session.py).

Everything here is synchronous (ldap3's SYNC strategy); async callers use
``asyncio.to_thread(read_users, settings)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ldap3.utils.conv import escape_filter_chars

from provtui.connectors.ldap.entries import (
    LdapGroup,
    LdapUser,
    _first_text,
    _index,
    _profile_from_index,
    _text,
    account_expiry,
    entry_to_profile,
    first_raw,
    first_value,
    format_generalized_time,
    format_uuid,
    is_disabled,
    next_mark,
    normalise_dn,
    parse_generalized_time,
    parse_range_option,
    resolve_members,
    sid_rid,
)
from provtui.connectors.ldap.errors import LdapError
from provtui.connectors.ldap.session import Session
from provtui.connectors.ldap.settings import (
    MEMBER_ATTRIBUTES,
    OBJECT_SID,
    PRIMARY_GROUP_ID,
    UNIQUE_MEMBER,
    USER_ACCOUNT_CONTROL,
    LdapSettings,
)

_UNIQUE_MEMBER_UID = re.compile(r"#'[01]*'B$")  # uniqueMember's optional "#'0101'B" suffix


_MAX_RANGE_ROUNDS = 10_000


def user_attributes(settings: LdapSettings) -> list[str]:
    names: dict[str, None] = {}
    for candidates in settings.effective_attribute_map.values():
        names.update(dict.fromkeys(candidates))
    names[settings.change_attribute] = None
    names[settings.uuid_attribute] = None
    names[settings.expiry_attribute] = None
    if settings.flavor == "ad":
        names[USER_ACCOUNT_CONTROL] = None
    return list(names)


def _changed_filter(settings: LdapSettings, changed_since: str | None) -> tuple[str, datetime | None]:
    user_filter = settings.effective_user_filter
    if changed_since is None:
        return user_filter, None
    try:
        since = parse_generalized_time(changed_since)
    except ValueError:
        raise LdapError(f"changed_since is not an LDAP GeneralizedTime: {changed_since!r}") from None
    stamp = escape_filter_chars(format_generalized_time(since, settings.flavor))
    return f"(&{user_filter}({settings.change_attribute}>={stamp}))", since


def to_user(dn: str, raw: Mapping[str, Any], settings: LdapSettings, attribute_map: dict[str, tuple[str, ...]]) -> LdapUser:
    index = _index(raw)
    profile = _profile_from_index(index, attribute_map)
    manager_dn = profile.pop("manager", None) if "manager" in attribute_map else None
    return LdapUser(
        dn=dn,
        login=profile.get("login"),
        profile=profile,
        disabled=is_disabled(raw, dn, settings.flavor, settings.disabled_bases),
        modify_timestamp=_first_text(index.get(settings.change_attribute.lower())),
        uuid=format_uuid(first_raw(raw, settings.uuid_attribute)),
        manager_dn=manager_dn,
        expires=account_expiry(raw, settings.flavor),
    )


def read_users(settings: LdapSettings, *, changed_since: str | None = None) -> tuple[list[LdapUser], str]:
    """Every user under ``base_dn`` matching the user filter (only those changed at or after
    ``changed_since`` when given) and the mark to pass as ``changed_since`` next time.

    Managers are resolved to logins among the users read; in an incremental read a manager
    not among the changed users is looked up by DN (and must match the user filter).
    """
    search_filter, since = _changed_filter(settings, changed_since)
    attribute_map = settings.effective_attribute_map
    attributes = user_attributes(settings)
    started = datetime.now(UTC)
    users: dict[str, LdapUser] = {}
    newest: datetime | None = None
    with Session(settings) as session:
        for dn, raw in session.paged_search(settings.base_dn, search_filter, attributes):
            user = to_user(dn, raw, settings, attribute_map)
            users[normalise_dn(dn)] = user  # a DN seen twice (entry moved during the read) counts once
            if user.modify_timestamp:
                try:
                    stamp = parse_generalized_time(user.modify_timestamp)
                except ValueError:
                    continue
                newest = stamp if newest is None else max(newest, stamp)
        logins = {key: user.login for key, user in users.items() if user.login}
        wanted = {normalise_dn(u.manager_dn): u.manager_dn for u in users.values() if u.manager_dn}
        if changed_since is not None:  # a full read has every user in scope: no lookups needed
            login_attributes = attribute_map.get("login", ())
            for key, dn in sorted(wanted.items()):
                if key in logins:
                    continue
                raw_manager = session.read_entry(dn, settings.effective_user_filter, login_attributes)
                login = entry_to_profile(raw_manager, {"login": login_attributes}).get("login") if raw_manager else None
                if login:
                    logins[key] = login
    result = []
    for user in users.values():
        if user.manager_dn:
            login = logins.get(normalise_dn(user.manager_dn))
            if login:
                user.profile["manager"] = login
        result.append(user)
    mark = next_mark(newest, started, since, settings.max_clock_skew)
    return result, format_generalized_time(mark, settings.flavor)


def read_groups(settings: LdapSettings, *, users: Iterable[LdapUser] | None = None) -> list[LdapGroup]:
    """Every group under ``group_base`` (default ``base_dn``) matching the group filter.

    With ``users`` (from ``read_users``) the member DNs are resolved to logins. AD returns at
    most 1,500 values of ``member`` per entry (``member;range=0-1499``): the rest are fetched
    range by range.
    """
    base = settings.group_base or settings.base_dn
    ad = settings.flavor == "ad"
    attributes = ["cn", "description", settings.uuid_attribute, *([OBJECT_SID] if ad else [])]
    groups: list[LdapGroup] = []
    with Session(settings) as session:
        found = list(group_entries(session, base, settings.effective_group_filter, attributes))
        rids = {dn: rid for dn, raw, _ in found if ad and (rid := sid_rid(first_raw(raw, OBJECT_SID))) is not None}
        primary = _primary_members(session, settings, set(rids.values())) if rids else {}
        for dn, raw, member_dns in found:
            # AD keeps a user's primary group (primaryGroupID) out of the group's member list: it is a membership too
            extra = [m for m in primary.get(rids.get(dn, -1), ()) if m not in member_dns]
            groups.append(
                LdapGroup(
                    dn=dn,
                    name=first_value(raw, "cn") or dn,
                    member_dns=(*member_dns, *extra),
                    uuid=format_uuid(first_raw(raw, settings.uuid_attribute)),
                    description=first_value(raw, "description"),
                )
            )
    if users is None:
        return groups
    logins = {normalise_dn(user.dn): user.login for user in users if user.login}
    group_dns = [group.dn for group in groups]
    resolved = []
    for group in groups:
        members, subgroups, unresolved = resolve_members(group.member_dns, logins, group_dns)
        resolved.append(
            LdapGroup(
                dn=group.dn,
                name=group.name,
                member_dns=group.member_dns,
                uuid=group.uuid,
                description=group.description,
                members=members,
                subgroups=subgroups,
                unresolved=unresolved,
            )
        )
    return resolved


def _primary_members(session: Session, settings: LdapSettings, rids: set[int]) -> dict[int, list[str]]:
    """RID -> the DNs of the users (under the base, in the user filter) whose primary group it is."""
    members: dict[int, list[str]] = {}
    if not rids:
        return members
    wanted = "".join(f"({PRIMARY_GROUP_ID}={rid})" for rid in sorted(rids))
    search_filter = f"(&{settings.effective_user_filter}(|{wanted}))"
    for dn, raw in session.paged_search(settings.base_dn, search_filter, [PRIMARY_GROUP_ID]):
        try:
            members.setdefault(int(first_value(raw, PRIMARY_GROUP_ID) or ""), []).append(dn)
        except ValueError:
            continue
    return members


def group_entries(
    session: Session, base: str, search_filter: str, attributes: Sequence[str]
) -> Iterator[tuple[str, dict[str, list[Any]], list[str]]]:
    """(dn, raw attributes, member DNs) of every group under ``base`` matching ``search_filter``,
    paged; members are read from ``member`` and ``uniqueMember`` (see ``_member_values``).
    Shared by imports (``read_groups``) and the LDAP app's group listing (directory.list_groups)."""
    wanted = list(dict.fromkeys([*attributes, *MEMBER_ATTRIBUTES]))
    for dn, raw in session.paged_search(base, search_filter, wanted):
        yield dn, raw, _member_values(session, dn, raw)


def _member_values(session: Session, dn: str, raw: Mapping[str, Any]) -> list[str]:
    """All ``member`` and ``uniqueMember`` values (the latter without its optional ``#'...'B``
    uid), following AD's ranged retrieval when the server uses it."""
    values: list[str] = []
    for attribute in MEMBER_ATTRIBUTES:
        found = _ranged_values(session, dn, raw, attribute)
        values += [_UNIQUE_MEMBER_UID.sub("", v) for v in found] if attribute == UNIQUE_MEMBER else found
    return list(dict.fromkeys(values))  # a value two ranges both returned counts once


def _ranged_values(session: Session, dn: str, raw: Mapping[str, Any], attribute: str) -> list[str]:
    """Every value of ``attribute``, fetching the further ranges (``attr;range=1500-*``) AD holds back."""
    wanted = attribute.lower()
    values: list[str] = []
    ranged: tuple[str, int, int | None] | None = None
    for name, attribute_values in raw.items():
        option = parse_range_option(name)
        if name.lower() == wanted or (option is not None and option[0].lower() == wanted):
            values.extend(_text(v) for v in attribute_values or [])
            if option is not None:
                ranged = option
    rounds = 0
    while ranged is not None and ranged[2] is not None:
        rounds += 1
        if rounds > _MAX_RANGE_ROUNDS:
            raise LdapError(f"ranged retrieval of {dn} {attribute} values did not end", retryable=False)
        requested = f"{attribute};range={ranged[2] + 1}-*"
        page = session.read_entry(dn, "(objectClass=*)", [requested])
        ranged = None
        for name, attribute_values in (page or {}).items():
            option = parse_range_option(name)
            if option is not None and option[0].lower() == wanted:
                values.extend(_text(v) for v in attribute_values or [])
                ranged = option
    return values
