"""LDAP and Active Directory over ldap3: as an import *source* and as a provisioning *target*.

Modules, each depending only on those above it:

- ``settings``  — :class:`LdapSettings` (where and how to read) and each flavour's defaults;
- ``errors``    — :class:`LdapError` (``retryable``, ``result_code``) and :class:`LdapConflict`;
- ``entries``   — pure functions on what a directory returns (profiles, DNs, times, UUIDs, members)
  and the records a read yields, :class:`LdapUser` and :class:`LdapGroup`;
- ``session``   — one bound connection: connect, TLS, bind, paged search, read, write, errors scrubbed;
- ``source``    — reading for imports: :func:`read_users` (incremental, with a safe change mark) and
  :func:`read_groups`;
- ``writer``    — :class:`LdapWriter`: create, modify, rename/move, disable, delete, members, passwords;
- ``target``    — an LDAP app's configuration (:class:`LdapTarget`) and LDAP errors as the contract's;
- ``calls``     — the audit of every LDAP operation an app's connection makes;
- ``directory`` — the target's synchronous operations (remote ids are entry UUIDs);
- ``connector`` — :class:`LdapAppConnector`, the async :class:`provtui.connectors.base.Connector`.

Everything but ``connector`` is synchronous (ldap3's SYNC strategy).
"""

from provtui.connectors.ldap.connector import LdapAppConnector
from provtui.connectors.ldap.entries import (
    LdapGroup,
    LdapUser,
    dn_within,
    entry_to_profile,
    first_value,
    format_generalized_time,
    format_uuid,
    is_disabled,
    next_mark,
    normalise_dn,
    parse_generalized_time,
    parse_range_option,
    resolve_members,
    split_dn,
)
from provtui.connectors.ldap.errors import LdapConflict, LdapError
from provtui.connectors.ldap.settings import (
    ACCOUNTDISABLE,
    AD_ATTRIBUTE_MAP,
    CHANGE_ATTRIBUTES,
    DEFAULT_ATTRIBUTE_MAPS,
    DEFAULT_GROUP_FILTERS,
    DEFAULT_USER_FILTERS,
    FLAVORS,
    MEMBER,
    MEMBER_ATTRIBUTES,
    OPENLDAP_ATTRIBUTE_MAP,
    UNIQUE_MEMBER,
    USER_ACCOUNT_CONTROL,
    UUID_ATTRIBUTES,
    AttributeMap,
    Flavor,
    LdapSettings,
    normalise_attribute_map,
)
from provtui.connectors.ldap.source import group_entries, read_groups, read_users
from provtui.connectors.ldap.target import LISTED_GROUP_FILTERS, LdapTarget, group_name, to_downstream, uuid_filter
from provtui.connectors.ldap.writer import LdapWriter, ad_password_value

__all__ = [
    "ACCOUNTDISABLE",
    "AD_ATTRIBUTE_MAP",
    "CHANGE_ATTRIBUTES",
    "DEFAULT_ATTRIBUTE_MAPS",
    "DEFAULT_GROUP_FILTERS",
    "DEFAULT_USER_FILTERS",
    "FLAVORS",
    "LISTED_GROUP_FILTERS",
    "MEMBER",
    "MEMBER_ATTRIBUTES",
    "OPENLDAP_ATTRIBUTE_MAP",
    "UNIQUE_MEMBER",
    "USER_ACCOUNT_CONTROL",
    "UUID_ATTRIBUTES",
    "AttributeMap",
    "Flavor",
    "LdapAppConnector",
    "LdapConflict",
    "LdapError",
    "LdapGroup",
    "LdapSettings",
    "LdapTarget",
    "LdapUser",
    "LdapWriter",
    "ad_password_value",
    "dn_within",
    "entry_to_profile",
    "first_value",
    "format_generalized_time",
    "format_uuid",
    "group_entries",
    "group_name",
    "is_disabled",
    "next_mark",
    "normalise_attribute_map",
    "normalise_dn",
    "parse_generalized_time",
    "parse_range_option",
    "read_groups",
    "read_users",
    "resolve_members",
    "split_dn",
    "to_downstream",
    "uuid_filter",
]
