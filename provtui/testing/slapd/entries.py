"""LDIF and entries for a test slapd: inetOrgPersons, groupOfNames, AD-flavoured users and groups, bulk people."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ldap3.utils.dn import escape_rdn

AD_TEST_USER_FILTER = "(objectClass=provtuiADUser)"
"""The user filter for AD-flavoured entries in slapd (AD's objectCategory=person cannot be modelled)."""
AD_TEST_GROUP_FILTER = "(objectClass=group)"

UF_ACCOUNTDISABLE = 0x2
UF_NORMAL_ACCOUNT = 0x200

_SAFE_LDIF_VALUE = re.compile(r"^[\x01-\x09\x0b-\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b-\x0c\x0e-\x7f]*$")

Attributes = Mapping[str, Any]
Entry = tuple[str, Attributes]


def ssha(password: str) -> str:
    """An RFC 2307 {SSHA} hash, so no plaintext password is written to slapd.conf."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def generalized_time(when: datetime | None = None) -> str:
    """``when`` (default now) as an LDAP GeneralizedTime in UTC, to the second: 20240131235959Z."""
    when = datetime.now(UTC) if when is None else when.astimezone(UTC)
    return when.strftime("%Y%m%d%H%M%SZ")


# --------------------------------------------------------------------------- LDIF and entries


def _ldif_line(name: str, value: Any) -> str:
    if isinstance(value, bytes):
        return f"{name}:: {base64.b64encode(value).decode()}"
    text = str(value)
    if text == "" or _SAFE_LDIF_VALUE.match(text) and not text.endswith(" "):
        return f"{name}: {text}"
    return f"{name}:: {base64.b64encode(text.encode()).decode()}"


def to_ldif(entries: Iterable[Entry | Mapping[str, Any]]) -> str:
    """LDIF for ``(dn, attributes)`` pairs (or mappings with a ``dn`` key).

    A value may be str, bytes, int or a list of them; None and empty lists are skipped;
    anything not SAFE-STRING by RFC 2849 (non-ASCII, leading space/colon/<) is base64.
    """
    records: list[str] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            attributes = dict(entry)
            dn = attributes.pop("dn")
        else:
            dn, attributes = entry
        lines = [_ldif_line("dn", dn)]
        for name, values in attributes.items():
            if values is None:
                continue
            for value in values if isinstance(values, (list, tuple, set, frozenset)) else [values]:
                lines.append(_ldif_line(name, value))
        records.append("\n".join(lines))
    return "\n\n".join(records) + "\n"


def rdn_value(dn: str) -> tuple[str, str]:
    attribute, _, value = dn.split(",", 1)[0].partition("=")
    return attribute.strip().lower(), value.strip()


def ou_entry(parent_dn: str, name: str) -> Entry:
    return f"ou={name},{parent_dn}", {"objectClass": ["organizationalUnit"], "ou": name}


def person_entry(
    parent_dn: str, uid: str, given_name: str, surname: str, *, mail: str | None = None, password: str | None = None, **extra: Any
) -> Entry:
    """An inetOrgPerson ``uid=<uid>,<parent_dn>``; ``extra`` adds attributes (title=..., manager=dn)."""
    attributes: dict[str, Any] = {
        "objectClass": ["inetOrgPerson"],
        "uid": uid,
        "cn": f"{given_name} {surname}".strip(),
        "givenName": given_name or None,
        "sn": surname,
        "mail": mail if mail is not None else f"{uid}@example.org",
        "userPassword": ssha(password) if password else None,
    }
    attributes.update(extra)
    return f"uid={uid},{parent_dn}", attributes


def group_entry(parent_dn: str, cn: str, member_dns: Sequence[str], **extra: Any) -> Entry:
    """A groupOfNames; it needs at least one member (the schema says MUST member)."""
    if not member_dns:
        raise ValueError("groupOfNames needs at least one member; use ad_group_entry for an empty group")
    return f"cn={cn},{parent_dn}", {"objectClass": ["groupOfNames"], "cn": cn, "member": list(member_dns), **extra}


def ad_user_entry(
    parent_dn: str,
    sam_account_name: str,
    given_name: str,
    surname: str,
    *,
    disabled: bool = False,
    user_account_control: int | None = None,
    upn_domain: str = "example.org",
    when_changed: datetime | str | None = None,
    object_guid: bytes | None = None,
    **extra: Any,
) -> Entry:
    """An AD-flavoured user ``cn=<given> <surname>,<parent_dn>`` (inetOrgPerson + provtuiADUser).

    ``whenChanged`` defaults to now; slapd does not maintain it, so a test changing the
    entry must set it again.
    """
    if user_account_control is None:
        user_account_control = UF_NORMAL_ACCOUNT | (UF_ACCOUNTDISABLE if disabled else 0)
    if not isinstance(when_changed, str):
        when_changed = generalized_time(when_changed)
    cn = f"{given_name} {surname}".strip()
    attributes: dict[str, Any] = {
        "objectClass": ["inetOrgPerson", "provtuiADUser"],
        "cn": cn,
        "givenName": given_name or None,
        "sn": surname,
        "displayName": cn,
        "sAMAccountName": sam_account_name,
        "userPrincipalName": f"{sam_account_name}@{upn_domain}",
        "userAccountControl": user_account_control,
        "whenChanged": when_changed,
        "whenCreated": when_changed,
        "objectGUID": object_guid if object_guid is not None else secrets.token_bytes(16),
    }
    attributes.update(extra)
    return f"cn={escape_rdn(cn)},{parent_dn}", attributes


def ad_group_entry(parent_dn: str, cn: str, member_dns: Sequence[str] = (), **extra: Any) -> Entry:
    """An AD-style ``group`` (member optional; global security group type)."""
    attributes: dict[str, Any] = {
        "objectClass": ["group"],
        "cn": cn,
        "sAMAccountName": cn,
        "groupType": -2147483646,
        "member": list(member_dns) or None,
        "whenChanged": generalized_time(),
    }
    attributes.update(extra)
    return f"cn={escape_rdn(cn)},{parent_dn}", attributes


def generate_people(parent_dn: str, count: int, prefix: str = "user", start: int = 0) -> Iterator[Entry]:
    """``count`` inetOrgPersons ``<prefix>00000``... for bulk loads (departments and titles vary)."""
    departments = ("Sales", "Engineering", "Finance", "Support", "Marketing")
    for index in range(start, start + count):
        uid = f"{prefix}{index:05d}"
        yield person_entry(
            parent_dn,
            uid,
            f"Given{index}",
            f"Family{index}",
            title=f"Title {index % 7}",
            departmentNumber=departments[index % len(departments)],
        )
