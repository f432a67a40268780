"""The LDAP target's operations, synchronous, on one lazily opened connection (see connector.py's
docstring for the design: remote ids are UUIDs, DNs resolved at each call, groups, disabling)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from provtui.connectors.base import AmbiguousMatch, Conflict, DownstreamError, RemoteUser
from provtui.connectors.ldap.ad_accounts import NO_TLS, derive_sam, domain_root, has_password, sam_candidates
from provtui.connectors.ldap.calls import Event, instrument
from provtui.connectors.ldap.directory_groups import GroupOperations
from provtui.connectors.ldap.entries import dn_within, first_raw, first_value, format_uuid, normalise_dn, split_dn
from provtui.connectors.ldap.errors import LdapConflict, LdapError
from provtui.connectors.ldap.settings import ACCOUNTDISABLE, MEMBER, USER_ACCOUNT_CONTROL
from provtui.connectors.ldap.target import (
    _NOT_ATTRIBUTES,
    EXTERNAL_ID,
    GROUP_ID_ATTRIBUTE,
    AttributeValues,
    LdapTarget,
    _get,
    _initial_password,
    _single,
    _text,
    _values,
    to_downstream,
    uuid_filter,
)
from provtui.connectors.ldap.writer import LdapWriter


class DirectoryCore(GroupOperations):
    """The target's operations, synchronous, on one lazily opened connection (one thread at a time)."""

    def __init__(self, target: LdapTarget) -> None:
        self.t = target
        self.settings = target.settings()
        self._writer: LdapWriter | None = None
        self._lock = threading.Lock()
        self._events: list[Event] | None = None
        self.user_attributes = ["*", target.uuid_attribute]
        self._group_attributes = ["cn", MEMBER, GROUP_ID_ATTRIBUTE, target.uuid_attribute]
        group_classes = target.group_object_classes or (("top", "group") if target.ad else ("groupOfNames",))
        self._group_classes = group_classes
        self._needs_member = any(c.lower() in ("groupofnames", "groupofuniquenames") for c in group_classes)

    # ----------------------------------------------------------------- plumbing

    def run(self, events: list[Event], function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one interface call; LDAP failures leave as DownstreamError (Conflict)."""
        with self._lock:
            self._events = events
            try:
                return function(*args, **kwargs)
            except LdapError as error:
                if error.retryable:
                    self._disconnect()  # a dropped or dead connection: reconnect next time
                raise to_downstream(error) from None
            except (ldap_exc.LDAPException, OSError) as exc:  # not wrapped by the session (should not happen)
                self._disconnect()
                raise DownstreamError(f"LDAP client error ({type(exc).__name__})", retryable=True) from None
            finally:
                self._events = None

    def _record(self, method: str, path: str, status: int | None, duration_ms: float) -> None:
        if self._events is not None:
            self._events.append((method, path, status, duration_ms))

    def _w(self) -> LdapWriter:
        if self._writer is None:
            writer = LdapWriter(
                self.settings,
                people_dn=self.t.base_dn,
                groups_dn=self.t.groups_dn,
                user_object_classes=self.t.user_object_classes,
                group_object_classes=self._group_classes,
            )
            started = time.perf_counter()
            try:
                writer.__enter__()
            except LdapError as error:
                self._record("BIND", self.t.bind_dn, error.result_code, (time.perf_counter() - started) * 1000)
                raise
            self._record("BIND", self.t.bind_dn, 0, (time.perf_counter() - started) * 1000)
            instrument(writer.connection, self._record)
            self._writer = writer
        return self._writer

    def _disconnect(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.__exit__(None, None, None)

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def _search(self, bases: Iterable[str], search_filter: str, attributes: Sequence[str]) -> list[tuple[str, dict]]:
        found: dict[str, tuple[str, dict]] = {}
        for base in bases:
            for dn, raw in self._w().search(base, search_filter, attributes):
                found.setdefault(normalise_dn(dn), (dn, raw))
        return list(found.values())

    # ----------------------------------------------------------------- users: lookups

    def _search_users(self, search_filter: str) -> list[tuple[str, dict]]:
        return self._search(self.t.user_bases, f"(&{self.settings.effective_user_filter}{search_filter})", self.user_attributes)

    def _resolve_user(self, remote_id: str) -> tuple[str, dict] | None:
        """The entry (current DN, attributes) whose UUID is ``remote_id``, or None."""
        search_filter = uuid_filter(self.t.uuid_attribute, remote_id)
        if search_filter is None:
            return None
        found = self._search_users(search_filter)
        if len(found) > 1:
            raise AmbiguousMatch(f"{len(found)} entries have {self.t.uuid_attribute}={remote_id}", status=409)
        return found[0] if found else None

    def _require_user(self, remote_id: str) -> tuple[str, dict]:
        found = self._resolve_user(remote_id)
        if found is None:
            raise DownstreamError(
                f"no entry with {self.t.uuid_attribute}={remote_id} under "
                f"{' or '.join(self.t.user_bases)} (deleted or moved outside provtui?)",
                status=404,
            )
        return found

    def _remote_user(self, dn: str, raw: Mapping[str, Any]) -> RemoteUser:
        remote_id = format_uuid(first_raw(raw, self.t.uuid_attribute))
        if not remote_id:
            raise DownstreamError(f"{dn} has no {self.t.uuid_attribute}: provtui cannot keep track of it", status=400)
        external = self.t.external_id_attribute.lower()
        skip = _NOT_ATTRIBUTES | {self.t.uuid_attribute.lower()}
        attributes: dict[str, Any] = {}
        external_id = None
        for name, values in raw.items():
            base = name.split(";", 1)[0]
            if base.lower() in skip:
                continue
            texts = [_text(v) for v in values or ()]
            if not texts or any(t is None for t in texts):
                continue  # binary: not something a mapping sends
            if base.lower() == external:
                external_id = texts[0]
                continue
            attributes[base] = texts[0] if len(texts) == 1 else texts
        attributes[EXTERNAL_ID] = external_id
        return RemoteUser(id=remote_id, active=not self._disabled(dn, raw), attributes=AttributeValues(attributes))

    def _disabled(self, dn: str, raw: Mapping[str, Any]) -> bool:
        t = self.t
        if t.ad:
            control = first_value(raw, USER_ACCOUNT_CONTROL)
            if control and control.lstrip("-").isdigit() and int(control) & ACCOUNTDISABLE:
                return True
        if t.disable_kind == "ou":
            return dn_within(dn, t.disabled_dn or "")
        if t.disable_kind == "attr":
            return self._has_disable_value(raw)
        return False

    def _has_disable_value(self, raw: Mapping[str, Any]) -> bool:
        wanted = (self.t.disable_value or "").lower()
        return any(v.lower() == wanted for v in _values(raw, self.t.disable_attribute or ""))

    def find_user(self, external_id: str | None, user_name: str | None) -> RemoteUser | None:
        """By provtui's id (authoritative) first, then by the naming attribute."""
        for attribute, value in ((self.t.external_id_attribute, external_id), (self.t.naming_attribute, user_name)):
            if not value:
                continue
            found = self._search_users(f"({attribute}={escape_filter_chars(str(value))})")
            if len(found) > 1:
                raise AmbiguousMatch(f"{len(found)} entries have {attribute}={value!r}; refusing to pick one", status=409)
            if found:
                return self._remote_user(*found[0])
        return None

    def get_user(self, remote_id: str) -> RemoteUser | None:
        found = self._resolve_user(remote_id)
        return self._remote_user(*found) if found else None

    # ----------------------------------------------------------------- users: changes

    def _ldap_values(self, attributes: Mapping[str, Any], *, keep_none: bool) -> dict[str, Any]:
        """The attributes to write: externalId under its LDAP attribute, empty values dropped
        (or kept as None, "remove", when ``keep_none``)."""
        external = self.t.external_id_attribute
        if EXTERNAL_ID in attributes and any(k.lower() == external.lower() for k in attributes if k != EXTERNAL_ID):
            raise DownstreamError(
                f"the app's mappings write {external}, which holds provtui's user id in this "
                f"directory: map another attribute, or name another for the id: `provtui app update APP --external-id-attribute ATTR`"
            )
        values: dict[str, Any] = {}
        for key, value in attributes.items():
            name = external if key == EXTERNAL_ID else key
            if isinstance(value, (list, tuple, set, frozenset)):
                value = [str(v) for v in value if v not in (None, "")] or None
            elif isinstance(value, bool):
                value = "TRUE" if value else "FALSE"
            elif value is not None and not isinstance(value, (bytes, int)):
                value = str(value)
            if value is None or value == "":
                if keep_none:
                    values[name] = None
                continue
            values[name] = value
        return values

    def create_user(self, attributes: Mapping[str, Any], active: bool) -> RemoteUser:
        t, w = self.t, self._w()
        values = self._ldap_values(attributes, keep_none=False)
        naming = _single(_get(values, t.naming_attribute))
        if not naming:
            raise DownstreamError(f"the account has no {t.naming_attribute}: map it (e.g. from user.login)", status=400)
        naming_filter = f"({t.naming_attribute}={escape_filter_chars(str(naming))})"
        exists = f"an entry with {t.naming_attribute}={naming!r} already exists"
        if t.ad:  # one search of the whole domain: whose the name is, and whether it is this person's account here
            holders: dict[str, str | None] = {}

            def holder(name: str) -> str | None:
                if name not in holders:
                    holders[name] = self._sam_holder(name)
                return holders[name]

            first = holder(str(naming))
            if first is not None and any(dn_within(first, base) for base in t.user_bases) and self._search_users(naming_filter):
                raise Conflict(exists, status=409)  # the person's account already: the reconciler links it
            if active and not t.uses_tls:
                raise DownstreamError(NO_TLS, status=400)  # refused before anything is added
            naming = self._free_sam(str(naming), holder=holder)
            values = {k: v for k, v in values.items() if k.lower() != t.naming_attribute.lower()}
            values[t.naming_attribute] = naming
        elif self._search_users(naming_filter):  # the person's account already: the reconciler links it
            raise Conflict(exists, status=409)
        login = naming if t.ad else _single(_get(values, t.rdn_attr))
        if not login:
            raise DownstreamError(f"the account has no {t.rdn_attr}, which names its entry", status=400)
        profile: dict[str, Any] = {"login": str(login)}
        display = _single(_get(values, "cn")) or _single(_get(values, "displayName"))
        if display:
            profile["displayName"] = str(display)
        surname = _single(_get(values, "sn"))
        if surname:
            profile["lastName"] = str(surname)
        extra = {k: v for k, v in values.items() if k.lower() != t.login_attribute.lower()}
        if t.ad:  # named by its sAMAccountName unless cn is mapped; a cn is at most 64 characters
            cn = str(_single(_get(extra, "cn")) or login)[:64]
            extra = {**{k: v for k, v in extra.items() if k.lower() != "cn"}, "cn": cn}
        writer_disabled = not active and (t.ad or t.disable_kind == "ou")
        if not active and t.disable_kind == "attr":
            name = t.disable_attribute or ""
            current = _get(extra, name)
            extra = {k: v for k, v in extra.items() if k.lower() != name.lower()}
            extra[name] = ([] if current is None else list(current) if isinstance(current, list) else [current]) + [t.disable_value]
        password = _initial_password() if t.ad and t.uses_tls else None
        try:
            dn = w.create_user(profile, disabled=writer_disabled, password=password, extra=extra)
        except LdapConflict as conflict:
            if self._search_users(naming_filter):  # added meanwhile: the reconciler links it
                raise Conflict(conflict.message, status=409) from None
            raise DownstreamError(self._clash(conflict), status=409) from None
        if t.ad and not active and t.disable_kind == "ou":
            dn = self._move(dn, new_parent=t.disabled_dn)
        raw = w.read(dn, self.user_attributes)
        if raw is None:
            raise DownstreamError(f"{dn} could not be read back after it was added", retryable=True)
        return self._remote_user(dn, raw)

    def _free_sam(self, login: str, own: str | None = None, holder: Callable[[str], str | None] | None = None) -> str:
        """A sAMAccountName for ``login`` that no entry of the whole domain holds but ``own`` (ad_accounts);
        ``holder``: how to look a name up (default: a search of the domain)."""
        name, taken_by = derive_sam(login, holder or (lambda candidate: self._sam_holder(candidate, own)))
        if taken_by is not None:
            raise DownstreamError(
                f"sAMAccountName {name!r} is taken in the domain by {taken_by} ({self._kind(taken_by)}), outside "
                f"the app's entries: sAMAccountName is unique across the whole domain",
                status=409,
            )
        return name

    def _sam_holder(self, name: str, own: str | None = None) -> str | None:
        """The DN of the entry anywhere in the domain (but ``own``) whose sAMAccountName is ``name``."""
        found = self._w().search(domain_root(self.t.base_dn), f"(sAMAccountName={escape_filter_chars(name)})", ["objectClass"])
        others = [dn for dn, _ in found if own is None or normalise_dn(dn) != normalise_dn(own)]
        # (a domain holds a name once; a test directory may not: the one among the app's entries first)
        others.sort(key=lambda dn: not any(dn_within(dn, base) for base in self.t.user_bases))
        return others[0] if others else None

    def _kind(self, dn: str) -> str:
        raw = self._w().read(dn, ["objectClass"]) or {}
        classes = {str(_text(v)).lower() for v in raw.get("objectClass", [])}
        return "a group" if "group" in classes else "a computer" if "computer" in classes else "a user" if "user" in classes else "an entry"

    def _clash(self, conflict: LdapConflict) -> str:
        """What an entryAlreadyExists on create says: which name clashes, with what, where."""
        if conflict.dn is None:
            return f"{conflict.message}: the name is taken; change what {self.t.rdn_attr} is mapped from"
        rdn, parent = split_dn(conflict.dn)
        return (
            f"{conflict.message}: {rdn} is taken under {parent} by {self._kind(conflict.dn)} with another "
            f"{self.t.naming_attribute}; change what {self.t.rdn_attr} is mapped from"
        )

    def update_user(self, remote_id: str, changed: Mapping[str, Any], active: bool | None) -> None:
        t, w = self.t, self._w()
        dn, raw = self._require_user(remote_id)
        new_external = changed.get(EXTERNAL_ID)
        current_external = next(iter(_values(raw, t.external_id_attribute)), None)
        if new_external and current_external and current_external != str(new_external):
            # Linking must not overwrite another user's link, nor data the directory keeps there.
            raise DownstreamError(
                f"{dn} already has {t.external_id_attribute}={current_external!r}, not this user's "
                f"provtui id: it is another user's account, or the directory uses "
                f"{t.external_id_attribute} for something else (then name an unused attribute: "
                f"`provtui app update APP --external-id-attribute ATTR`)",
                status=409,
            )
        values = self._ldap_values(changed, keep_none=True)
        if t.ad:
            dn, values = self._renamed_sam(dn, raw, values)
        rdn_key = next((k for k in values if k.lower() == t.rdn_attr.lower()), None)
        if rdn_key is not None:
            current_rdn = split_dn(dn)[0]
            if current_rdn.partition("=")[0].strip().lower() == t.rdn_attr.lower():
                new_value = _single(values.pop(rdn_key))
                if not new_value:
                    raise DownstreamError(f"{t.rdn_attr} names the entry {dn}: it cannot be removed", status=400)
                new_rdn = f"{t.rdn_attr}={escape_rdn(str(new_value))}"
                if normalise_dn(new_rdn) != normalise_dn(current_rdn):
                    dn = self._move(dn, new_rdn=new_rdn)
            # else: the entry is named by another attribute (linked, not created by us): a plain modify
        if values:
            modification = {
                name: [(ldap3.MODIFY_REPLACE, [] if value is None else value if isinstance(value, list) else [value])]
                for name, value in values.items()
            }
            w.modify(dn, modification)
        if active is not None:
            self._set_active(dn, raw, active)

    def _renamed_sam(self, dn: str, raw: Mapping[str, Any], values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A login change on AD: the sAMAccountName derived again (domain-wide), and an entry named by it renamed."""
        t = self.t
        key = next((k for k in values if k.lower() == t.naming_attribute.lower()), None)
        wanted = _single(values[key]) if key else None
        if key is None or not wanted:
            return dn, values
        current = first_value(raw, t.naming_attribute)
        if current in sam_candidates(str(wanted)):  # what it derives to already
            return dn, {k: v for k, v in values.items() if k != key}
        name = self._free_sam(str(wanted), own=dn)
        values = {**values, key: name}
        if current and split_dn(dn)[0].lower() == f"cn={escape_rdn(current)}".lower() and not any(k.lower() == "cn" for k in values):
            dn = self._move(dn, new_rdn=f"CN={escape_rdn(name)}")  # named by its old sAMAccountName: by the new one
        return dn, values

    def _set_active(self, dn: str, raw: Mapping[str, Any], active: bool) -> str:
        """Enable or disable by the app's method (each step a no-op when already so); returns the DN."""
        t, w = self.t, self._w()
        if t.ad:
            if active and self._disabled(dn, raw) and not has_password(raw):  # a linked, passwordless account: never enabled so
                if not t.uses_tls:
                    raise DownstreamError(f"{dn} has no password: {NO_TLS}", status=400)
                w.set_password(dn, _initial_password())
            w.set_disabled(dn, not active)  # compare-and-swap on userAccountControl
        if t.disable_kind == "ou":
            within = dn_within(dn, t.disabled_dn or "")
            if active == within:
                if t.ad:
                    dn = self._move(dn, new_parent=t.base_dn if active else t.disabled_dn)
                else:
                    new_dn = w.set_disabled(dn, not active)  # moves to disabled_bases[0] / back to base_dn
                    if normalise_dn(new_dn) != normalise_dn(dn):
                        self._retarget_members(dn, new_dn)
                    dn = new_dn
        elif t.disable_kind == "attr":
            name, value = t.disable_attribute or "", t.disable_value or ""
            if not active and not self._has_disable_value(raw):
                try:
                    w.modify(dn, {name: [(ldap3.MODIFY_ADD, [value])]}, accept=(20,))
                except LdapError as error:
                    if error.result_code != 19:  # constraintViolation: a single-valued attribute in use
                        raise
                    w.modify(dn, {name: [(ldap3.MODIFY_REPLACE, [value])]})
            elif active and self._has_disable_value(raw):
                w.modify(dn, {name: [(ldap3.MODIFY_DELETE, [value])]}, accept=(16,))
        return dn

    def _move(self, dn: str, *, new_rdn: str | None = None, new_parent: str | None = None) -> str:
        """Rename/move an entry and point the groups that list it at its new DN."""
        new_dn = self._w().rename(dn, new_rdn, new_parent=new_parent)
        if normalise_dn(new_dn) != normalise_dn(dn):
            self._retarget_members(dn, new_dn)
        return new_dn

    def delete_user(self, remote_id: str) -> None:
        found = self._resolve_user(remote_id)
        if found is None:
            return  # already gone: the goal
        dn = found[0]
        self._retarget_members(dn, None)
        self._w().delete(dn)

    def set_password(self, remote_id: str, password: str) -> None:
        if self.t.ad and not self.t.uses_tls:
            raise DownstreamError("Active Directory accepts passwords (unicodePwd) only over TLS: use an ldaps:// URI or tls=starttls")
        dn, _ = self._require_user(remote_id)
        self._w().set_password(dn, password)
