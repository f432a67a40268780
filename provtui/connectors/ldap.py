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
time; it never appears in a message, a repr, or a chained exception.

Writing to the directory (provisioning *into* LDAP/AD, issue #9) is :class:`LdapWriter` at
the end of this module: create, modify, rename/move, disable/enable, delete, group
membership and passwords, tested against slapd (AD paths against the AD-flavoured schema;
unicodePwd only by its encoding, since slapd has no AD password semantics).

Everything here is synchronous (ldap3's SYNC strategy); async callers use
``asyncio.to_thread(read_users, settings)``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import ssl
import uuid as uuid_module
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn, to_dn

Flavor = Literal["openldap", "ad"]
FLAVORS: tuple[str, ...] = ("openldap", "ad")

AttributeMap = Mapping[str, str | Sequence[str]]
"""provtui profile key -> LDAP attribute, or candidate attributes in order of preference."""

OPENLDAP_ATTRIBUTE_MAP: dict[str, tuple[str, ...]] = {
    "login": ("uid",),
    "email": ("mail",),
    "firstName": ("givenName",),
    "lastName": ("sn",),
    "displayName": ("displayName", "cn"),
    "title": ("title",),
    "department": ("departmentNumber", "ou"),
    "manager": ("manager",),
}
AD_ATTRIBUTE_MAP: dict[str, tuple[str, ...]] = {
    "login": ("sAMAccountName",),
    # mail is the mailbox; userPrincipalName is a sign-in name that is often, not always, routable.
    "email": ("mail", "userPrincipalName"),
    "firstName": ("givenName",),
    "lastName": ("sn",),
    "displayName": ("displayName", "cn"),
    "title": ("title",),
    "department": ("department",),
    "manager": ("manager",),
}
DEFAULT_ATTRIBUTE_MAPS: dict[str, dict[str, tuple[str, ...]]] = {"openldap": OPENLDAP_ATTRIBUTE_MAP, "ad": AD_ATTRIBUTE_MAP}
DEFAULT_USER_FILTERS = {"openldap": "(objectClass=inetOrgPerson)", "ad": "(&(objectClass=user)(objectCategory=person))"}
DEFAULT_GROUP_FILTERS = {"openldap": "(objectClass=groupOfNames)", "ad": "(objectClass=group)"}
CHANGE_ATTRIBUTES = {"openldap": "modifyTimestamp", "ad": "whenChanged"}
UUID_ATTRIBUTES = {"openldap": "entryUUID", "ad": "objectGUID"}
USER_ACCOUNT_CONTROL = "userAccountControl"
ACCOUNTDISABLE = 0x2
MEMBER = "member"
UNIQUE_MEMBER = "uniqueMember"  # groupOfUniqueNames' member list
MEMBER_ATTRIBUTES = (MEMBER, UNIQUE_MEMBER)
_UNIQUE_MEMBER_UID = re.compile(r"#'[01]*'B$")  # uniqueMember's optional "#'0101'B" suffix

# Result codes worth retrying: timeLimitExceeded, busy, unavailable, other (AD's catch-all for
# transient faults), and the client-side serverDown/timeout/connectError.
_RETRYABLE_CODES = frozenset({3, 51, 52, 80, 81, 85, 91})
_GENERALIZED_TIME = re.compile(
    r"^(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?P<H>\d{2})(?P<M>\d{2})?(?P<S>\d{2})?"
    r"(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d{2}(?:\d{2})?)$"
)
_RANGE_OPTION = re.compile(r"^(?P<attr>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)
_MAX_RANGE_ROUNDS = 10_000


# --------------------------------------------------------------------------- settings and records


@dataclass(frozen=True)
class LdapSettings:
    """Where and how to read a directory. Defaults follow ``flavor``.

    ``user_filter``/``group_filter``/``attribute_map`` None mean the flavor's default
    (``DEFAULT_USER_FILTERS``, ``DEFAULT_GROUP_FILTERS``, ``DEFAULT_ATTRIBUTE_MAPS``); an
    explicit ``attribute_map`` replaces the default whole (build on the default with
    ``{**OPENLDAP_ATTRIBUTE_MAP, "department": "ou"}``). ``disabled_bases`` are subtrees
    (e.g. ``ou=disabled,...``) whose users count as disabled; AD users are also disabled by
    userAccountControl's ACCOUNTDISABLE bit. ``tls`` is "ldaps" (implied by an ldaps://
    uri), "starttls" or None; certificates are always verified (``ca_file`` adds a CA).
    """

    uri: str
    bind_dn: str
    password_env: str
    base_dn: str
    user_filter: str | None = None
    group_base: str | None = None
    flavor: Flavor = "openldap"
    attribute_map: AttributeMap | None = None
    page_size: int = 500
    timeout: float = 10.0
    group_filter: str | None = None
    disabled_bases: tuple[str, ...] = ()
    max_clock_skew: float = 5.0
    tls: Literal["ldaps", "starttls"] | None = None
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {self.flavor!r}")
        if not re.match(r"^ldaps?://[^/\s]+/?$", self.uri, re.IGNORECASE):
            raise ValueError(f"uri must look like ldap://host[:port] or ldaps://host[:port], not {self.uri!r}")
        if not self.password_env:
            raise ValueError("password_env must name the environment variable holding the bind password")
        if not 1 <= self.page_size <= 100_000:
            raise ValueError("page_size must be between 1 and 100000")
        if self.timeout <= 0 or self.max_clock_skew < 0:
            raise ValueError("timeout must be positive and max_clock_skew not negative")
        if self.tls not in (None, "ldaps", "starttls"):
            raise ValueError(f"tls must be 'ldaps', 'starttls' or None, not {self.tls!r}")
        bases = self.disabled_bases
        object.__setattr__(self, "disabled_bases", (bases,) if isinstance(bases, str) else tuple(bases))
        if "login" not in normalise_attribute_map(self.attribute_map, self.flavor):  # also validates the map
            raise ValueError("the attribute map must map 'login'")

    @property
    def effective_user_filter(self) -> str:
        return _parenthesise(self.user_filter or DEFAULT_USER_FILTERS[self.flavor])

    @property
    def effective_group_filter(self) -> str:
        return _parenthesise(self.group_filter or DEFAULT_GROUP_FILTERS[self.flavor])

    @property
    def effective_attribute_map(self) -> dict[str, tuple[str, ...]]:
        return normalise_attribute_map(self.attribute_map, self.flavor)

    @property
    def change_attribute(self) -> str:
        return CHANGE_ATTRIBUTES[self.flavor]

    @property
    def uuid_attribute(self) -> str:
        return UUID_ATTRIBUTES[self.flavor]


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


class LdapError(Exception):
    """A failed directory operation; ``retryable`` tells the caller whether to try again later.

    The message names the server and bind DN where useful, never the password.
    """

    def __init__(self, message: str, *, retryable: bool = False, result_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.result_code = result_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, retryable={self.retryable!r}, result_code={self.result_code!r})"


class LdapConflict(LdapError):
    """entryAlreadyExists (68): the DN is taken; look the entry up and link instead of creating."""


# --------------------------------------------------------------------------- pure functions


def _parenthesise(search_filter: str) -> str:
    search_filter = search_filter.strip()
    return search_filter if search_filter.startswith("(") else f"({search_filter})"


def normalise_attribute_map(attribute_map: AttributeMap | None, flavor: str = "openldap") -> dict[str, tuple[str, ...]]:
    """``attribute_map`` (or the flavor's default) with every value as a tuple of attribute names."""
    if attribute_map is None:
        return dict(DEFAULT_ATTRIBUTE_MAPS[flavor])
    result: dict[str, tuple[str, ...]] = {}
    for key, attributes in attribute_map.items():
        names = (attributes,) if isinstance(attributes, str) else tuple(attributes)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"attribute map entry {key!r} must name at least one LDAP attribute")
        result[key] = names
    return result


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


def parse_generalized_time(value: str) -> datetime:
    """An LDAP GeneralizedTime (20240131235959Z, AD's 20240131235959.0Z, offsets) as an aware UTC datetime."""
    match = _GENERALIZED_TIME.match(value.strip())
    if match is None:
        raise ValueError(f"not an LDAP GeneralizedTime: {value!r}")
    when = datetime(int(match["Y"]), int(match["m"]), int(match["d"]), int(match["H"]),
                    int(match["M"] or 0), int(match["S"] or 0), tzinfo=UTC)
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


def next_mark(newest_seen: datetime | None, read_started: datetime, changed_since: datetime | None,
              max_clock_skew: float) -> datetime:
    """The mark for the next incremental read (see the module docstring for why it is safe)."""
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


def parse_range_option(name: str) -> tuple[str, int, int | None] | None:
    """``member;range=0-1499`` -> ("member", 0, 1499); ``;range=1500-*`` -> ("member", 1500, None)."""
    match = _RANGE_OPTION.match(name)
    if match is None:
        return None
    high = match["high"]
    return match["attr"], int(match["low"]), None if high == "*" else int(high)


def resolve_members(member_dns: Iterable[str], logins_by_dn: Mapping[str, str],
                    group_dns: Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
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


# --------------------------------------------------------------------------- connection and errors


def _password(settings: LdapSettings) -> str:
    password = os.environ.get(settings.password_env)
    if password is None:
        raise LdapError(f"environment variable {settings.password_env} is not set "
                        f"(it should hold the password of {settings.bind_dn})")
    if password == "":
        # An empty simple-bind password is an *unauthenticated* bind (RFC 4513 §5.1.2): refuse it.
        raise LdapError(f"environment variable {settings.password_env} is empty "
                        f"(it should hold the password of {settings.bind_dn})")
    return password


class _Session:
    """One bound connection; every failure leaves as LdapError with the password scrubbed."""

    def __init__(self, settings: LdapSettings, *, read_only: bool = True) -> None:
        self.settings = settings
        self.read_only = read_only
        self._password = _password(settings)
        self._secrets: list[str] = [self._password]  # scrubbed from every message
        self._conn: ldap3.Connection | None = None

    def __enter__(self) -> Self:
        settings = self.settings
        use_ssl = settings.tls == "ldaps" or settings.uri.lower().startswith("ldaps://")
        tls = None
        if use_ssl or settings.tls == "starttls":
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
        try:
            server = ldap3.Server(settings.uri.rstrip("/"), use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE,
                                  connect_timeout=settings.timeout)
            conn = ldap3.Connection(
                server, user=settings.bind_dn, password=self._password, read_only=self.read_only, auto_referrals=False,
                # ldap3 packs receive_timeout into SO_RCVTIMEO as whole seconds: a float breaks it.
                receive_timeout=max(1, math.ceil(settings.timeout)), raise_exceptions=False, client_strategy=ldap3.SYNC,
            )
        except ldap_exc.LDAPException as exc:
            raise self._from_exception(exc, "configure the connection to") from None
        self._conn = conn
        try:
            self._call(conn.open, "connect to")
            if settings.tls == "starttls" and not use_ssl and not self._call(conn.start_tls, "start TLS with"):
                raise self._from_result("start TLS with", conn.result)
            if not self._call(conn.bind, "bind to"):
                raise self._from_result(f"bind as {settings.bind_dn} to", conn.result)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(ldap_exc.LDAPException, OSError):  # a broken socket: nothing left to do
                conn.unbind()

    # ----------------------------------------------------------------- search

    def paged_search(self, base: str, search_filter: str, attributes: Sequence[str],
                     scope: str = ldap3.SUBTREE) -> Iterator[tuple[str, dict[str, list[Any]]]]:
        """(dn, raw attributes) of every entry, one page at a time; referrals are skipped."""
        conn = self._require()
        cookie: bytes | None = None
        while True:
            ok = self._call(
                lambda cookie=cookie: conn.search(
                    base, search_filter, search_scope=scope, attributes=list(attributes),
                    paged_size=self.settings.page_size, paged_criticality=True, paged_cookie=cookie,
                                    time_limit=max(1, int(self.settings.timeout))),
                "search",
            )
            result = conn.result or {}
            if not ok and result.get("result") not in (0, None):
                raise self._from_result(f"search {base} with {search_filter} on", result)
            for response in conn.response or []:
                if response.get("type") == "searchResEntry":
                    yield response["dn"], response.get("raw_attributes") or {}
            try:
                cookie = result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            except (KeyError, TypeError):
                cookie = None
            if not cookie:
                return

    def read_entry(self, dn: str, search_filter: str, attributes: Sequence[str]) -> dict[str, list[Any]] | None:
        """One entry's raw attributes if it exists and matches ``search_filter``, else None."""
        conn = self._require()
        ok = self._call(lambda: conn.search(dn, search_filter, search_scope=ldap3.BASE,
                                            attributes=list(attributes)), "search")
        result = conn.result or {}
        if not ok:
            if result.get("result") in (32, 34):  # noSuchObject, invalidDNSyntax: a dangling reference
                return None
            if result.get("result") not in (0, None):
                raise self._from_result(f"read {dn} on", result)
        for response in conn.response or []:
            if response.get("type") == "searchResEntry":
                return response.get("raw_attributes") or {}
        return None

    # ----------------------------------------------------------------- errors

    def _require(self) -> ldap3.Connection:
        if self._conn is None:
            raise LdapError("not connected")
        return self._conn

    def _call(self, function: Any, action: str) -> Any:
        try:
            return function()
        except ldap_exc.LDAPException as exc:
            raise self._from_exception(exc, action) from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    def write(self, action: str, operation: Any, *, secret: str | None = None,
              accept: Iterable[int] = ()) -> int:
        """Run one write (a callable on the connection); return the result code when it is 0 or
        in ``accept``, raise LdapError (LdapConflict for entryAlreadyExists) otherwise."""
        conn = self._require()
        if secret:
            self._secrets.append(secret)
        try:
            self._call(lambda: operation(conn), action)
            code = (conn.result or {}).get("result")
            if code == 0 or code in set(accept):
                return code
            raise self._from_result(f"{action} on", conn.result)
        finally:
            if secret:
                self._secrets.remove(secret)

    def _from_result(self, action: str, result: Mapping[str, Any] | None) -> LdapError:
        result = result or {}
        code = result.get("result")
        description = result.get("description") or "error"
        detail = str(result.get("message") or "").strip()
        message = f"{action} {self.settings.uri}: {description} ({code})" + (f": {detail}" if detail else "")
        kind = LdapConflict if code == 68 else LdapError  # entryAlreadyExists
        return kind(self._scrub(message), retryable=code in _RETRYABLE_CODES, result_code=code)

    def _from_exception(self, exc: ldap_exc.LDAPException, action: str) -> LdapError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ldap_exc.LDAPCommunicationError | ldap_exc.LDAPResponseTimeoutError
                      | ldap_exc.LDAPMaximumRetriesError):
            # Refused, unreachable, reset, timed out: the server may come back. A certificate
            # that does not verify will not fix itself.
            retryable = not re.search(r"certificate|ssl|tls", detail, re.IGNORECASE)
        else:
            retryable = False  # bad filter, DN, attribute, TLS setup...: configuration
        code = getattr(exc, "result", None)
        if isinstance(code, int) and code in _RETRYABLE_CODES:
            retryable = True
        return LdapError(self._scrub(f"could not {action} {self.settings.uri} ({type(exc).__name__}: {detail})"),
                         retryable=retryable, result_code=code if isinstance(code, int) else None)


# --------------------------------------------------------------------------- reading


def _user_attributes(settings: LdapSettings) -> list[str]:
    names: dict[str, None] = {}
    for candidates in settings.effective_attribute_map.values():
        names.update(dict.fromkeys(candidates))
    names[settings.change_attribute] = None
    names[settings.uuid_attribute] = None
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


def _to_user(dn: str, raw: Mapping[str, Any], settings: LdapSettings, attribute_map: dict[str, tuple[str, ...]]) -> LdapUser:
    index = _index(raw)
    profile = _profile_from_index(index, attribute_map)
    manager_dn = profile.pop("manager", None) if "manager" in attribute_map else None
    return LdapUser(
        dn=dn,
        login=profile.get("login"),
        profile=profile,
        disabled=is_disabled(raw, dn, settings.flavor, settings.disabled_bases),
        modify_timestamp=_first_text(index.get(settings.change_attribute.lower())),
        uuid=format_uuid(_first_raw(raw, settings.uuid_attribute)),
        manager_dn=manager_dn,
    )


def _first_raw(raw: Mapping[str, Any], attribute: str) -> Any:
    wanted = attribute.lower()
    for name, values in raw.items():
        if name.split(";", 1)[0].lower() == wanted and values:
            return values[0] if isinstance(values, (list, tuple)) else values
    return None


def read_users(settings: LdapSettings, *, changed_since: str | None = None) -> tuple[list[LdapUser], str]:
    """Every user under ``base_dn`` matching the user filter (only those changed at or after
    ``changed_since`` when given) and the mark to pass as ``changed_since`` next time.

    Managers are resolved to logins among the users read; in an incremental read a manager
    not among the changed users is looked up by DN (and must match the user filter).
    """
    search_filter, since = _changed_filter(settings, changed_since)
    attribute_map = settings.effective_attribute_map
    attributes = _user_attributes(settings)
    started = datetime.now(UTC)
    users: dict[str, LdapUser] = {}
    newest: datetime | None = None
    with _Session(settings) as session:
        for dn, raw in session.paged_search(settings.base_dn, search_filter, attributes):
            user = _to_user(dn, raw, settings, attribute_map)
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
    attributes = ["cn", "description", settings.uuid_attribute]
    groups: list[LdapGroup] = []
    with _Session(settings) as session:
        for dn, raw, member_dns in group_entries(session, base, settings.effective_group_filter, attributes):
            groups.append(LdapGroup(
                dn=dn,
                name=first_value(raw, "cn") or dn,
                member_dns=tuple(member_dns),
                uuid=format_uuid(_first_raw(raw, settings.uuid_attribute)),
                description=first_value(raw, "description"),
            ))
    if users is None:
        return groups
    logins = {normalise_dn(user.dn): user.login for user in users if user.login}
    group_dns = [group.dn for group in groups]
    resolved = []
    for group in groups:
        members, subgroups, unresolved = resolve_members(group.member_dns, logins, group_dns)
        resolved.append(LdapGroup(dn=group.dn, name=group.name, member_dns=group.member_dns, uuid=group.uuid,
                                  description=group.description, members=members, subgroups=subgroups,
                                  unresolved=unresolved))
    return resolved


def group_entries(session: _Session, base: str, search_filter: str,
                  attributes: Sequence[str]) -> Iterator[tuple[str, dict[str, list[Any]], list[str]]]:
    """(dn, raw attributes, member DNs) of every group under ``base`` matching ``search_filter``,
    paged; members are read from ``member`` and ``uniqueMember`` (see ``_member_values``).
    Shared by imports (``read_groups``) and the LDAP app's group listing (ldap_app)."""
    wanted = list(dict.fromkeys([*attributes, *MEMBER_ATTRIBUTES]))
    for dn, raw in session.paged_search(base, search_filter, wanted):
        yield dn, raw, _member_values(session, dn, raw)


def _member_values(session: _Session, dn: str, raw: Mapping[str, Any]) -> list[str]:
    """All ``member`` and ``uniqueMember`` values (the latter without its optional ``#'...'B``
    uid), following AD's ranged retrieval when the server uses it."""
    values: list[str] = []
    for attribute in MEMBER_ATTRIBUTES:
        found = _ranged_values(session, dn, raw, attribute)
        values += [_UNIQUE_MEMBER_UID.sub("", v) for v in found] if attribute == UNIQUE_MEMBER else found
    return values


def _ranged_values(session: _Session, dn: str, raw: Mapping[str, Any], attribute: str) -> list[str]:
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


# --------------------------------------------------------------------------- writing (issue #9)


def ad_password_value(password: str) -> bytes:
    """AD's unicodePwd: the password in double quotes, UTF-16-LE (AD accepts it only over TLS)."""
    return f'"{password}"'.encode("utf-16-le")


_OPENLDAP_USER_CLASSES = ("inetOrgPerson",)
_AD_USER_CLASSES = ("top", "person", "organizationalPerson", "user")


class LdapWriter:
    """Provisioning into LDAP/AD (issue #9) over one bound, writable connection.

    Use as a context manager. Profile keys map to the *first* attribute of each entry in the
    settings' attribute map (``department`` -> ``departmentNumber`` for OpenLDAP); the manager
    is given as a login and written as that user's DN. New users go under ``people_dn``
    (default ``base_dn``) as ``uid=<login>`` (OpenLDAP) or ``cn=<display name>`` (AD).

    Disabling: AD flips userAccountControl's ACCOUNTDISABLE bit with an atomic delete-old/
    add-new modify (a concurrent change makes it fail rather than be overwritten); OpenLDAP
    has no standard disabled flag, so the entry moves to ``settings.disabled_bases[0]`` and
    back to ``people_dn`` (the model ``read_users`` reads). Passwords: the RFC 3062 Password
    Modify operation for OpenLDAP (the server hashes), unicodePwd over TLS for AD; a
    password never appears in an error.
    """

    def __init__(self, settings: LdapSettings, *, people_dn: str | None = None, groups_dn: str | None = None,
                 user_object_classes: Sequence[str] | None = None,
                 group_object_classes: Sequence[str] | None = None) -> None:
        self.settings = settings
        self.people_dn = people_dn or settings.base_dn
        self.groups_dn = groups_dn or settings.group_base or settings.base_dn
        ad = settings.flavor == "ad"
        self.user_object_classes = tuple(user_object_classes or (_AD_USER_CLASSES if ad else _OPENLDAP_USER_CLASSES))
        self.group_object_classes = tuple(group_object_classes or (("top", "group") if ad else ("groupOfNames",)))
        self._map = settings.effective_attribute_map
        self._session: _Session | None = None

    def __enter__(self) -> Self:
        self._session = _Session(self.settings, read_only=False).__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    # ----------------------------------------------------------------- users

    def find_user(self, login: str) -> LdapUser | None:
        """The user whose login attribute equals ``login`` (under base_dn, matching the user filter)."""
        login_attribute = self._attribute("login")
        search_filter = f"(&{self.settings.effective_user_filter}({login_attribute}={escape_filter_chars(login)}))"
        found = [
            _to_user(dn, raw, self.settings, self._map)
            for dn, raw in self._require().paged_search(self.settings.base_dn, search_filter,
                                                        _user_attributes(self.settings))
        ]
        if len(found) > 1:
            raise LdapError(f"{len(found)} entries have {login_attribute}={login!r}; refusing to pick one")
        return found[0] if found else None

    def create_user(self, profile: Mapping[str, Any], *, disabled: bool = False, password: str | None = None,
                    extra: Mapping[str, Any] | None = None) -> str:
        """Add a user from a provtui profile (plus raw ``extra`` attributes); returns its DN.

        Raises LdapConflict when the DN exists. AD creates accounts disabled until a password
        is set, so set the password, then enable.
        """
        values = self._attributes(profile, removing=False)
        login = str(profile.get("login") or "")
        if not login:
            raise LdapError("a new user needs a login")
        display = str(profile.get("displayName") or f"{profile.get('firstName', '')} {profile.get('lastName', '')}").strip()
        values.setdefault("cn", display or login)
        if {c.lower() for c in self.user_object_classes} & {"person", "organizationalperson", "inetorgperson", "user"}:
            values.setdefault("sn", str(profile.get("lastName") or login))  # person: MUST ( sn $ cn )
        if self.settings.flavor == "ad":
            rdn = f"cn={escape_rdn(str(values['cn']))}"
            values[USER_ACCOUNT_CONTROL] = 0x200 | (ACCOUNTDISABLE if disabled or password is None else 0)
        else:
            rdn = f"{self._attribute('login')}={escape_rdn(login)}"
        parent = self.people_dn
        if disabled and self.settings.flavor != "ad":
            parent = self._disabled_base()
        values.update(extra or {})
        dn = f"{rdn},{parent}"
        attributes = {k: v for k, v in values.items() if v not in (None, [], "")}
        self._write(f"add {dn}", lambda c: c.add(dn, list(self.user_object_classes), attributes))
        if password is not None:
            self.set_password(dn, password)
            if self.settings.flavor == "ad" and not disabled:
                self.set_disabled(dn, False)
        return dn

    def update_user(self, dn: str, changes: Mapping[str, Any]) -> str:
        """Apply profile changes (None removes the attribute); returns the DN, which changes
        when the login is the RDN (OpenLDAP's uid=) and the login changed."""
        values = self._attributes(changes, removing=True)
        rdn_attribute = split_dn(dn)[0].split("=", 1)[0].strip().lower()
        login_attribute = self._attribute("login")
        new_login = changes.get("login")
        if new_login and rdn_attribute == login_attribute.lower():
            dn = self.rename(dn, f"{login_attribute}={escape_rdn(str(new_login))}")
            values.pop(login_attribute, None)
        if values:
            modification = {name: [(ldap3.MODIFY_REPLACE, [] if value is None else [value])]
                            for name, value in values.items()}
            self._write(f"modify {dn}", lambda c: c.modify(dn, modification))
        return dn

    def rename(self, dn: str, new_rdn: str | None = None, *, new_parent: str | None = None) -> str:
        """Rename and/or move an entry; returns the new DN (the old RDN value is dropped)."""
        old_rdn, old_parent = split_dn(dn)
        rdn = new_rdn or old_rdn
        parent = new_parent or old_parent
        new_dn = f"{rdn},{parent}" if parent else rdn
        if normalise_dn(new_dn) == normalise_dn(dn):
            return dn
        self._write(f"rename {dn} to {new_dn}",
                    lambda c: c.modify_dn(dn, rdn, delete_old_dn=True, new_superior=new_parent))
        return new_dn

    def set_disabled(self, dn: str, disabled: bool) -> str:
        """Disable or enable a user; returns its DN (OpenLDAP moves it, so the DN changes)."""
        if self.settings.flavor == "ad":
            raw = self._require().read_entry(dn, "(objectClass=*)", [USER_ACCOUNT_CONTROL])
            if raw is None:
                raise LdapError(f"{dn} does not exist", result_code=32)
            current = first_value(raw, USER_ACCOUNT_CONTROL)
            old = int(current) if current and current.lstrip("-").isdigit() else None
            new = ((old or 0x200) | ACCOUNTDISABLE) if disabled else ((old or 0x200) & ~ACCOUNTDISABLE)
            if old == new:
                return dn
            change = ([(ldap3.MODIFY_REPLACE, [new])] if old is None
                      else [(ldap3.MODIFY_DELETE, [old]), (ldap3.MODIFY_ADD, [new])])  # compare-and-swap
            self._write(f"{'disable' if disabled else 'enable'} {dn}",
                        lambda c: c.modify(dn, {USER_ACCOUNT_CONTROL: change}))
            return dn
        target = self._disabled_base() if disabled else self.people_dn
        if normalise_dn(split_dn(dn)[1]) == normalise_dn(target):
            return dn
        return self.rename(dn, new_parent=target)

    def set_password(self, dn: str, password: str) -> None:
        """Set a user's password; it is never logged nor put in an error."""
        if not password:
            raise LdapError("refusing to set an empty password")
        if self.settings.flavor == "ad":
            if not (self.settings.tls or self.settings.uri.lower().startswith("ldaps://")):
                raise LdapError("Active Directory accepts passwords only over TLS (ldaps:// or tls='starttls')")
            value = ad_password_value(password)
            self._write(f"set the password of {dn}",
                        lambda c: c.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]}), secret=password)
            return
        self._write(f"set the password of {dn}",
                    lambda c: c.extend.standard.modify_password(user=dn, new_password=password), secret=password)

    def delete(self, dn: str) -> bool:
        """Delete a leaf entry; False when it was already gone (the goal either way)."""
        return self._write(f"delete {dn}", lambda c: c.delete(dn), accept=(32,)) == 0

    # ----------------------------------------------------------------- groups

    def create_group(self, name: str, member_dns: Sequence[str] = (), *, description: str | None = None) -> str:
        """Add a group under ``groups_dn``; a groupOfNames needs at least one member."""
        dn = f"cn={escape_rdn(name)},{self.groups_dn}"
        attributes: dict[str, Any] = {"cn": name}
        if member_dns:
            attributes[MEMBER] = list(member_dns)
        if description:
            attributes["description"] = description
        if self.settings.flavor == "ad":
            attributes["sAMAccountName"] = name
        self._write(f"add {dn}", lambda c: c.add(dn, list(self.group_object_classes), attributes))
        return dn

    def update_members(self, group_dn: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove members one value at a time, so a member already present (20) or
        already absent (16) is not an error. Removing a groupOfNames' last member is refused
        by the schema (objectClassViolation): delete the group instead."""
        for member in add:
            self._write(f"add {member} to {group_dn}",
                        lambda c, m=member: c.modify(group_dn, {MEMBER: [(ldap3.MODIFY_ADD, [m])]}), accept=(20,))
        for member in remove:
            self._write(f"remove {member} from {group_dn}",
                        lambda c, m=member: c.modify(group_dn, {MEMBER: [(ldap3.MODIFY_DELETE, [m])]}), accept=(16,))

    # ----------------------------------------------------------------- raw access (provtui.connectors.ldap_app)

    @property
    def connection(self) -> ldap3.Connection:
        """The bound ldap3 connection (e.g. to instrument its operations); not thread-safe."""
        return self._require()._require()

    def search(self, base: str, search_filter: str, attributes: Sequence[str]) -> list[tuple[str, dict[str, list[Any]]]]:
        """(dn, raw attributes) of every entry under ``base`` matching ``search_filter``, paged."""
        return list(self._require().paged_search(base, search_filter, attributes))

    def read(self, dn: str, attributes: Sequence[str], search_filter: str = "(objectClass=*)") -> dict[str, list[Any]] | None:
        """One entry's raw attributes; None when it does not exist or does not match ``search_filter``."""
        return self._require().read_entry(dn, search_filter, attributes)

    def modify(self, dn: str, modification: Mapping[str, Any], *, accept: Iterable[int] = ()) -> int:
        """A raw modify (attribute -> [(ldap3.MODIFY_*, values)]); the result code, 0 or one of ``accept``."""
        return self._write(f"modify {dn}", lambda c: c.modify(dn, dict(modification)), accept=accept)

    def groups(self, base: str, search_filter: str, attributes: Sequence[str]) -> list[tuple[str, dict[str, list[Any]], list[str]]]:
        """Group entries under ``base`` with their member DNs (paged; AD's ranged members read whole)."""
        return list(group_entries(self._require(), base, search_filter, attributes))

    # ----------------------------------------------------------------- internals

    def _require(self) -> _Session:
        if self._session is None:
            raise LdapError("LdapWriter is not open: use it as a context manager")
        return self._session

    def _write(self, action: str, operation: Any, *, secret: str | None = None, accept: Iterable[int] = ()) -> int:
        return self._require().write(action, operation, secret=secret, accept=accept)

    def _attribute(self, key: str) -> str:
        candidates = self._map.get(key)
        if not candidates:
            raise LdapError(f"the attribute map has no entry for {key!r}")
        return candidates[0]

    def _disabled_base(self) -> str:
        if not self.settings.disabled_bases:
            raise LdapError("disabling an OpenLDAP user moves it to settings.disabled_bases[0], and none is set")
        return self.settings.disabled_bases[0]

    def _attributes(self, profile: Mapping[str, Any], *, removing: bool) -> dict[str, Any]:
        """LDAP attribute -> value for the mapped profile keys; the manager's login becomes a DN."""
        values: dict[str, Any] = {}
        for key, value in profile.items():
            if key not in self._map:
                continue
            if value is None or value == "":
                if removing:
                    values[self._attribute(key)] = None
                continue
            if key == "manager":
                manager = self.find_user(str(value))
                if manager is None:
                    raise LdapError(f"manager {value!r} not found in {self.settings.base_dn}")
                value = manager.dn
            values[self._attribute(key)] = value if isinstance(value, (bytes, int)) else str(value)
        return values
