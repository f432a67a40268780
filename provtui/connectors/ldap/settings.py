"""How to reach and read a directory (:class:`LdapSettings`) and each flavour's defaults (OpenLDAP, AD)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

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
# AD: no builtin group (Domain Users, Administrators, the 40 others a domain starts with): each is a critical system object
DEFAULT_GROUP_FILTERS = {"openldap": "(objectClass=groupOfNames)", "ad": "(&(objectClass=group)(!(isCriticalSystemObject=TRUE)))"}
PRIMARY_GROUP_ID = "primaryGroupID"  # AD: the RID of the group a user is a member of without being in its member list
OBJECT_SID = "objectSid"
CHANGE_ATTRIBUTES = {"openldap": "modifyTimestamp", "ad": "whenChanged"}
UUID_ATTRIBUTES = {"openldap": "entryUUID", "ad": "objectGUID"}
# When an account stops working: AD's accountExpires (100 ns ticks since 1601; 0 and 2^63-1 mean never), the
# shadowAccount class's shadowExpire on OpenLDAP (days since 1970; -1 means never).
EXPIRY_ATTRIBUTES = {"openldap": "shadowExpire", "ad": "accountExpires"}
USER_ACCOUNT_CONTROL = "userAccountControl"
ACCOUNTDISABLE = 0x2
MEMBER = "member"
UNIQUE_MEMBER = "uniqueMember"  # groupOfUniqueNames' member list
MEMBER_ATTRIBUTES = (MEMBER, UNIQUE_MEMBER)


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
    tls: Literal["ldaps", "starttls", "none"] | None = None  # None: as the URI says (ldaps:// or plain)
    ca_file: str | None = None
    ca_certificates: str | None = field(default=None, repr=False)  # the directory's CA as PEM text (beside ca_file)
    # the bind password itself, when a server's secret holds it (else read from ``password_env`` at connect)
    password: str | None = field(default=None, repr=False)
    password_secret: str | None = None  # the name of that secret (a name, not a value)
    # the attribute whose value is a person's immutable id (default: the flavor's entryUUID / objectGUID)
    external_id_attribute: str | None = None

    def __post_init__(self) -> None:
        if self.flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {', '.join(FLAVORS)}, not {self.flavor!r}")
        if not re.match(r"^ldaps?://[^/\s]+/?$", self.uri, re.IGNORECASE):
            raise ValueError(f"uri must look like ldap://host[:port] or ldaps://host[:port], not {self.uri!r}")
        if not self.password_env and self.password is None and not self.password_secret:
            raise ValueError("password_env must name the environment variable holding the bind password (or password_secret a secret)")
        if not 1 <= self.page_size <= 100_000:
            raise ValueError("page_size must be between 1 and 100000")
        if self.timeout <= 0 or self.max_clock_skew < 0:
            raise ValueError("timeout must be positive and max_clock_skew not negative")
        if self.tls not in (None, "ldaps", "starttls", "none"):
            raise ValueError(f"tls must be 'ldaps', 'starttls' or 'none', not {self.tls!r}")
        if self.tls == "none" and self.uri.lower().startswith("ldaps://"):
            raise ValueError("tls 'none' does not go with an ldaps:// uri")
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
    def expiry_attribute(self) -> str:
        return EXPIRY_ATTRIBUTES[self.flavor]

    @property
    def uuid_attribute(self) -> str:
        return self.external_id_attribute or UUID_ATTRIBUTES[self.flavor]


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
