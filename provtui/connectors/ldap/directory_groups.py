"""The LDAP target's group operations (group push, and the listing app-group imports read): a part of
DirectoryCore, on its connection; the users' side is directory.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from provtui.connectors.base import AmbiguousMatch, Conflict, DownstreamError, RemoteGroup
from provtui.connectors.ldap.entries import first_raw, format_uuid, normalise_dn, resolve_members, split_dn
from provtui.connectors.ldap.errors import LdapConflict
from provtui.connectors.ldap.settings import MEMBER
from provtui.connectors.ldap.target import (
    _UUID_CHUNK,
    GROUP_ID_ATTRIBUTE,
    GROUP_MARKER,
    LISTED_GROUP_FILTERS,
    LdapTarget,
    _values,
    group_name,
    uuid_filter,
)


class GroupOperations:
    """Groups in the app's groups DN: found by provtui's id in their description, then by name; members kept as
    DNs, retargeted when a user's entry moves."""

    # provided by DirectoryCore, with its connection (_w), its searches (_search) and AD's names (_sam_holder, _kind)
    t: LdapTarget
    _group_attributes: list[str]
    _needs_member: bool

    def _search_groups(self, search_filter: str) -> list[tuple[str, dict]]:
        return self._search((self.t.groups_dn,), f"(&{self.settings.effective_group_filter}{search_filter})", self._group_attributes)

    def _resolve_group(self, remote_id: str) -> tuple[str, dict] | None:
        search_filter = uuid_filter(self.t.uuid_attribute, remote_id)
        if search_filter is None:
            return None
        found = self._search_groups(search_filter)
        return found[0] if found else None

    def _is_placeholder(self, member: str) -> bool:
        return normalise_dn(member) == normalise_dn(self.t.empty_member)

    def _remote_group(self, dn: str, raw: Mapping[str, Any], members: set[str] | None = None) -> RemoteGroup:
        """The group as the interface holds it; ``members`` (remote ids) when the caller resolved
        them already, else each ``member`` DN is read."""
        remote_id = format_uuid(first_raw(raw, self.t.uuid_attribute))
        if not remote_id:
            raise DownstreamError(f"{dn} has no {self.t.uuid_attribute}: provtui cannot keep track of it", status=400)
        external_id = next((v[len(GROUP_MARKER) :] for v in _values(raw, GROUP_ID_ATTRIBUTE) if v.startswith(GROUP_MARKER)), None)
        if members is None:
            members = self._uuids_of(m for m in _values(raw, MEMBER) if not self._is_placeholder(m))
        return RemoteGroup(id=remote_id, display_name=group_name(dn, raw), external_id=external_id, members=members)

    def list_groups(self) -> list[RemoteGroup]:
        """Every group under groups_dn with its user members' remote ids (see connector.py's docstring);
        an entry without a UUID attribute cannot be tracked and is left out."""
        uuid_attribute = self.t.uuid_attribute
        users = self._search(self.t.user_bases, self.settings.effective_user_filter, [uuid_attribute])
        remote_ids = {normalise_dn(dn): remote_id for dn, raw in users if (remote_id := format_uuid(first_raw(raw, uuid_attribute)))}
        search_filter = self.settings.effective_group_filter if self.t.group_filter else LISTED_GROUP_FILTERS[self.t.flavor]
        groups = []
        for dn, raw, member_dns in self._w().groups(self.t.groups_dn, search_filter, self._group_attributes):
            if not format_uuid(first_raw(raw, uuid_attribute)):
                continue
            members, _, _ = resolve_members(member_dns, remote_ids)
            groups.append(self._remote_group(dn, raw, set(members)))
        return groups

    def _uuids_of(self, member_dns: Iterable[str]) -> set[str]:
        """The remote ids of the user entries among ``member_dns`` (groups, dangling DNs are left out)."""
        uuids = set()
        for dn in member_dns:
            raw = self._w().read(dn, [self.t.uuid_attribute], self.settings.effective_user_filter)
            remote_id = format_uuid(first_raw(raw, self.t.uuid_attribute)) if raw else None
            if remote_id:
                uuids.add(remote_id)
        return uuids

    def _dns_of(self, remote_ids: Iterable[str]) -> list[str]:
        """The current DNs of the users with these remote ids; ids no longer found are left out."""
        filters = sorted(f for f in (uuid_filter(self.t.uuid_attribute, r) for r in remote_ids) if f)
        dns: list[str] = []
        for start in range(0, len(filters), _UUID_CHUNK):
            chunk = "".join(filters[start : start + _UUID_CHUNK])
            dns += [
                dn
                for dn, _ in self._search(self.t.user_bases, f"(&{self.settings.effective_user_filter}(|{chunk}))", [self.t.uuid_attribute])
            ]
        return dns

    def find_group(self, external_id: str | None, display_name: str | None) -> RemoteGroup | None:
        for search_filter in (
            f"({GROUP_ID_ATTRIBUTE}={escape_filter_chars(GROUP_MARKER + external_id)})" if external_id else None,
            f"(cn={escape_filter_chars(display_name)})" if display_name else None,
        ):
            if search_filter is None:
                continue
            found = self._search_groups(search_filter)
            if len(found) > 1:
                raise AmbiguousMatch(f"{len(found)} groups match {search_filter}", status=409)
            if found:
                return self._remote_group(*found[0])
        return None

    def get_group(self, remote_id: str) -> RemoteGroup | None:
        found = self._resolve_group(remote_id)
        return self._remote_group(*found) if found else None

    def create_group(self, display_name: str, external_id: str | None, members: set[str]) -> RemoteGroup:
        w = self._w()
        dns = self._dns_of(members)
        if not dns and self._needs_member:
            dns = [self.t.empty_member]
        if self.t.ad:  # a group's sAMAccountName is its name: unique across the domain, users and groups alike
            taken_by = self._sam_holder(display_name)
            if taken_by is not None:
                raise Conflict(
                    f"sAMAccountName {display_name!r} is taken in the domain by {taken_by} ({self._kind(taken_by)}); rename one of them",
                    status=409,
                )
        try:
            dn = w.create_group(display_name, dns, description=GROUP_MARKER + external_id if external_id else None)
        except LdapConflict as conflict:
            where = f" by {self._kind(conflict.dn)} at {conflict.dn}" if conflict.dn else ""
            raise Conflict(
                f"{conflict.message}: the name {display_name!r} is taken{where}, not by this provtui group; rename one of them", status=409
            ) from None
        raw = w.read(dn, self._group_attributes)
        if raw is None:
            raise DownstreamError(f"{dn} could not be read back after it was added", retryable=True)
        return self._remote_group(dn, raw)

    def update_group(self, remote_id: str, display_name: str | None, add: set[str], remove: set[str]) -> None:
        w = self._w()
        found = self._resolve_group(remote_id)
        if found is None:
            raise DownstreamError(f"no group with {self.t.uuid_attribute}={remote_id} under {self.t.groups_dn}", status=404)
        dn, raw = found
        if display_name and normalise_dn(f"cn={escape_rdn(display_name)}") != normalise_dn(split_dn(dn)[0]):
            dn = w.rename(dn, f"cn={escape_rdn(display_name)}")
            if self.t.ad:
                w.modify(dn, {"sAMAccountName": [(ldap3.MODIFY_REPLACE, [display_name])]})
        add_dns, remove_dns = self._dns_of(add), self._dns_of(remove)
        self._update_members(dn, _values(raw, MEMBER), add_dns, remove_dns)

    def _update_members(self, group_dn: str, current: list[str], add: list[str], remove: list[str]) -> None:
        """Add, then remove members; a groupOfNames keeps the placeholder exactly while it has no one else."""
        add, remove = list(add), list(remove)
        if self._needs_member:
            removing = {normalise_dn(d) for d in remove}
            remaining = {normalise_dn(d) for d in current if not self._is_placeholder(d)} - removing
            remaining |= {normalise_dn(d) for d in add}
            has_placeholder = any(self._is_placeholder(d) for d in current)
            if not remaining and not has_placeholder:
                add.append(self.t.empty_member)
            elif remaining and has_placeholder:
                remove.append(self.t.empty_member)
        if add or remove:
            self._w().update_members(group_dn, add=add, remove=remove)

    def delete_group(self, remote_id: str) -> None:
        found = self._resolve_group(remote_id)
        if found is not None:
            self._w().delete(found[0])

    def _retarget_members(self, old_dn: str, new_dn: str | None) -> None:
        """Point the groups under groups_dn that list ``old_dn`` at ``new_dn`` (None: drop it) —
        what slapd's refint overlay (or AD itself) would do; with either, nothing is found."""
        for group_dn, raw in self._search_groups(f"({MEMBER}={escape_filter_chars(old_dn)})"):
            self._update_members(group_dn, _values(raw, MEMBER), [new_dn] if new_dn else [], [old_dn])
