"""An LDAP app's configuration (:class:`LdapTarget`, from ``app["ldap"]``) and the pure helpers of the
target connector: UUID filters, attribute values, group names, and LDAP errors as the contract's."""

from __future__ import annotations

import secrets
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ldap3.utils.dn import escape_rdn

from provtui.connectors.base import Conflict, DownstreamError
from provtui.connectors.ldap.entries import dn_within, split_dn
from provtui.connectors.ldap.errors import LdapConflict, LdapError
from provtui.connectors.ldap.settings import DEFAULT_GROUP_FILTERS, UUID_ATTRIBUTES, LdapSettings

EXTERNAL_ID = "externalId"
DEFAULT_EXTERNAL_ID_ATTRIBUTES = {"openldap": "employeeNumber", "ad": "employeeNumber"}
DEFAULT_NAMING_ATTRIBUTES = {"openldap": "uid", "ad": "sAMAccountName"}
GROUP_MARKER = "provtui:"  # description value prefix carrying provtui's group id
GROUP_ID_ATTRIBUTE = "description"
_NOT_ATTRIBUTES = frozenset({"objectclass", "userpassword", "unicodepwd"})
_UUID_CHUNK = 50  # remote ids per (|(entryUUID=...)...) search
_STATUS_BY_CODE = {32: 404, 68: 409, 48: 401, 49: 401, 50: 403}
# The groups listed for import: any OpenLDAP group with a member list, not only the groupOfNames it pushes.
LISTED_GROUP_FILTERS = {**DEFAULT_GROUP_FILTERS, "openldap": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"}


@dataclass(frozen=True)
class LdapTarget:
    """An LDAP app's connection and conventions, with every default filled in."""

    uri: str
    bind_dn: str
    password_env: str
    base_dn: str
    flavor: str
    rdn_attr: str
    disable_kind: str  # "ou" | "attr" | "uac"
    disabled_dn: str | None
    disable_attribute: str | None
    disable_value: str | None
    groups_dn: str
    naming_attribute: str
    external_id_attribute: str
    uuid_attribute: str
    user_filter: str | None
    group_filter: str | None
    user_object_classes: tuple[str, ...] | None
    group_object_classes: tuple[str, ...] | None
    empty_member: str
    timeout: float
    tls: str | None
    ca_file: str | None
    password: str | None = field(default=None, repr=False)  # a server's secret, resolved (never in the record)
    ca_certificates: str | None = field(default=None, repr=False)  # the directory's CA, PEM text

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LdapTarget:
        """Read ``app["ldap"]``; raises ValueError naming what is wrong."""
        missing = [k for k in ("uri", "bind_dn", "base_dn") if not config.get(k)]
        if not config.get("password_env") and config.get("password") is None:
            missing.append("password_env")
        if missing:
            raise ValueError(f"the LDAP target has no {', '.join(missing)}")
        flavor = config.get("flavor") or "openldap"
        if flavor not in DEFAULT_NAMING_ATTRIBUTES:
            raise ValueError(f"flavor must be openldap or ad, not {flavor!r}")
        ad = flavor == "ad"
        rdn_attr = config.get("rdn_attr") or ("cn" if ad else "uid")
        if ad and rdn_attr.lower() != "cn":
            raise ValueError(f"Active Directory users are named cn=...: rdn_attr {rdn_attr!r} is not supported")
        method = config.get("disable_method") or ("uac" if ad else "")
        disabled_dn = attribute = value = None
        if method == "uac":
            if not ad:
                raise ValueError("disable_method uac (userAccountControl) is for Active Directory only")
            kind = "uac"
        elif method.startswith("ou:") and "=" in method[3:]:
            kind, disabled_dn = "ou", method[3:].strip()
        elif method.startswith("attr:") and "=" in method[5:]:
            kind = "attr"
            attribute, _, value = (part.strip() for part in method[5:].partition("="))
            if not attribute or not value:
                raise ValueError(f"disable_method {method!r} must be attr:NAME=VALUE")
        else:
            raise ValueError(f"disable_method must be ou:DN, attr:NAME=VALUE or (AD) uac, not {method!r}")
        tls = config.get("tls")
        classes = config.get("user_object_classes")
        group_classes = config.get("group_object_classes")
        return cls(
            uri=config["uri"],
            bind_dn=config["bind_dn"],
            password_env=config.get("password_env") or "",
            base_dn=config["base_dn"],
            flavor=flavor,
            rdn_attr=rdn_attr,
            disable_kind=kind,
            disabled_dn=disabled_dn,
            disable_attribute=attribute,
            disable_value=value,
            groups_dn=config.get("groups_dn") or config["base_dn"],
            naming_attribute=config.get("naming_attribute") or DEFAULT_NAMING_ATTRIBUTES[flavor],
            external_id_attribute=config.get("external_id_attribute") or DEFAULT_EXTERNAL_ID_ATTRIBUTES[flavor],
            uuid_attribute=config.get("uuid_attribute") or UUID_ATTRIBUTES[flavor],
            user_filter=config.get("user_filter"),
            group_filter=config.get("group_filter"),
            user_object_classes=tuple(classes) if classes else None,
            group_object_classes=tuple(group_classes) if group_classes else None,
            empty_member=config.get("empty_member", ""),
            timeout=float(config.get("timeout") or 10.0),
            tls=tls,
            ca_file=config.get("ca_file"),
            password=config.get("password"),
            ca_certificates=config.get("ca_certificates"),
        )

    @property
    def ad(self) -> bool:
        return self.flavor == "ad"

    @property
    def uses_tls(self) -> bool:
        return self.tls in ("ldaps", "starttls") or self.uri.lower().startswith("ldaps://")

    @property
    def login_attribute(self) -> str:
        """What LdapWriter calls the login: the RDN attribute (OpenLDAP) or sAMAccountName (AD)."""
        return self.naming_attribute if self.ad else self.rdn_attr

    def settings(self) -> LdapSettings:
        return LdapSettings(
            uri=self.uri,
            bind_dn=self.bind_dn,
            password_env=self.password_env,
            base_dn=self.base_dn,
            user_filter=self.user_filter,
            group_base=self.groups_dn,
            flavor=self.flavor,  # type: ignore[arg-type]
            attribute_map={"login": self.login_attribute},
            timeout=self.timeout,
            group_filter=self.group_filter,
            disabled_bases=(self.disabled_dn,) if self.disabled_dn else (),
            tls=self.tls,
            ca_file=self.ca_file,
            password=self.password,
            ca_certificates=self.ca_certificates,
        )

    @property
    def user_bases(self) -> tuple[str, ...]:
        """Where users are looked for: base_dn, and the disabled OU when it lies outside it."""
        if self.disabled_dn and not dn_within(self.disabled_dn, self.base_dn):
            return self.base_dn, self.disabled_dn
        return (self.base_dn,)


def uuid_filter(attribute: str, remote_id: str) -> str | None:
    """The filter matching the entry whose UUID attribute is ``remote_id``; None if it is no UUID.

    objectGUID is an octet string: AD (and our test schema) match its 16 little-endian bytes.
    """
    try:
        value = uuid_module.UUID(str(remote_id))
    except ValueError:
        return None
    if attribute.lower() == "objectguid":
        escaped = "".join("\\" + format(b, "02x") for b in value.bytes_le)
        return f"({attribute}={escaped})"
    return f"({attribute}={value})"


def _text(value: Any) -> str | None:
    """An attribute value as text; None for binary values (photos, SIDs, GUIDs)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else str(value)


def _values(raw: Mapping[str, Any], attribute: str) -> list[str]:
    """Every text value of ``attribute`` (case-insensitive, options such as ;range ignored)."""
    wanted = attribute.lower()
    out: list[str] = []
    for name, values in raw.items():
        if name.split(";", 1)[0].lower() == wanted:
            out.extend(t for t in (_text(v) for v in values or ()) if t is not None)
    return out


def group_name(dn: str, raw: Mapping[str, Any]) -> str:
    """A group's name: the ``cn`` value its RDN holds, else its first cn, else the RDN's value."""
    rdn = split_dn(dn)[0].partition("=")[2]
    names = _values(raw, "cn")
    return next((n for n in names if escape_rdn(n) == rdn), names[0] if names else rdn)


def _get(values: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``values[name]`` with the key matched case-insensitively (LDAP attribute names are)."""
    lower = name.lower()
    for key, value in values.items():
        if key.lower() == lower:
            return value
    return default


def _single(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


class AttributeValues(dict):
    """A RemoteUser's attributes: looked up case-insensitively, as LDAP compares attribute names."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self._names = {key.lower(): key for key in values}

    def _key(self, key: object) -> object:
        return self._names.get(key.lower(), key) if isinstance(key, str) else key

    def get(self, key: object, default: Any = None) -> Any:
        return super().get(self._key(key), default)

    def __getitem__(self, key: object) -> Any:
        return super().__getitem__(self._key(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._key(key))


def to_downstream(error: LdapError) -> DownstreamError:
    """An LdapError as the reconciler's error (see connector.py's docstring for ``status``)."""
    code = error.result_code
    if isinstance(error, LdapConflict):
        return Conflict(error.message, status=409)
    if error.retryable or code is None:
        status = None
    else:
        status = _STATUS_BY_CODE.get(code, 400)
    return DownstreamError(error.message, status=status, retryable=error.retryable)


def _initial_password() -> str:
    """An unguessable password meeting AD's complexity rules (four character classes)."""
    return f"{secrets.token_urlsafe(24)}aZ9!"
