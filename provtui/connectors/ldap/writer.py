"""Writing to the directory (provisioning *into* LDAP/AD, issue #9): :class:`LdapWriter` creates,
modifies, renames/moves, disables/enables and deletes entries, manages group membership and sets
passwords, over one bound, writable connection; tested against slapd (AD paths against the
AD-flavoured schema; unicodePwd only by its encoding, since slapd has no AD password semantics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from provtui.connectors.ldap.ad_accounts import CREATED, NORMAL_ACCOUNT, PASSWD_NOTREQD
from provtui.connectors.ldap.entries import LdapUser, first_value, normalise_dn, split_dn
from provtui.connectors.ldap.errors import LdapConflict, LdapError
from provtui.connectors.ldap.session import Session
from provtui.connectors.ldap.settings import ACCOUNTDISABLE, MEMBER, USER_ACCOUNT_CONTROL, LdapSettings
from provtui.connectors.ldap.source import group_entries, to_user, user_attributes


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

    def __init__(
        self,
        settings: LdapSettings,
        *,
        people_dn: str | None = None,
        groups_dn: str | None = None,
        user_object_classes: Sequence[str] | None = None,
        group_object_classes: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        self.people_dn = people_dn or settings.base_dn
        self.groups_dn = groups_dn or settings.group_base or settings.base_dn
        ad = settings.flavor == "ad"
        self.user_object_classes = tuple(user_object_classes or (_AD_USER_CLASSES if ad else _OPENLDAP_USER_CLASSES))
        self.group_object_classes = tuple(group_object_classes or (("top", "group") if ad else ("groupOfNames",)))
        self._map = settings.effective_attribute_map
        self._session: Session | None = None

    def __enter__(self) -> Self:
        self._session = Session(self.settings, read_only=False).__enter__()
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
            to_user(dn, raw, self.settings, self._map)
            for dn, raw in self._require().paged_search(self.settings.base_dn, search_filter, user_attributes(self.settings))
        ]
        if len(found) > 1:
            raise LdapError(f"{len(found)} entries have {login_attribute}={login!r}; refusing to pick one")
        return found[0] if found else None

    def create_user(
        self, profile: Mapping[str, Any], *, disabled: bool = False, password: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> str:
        """Add a user from a provtui profile (plus raw ``extra`` attributes); returns its DN.

        Raises LdapConflict when the DN exists. AD creates accounts disabled until a password
        is set, so set the password, then enable.
        """
        values = self._attributes(profile, removing=False)
        login = str(profile.get("login") or "")
        if not login:
            raise LdapError("a new user needs a login")
        display = str(profile.get("displayName") or f"{profile.get('firstName', '')} {profile.get('lastName', '')}").strip()
        values.setdefault("cn", login if self.settings.flavor == "ad" else display or login)  # AD: a name unique in the domain
        if {c.lower() for c in self.user_object_classes} & {"person", "organizationalperson", "inetorgperson", "user"}:
            values.setdefault("sn", str(profile.get("lastName") or login))  # person: MUST ( sn $ cn )
        if self.settings.flavor == "ad":
            rdn = f"cn={escape_rdn(str(values['cn']))}"
            values[USER_ACCOUNT_CONTROL] = CREATED  # disabled, password not required: no policy refuses the add
        else:
            rdn = f"{self._attribute('login')}={escape_rdn(login)}"
        parent = self.people_dn
        if disabled and self.settings.flavor != "ad":
            parent = self._disabled_base()
        values.update(extra or {})
        dn = f"{rdn},{parent}"
        attributes = {k: v for k, v in values.items() if v not in (None, [], "")}
        try:
            self._write(f"add {dn}", lambda c: c.add(dn, list(self.user_object_classes), attributes))
        except LdapConflict as conflict:
            conflict.dn = dn
            raise
        if password is not None:
            self.set_password(dn, password)
            if self.settings.flavor == "ad":
                # with a password now: enabled (or left disabled), and "password not required" cleared
                self._swap_control(dn, CREATED, NORMAL_ACCOUNT | (ACCOUNTDISABLE if disabled else 0), "finish")
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
            modification = {name: [(ldap3.MODIFY_REPLACE, [] if value is None else [value])] for name, value in values.items()}
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
        self._write(f"rename {dn} to {new_dn}", lambda c: c.modify_dn(dn, rdn, delete_old_dn=True, new_superior=new_parent))
        return new_dn

    def set_disabled(self, dn: str, disabled: bool) -> str:
        """Disable or enable a user; returns its DN (OpenLDAP moves it, so the DN changes)."""
        if self.settings.flavor == "ad":
            raw = self._require().read_entry(dn, "(objectClass=*)", [USER_ACCOUNT_CONTROL])
            if raw is None:
                raise LdapError(f"{dn} does not exist", result_code=32)
            value = first_value(raw, USER_ACCOUNT_CONTROL)
            old = int(value) if value and value.lstrip("-").isdigit() else None
            # enabled: also "password not required" cleared (an account is enabled only once it has a password)
            new = ((old or 0x200) | ACCOUNTDISABLE) if disabled else ((old or 0x200) & ~ACCOUNTDISABLE & ~PASSWD_NOTREQD)
            self._swap_control(dn, old, new, "disable" if disabled else "enable")
            return dn
        target = self._disabled_base() if disabled else self.people_dn
        if normalise_dn(split_dn(dn)[1]) == normalise_dn(target):
            return dn
        return self.rename(dn, new_parent=target)

    def _swap_control(self, dn: str, old: int | None, new: int, action: str) -> None:
        """AD's userAccountControl from ``old`` to ``new``, as a compare-and-swap (no other writer's bit is lost)."""
        if old == new:
            return
        change = [(ldap3.MODIFY_REPLACE, [new])] if old is None else [(ldap3.MODIFY_DELETE, [old]), (ldap3.MODIFY_ADD, [new])]
        self._write(f"{action} {dn}", lambda c: c.modify(dn, {USER_ACCOUNT_CONTROL: change}))

    def set_password(self, dn: str, password: str) -> None:
        """Set a user's password; it is never logged nor put in an error."""
        if not password:
            raise LdapError("refusing to set an empty password")
        if self.settings.flavor == "ad":
            if not (self.settings.tls or self.settings.uri.lower().startswith("ldaps://")):
                raise LdapError("Active Directory accepts passwords only over TLS (ldaps:// or tls='starttls')")
            value = ad_password_value(password)
            self._write(
                f"set the password of {dn}", lambda c: c.modify(dn, {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]}), secret=password
            )
            return
        self._write(
            f"set the password of {dn}", lambda c: c.extend.standard.modify_password(user=dn, new_password=password), secret=password
        )

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
        try:
            self._write(f"add {dn}", lambda c: c.add(dn, list(self.group_object_classes), attributes))
        except LdapConflict as conflict:
            conflict.dn = dn
            raise
        return dn

    def update_members(self, group_dn: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove members one value at a time, so a member already present (20) or
        already absent (16) is not an error. Removing a groupOfNames' last member is refused
        by the schema (objectClassViolation): delete the group instead."""
        for member in add:
            self._write(
                f"add {member} to {group_dn}", lambda c, m=member: c.modify(group_dn, {MEMBER: [(ldap3.MODIFY_ADD, [m])]}), accept=(20,)
            )
        for member in remove:
            self._write(
                f"remove {member} from {group_dn}",
                lambda c, m=member: c.modify(group_dn, {MEMBER: [(ldap3.MODIFY_DELETE, [m])]}),
                accept=(16,),
            )

    # ----------------------------------------------------------------- raw access (the LDAP app's directory.py)

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

    def _require(self) -> Session:
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
