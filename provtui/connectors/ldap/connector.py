"""An LDAP or Active Directory directory as a provisioning *target* (issue #9): the connector
contract of :mod:`provtui.connectors.base`, on top of the synchronous
:class:`provtui.connectors.ldap.writer.LdapWriter`.

:func:`provtui.connectors.config.connector_for` builds it as
``LdapAppConnector(app["ldap"], push_groups=..., on_call=...)``
where ``app["ldap"]`` is what :func:`provtui.domain.apps.validate_ldap_target` returned, and
hands it *flat* attributes keyed by LDAP attribute names (the app's mappings: ``uid``, ``cn``,
``mail``... or ``sAMAccountName``, ``userPrincipalName``...) plus ``externalId``, provtui's user id.

Design
    remote_id
        The entry's server-assigned UUID, never its DN: ``entryUUID`` (OpenLDAP, RFC 4530)
        or ``objectGUID`` (AD, in its usual string form), so renames and moves (a login
        change, a disable by moving to another OU, an admin reorganising OUs) never orphan
        the account. Every operation on a remote_id first resolves it to the entry's
        *current* DN with one indexed SEARCH ``(entryUUID=...)`` (``(objectGUID=\\xx...)``,
        the GUID's little-endian bytes escaped) under the user bases; no DN is cached across
        calls, so an entry renamed outside provtui is still the one modified.
    externalId
        Kept in ``employeeNumber`` for both flavours (inetOrgPerson has no free id attribute
        besides employeeNumber/description; AD has employeeNumber too, and its employeeID is
        usually HR's). ``find_user(external_id=)`` searches it. Override with the
        ``external_id_attribute`` option; a mapping that targets the same attribute is refused
        (it would overwrite the link).
    naming_attribute
        ``uid`` (OpenLDAP) / ``sAMAccountName`` (AD): what a create conflicts on and an
        existing account is found by. Before an ADD the connector searches for it, so a
        duplicate is refused even where the server does not enforce uniqueness (slapd, or
        the same uid in another OU) and the reconciler links the existing entry instead.
        New entries are named ``<rdn_attr>=<value>,<base_dn>`` (OpenLDAP, rdn_attr ``uid`` by
        default) or ``cn=<cn>,<base_dn>`` (AD); a change of the RDN attribute is a MODRDN.
    disabling (``disable_method``)
        ``ou:DN`` moves the entry to DN and back to base_dn (LdapWriter.set_disabled);
        ``attr:NAME=VALUE`` adds VALUE to NAME and removes it again (other values of NAME are
        kept); ``uac`` flips AD's ACCOUNTDISABLE bit with a compare-and-swap modify. AD always
        flips the bit, whatever else its method does: a moved but enabled AD account could
        still sign in.
    groups
        groupOfNames (AD: group) named ``cn=<name>`` under ``groups_dn`` (default base_dn);
        provtui's group id is kept as a ``description`` value ``provtui:<id>`` so a group
        created before a crash is found again, and a same-named group that is not ours is
        refused rather than taken over. Members are DNs in LDAP and remote ids (UUIDs) in
        the interface: translated both ways. A groupOfNames must have a member, so an empty
        one holds the empty DN (option ``empty_member``), which is never reported as a member.
        ``list_groups`` (importing the app's own groups as app groups) reads every group under
        ``groups_dn`` — groupOfNames and groupOfUniqueNames (AD: group), or ``group_filter`` —
        paged, and resolves member DNs to the remote ids of the user entries under the user
        bases with one paged search of those users; other members (groups, entries outside the
        bases, dangling or malformed DNs) are left out. Groups provtui pushed carry their
        ``provtui:<id>`` marker as external_id, so the importer can tell them apart.
        Without a referential-integrity overlay slapd leaves a renamed, moved or deleted
        entry's old DN in groups: the connector fixes the groups under ``groups_dn`` itself
        (AD does it on its own; the extra SEARCH then finds nothing).
    passwords
        OpenLDAP: the Password Modify extended operation (the server hashes). AD: unicodePwd,
        refused before anything is sent unless the connection is TLS (ldaps:// or
        ``tls="starttls"``). A new AD account is created disabled, given a random password,
        then enabled; without TLS an active one is refused before anything is added
        (ad_accounts.py: AD's rules provtui keeps itself).

Concurrency: ``connections`` ldap3 connections per connector (ldap3 connections are not
thread-safe; config.py gives an app as many as its concurrency, at most 4), each opened at
its first call; each interface call runs as one unit in a worker thread (``asyncio.to_thread``)
on a connection no other call holds. A retryable failure (server down, connection dropped,
busy) closes that connection; its next call reconnects.

Errors: LdapConflict -> :class:`Conflict`, LdapError -> :class:`DownstreamError` with
``retryable`` kept. ``status`` is an HTTP-like class for the reconciler's app-wide fault
accounting: None for transient and configuration faults (app-wide), 401/403 for credentials
and access, 404 noSuchObject, 409 entryAlreadyExists, 400 for other entry-level refusals
(schema, syntax, constraint). Messages keep the LDAP result code and never the password.

Audit: ``on_call(method, path, status, duration_ms)`` once per LDAP operation: method is
BIND/SEARCH/ADD/MODIFY/MODRDN/DELETE/EXTENDED, path the DN operated on (the search base, the
Password Modify's user), status the LDAP result code (None when no reply came). Delivered on
the event loop after each call, never from the worker thread.

Options (``app["ldap"]`` keys beyond validate_ldap_target's, all optional): ``groups_dn``,
``external_id_attribute``, ``naming_attribute``, ``uuid_attribute``, ``user_filter``,
``group_filter``, ``user_object_classes``, ``group_object_classes``, ``empty_member``,
``timeout``, ``tls``, ``ca_file``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Self

from provtui.connectors.base import Capability, DownstreamError, OnCall, RemoteGroup, RemoteUser
from provtui.connectors.ldap.calls import Event
from provtui.connectors.ldap.directory import DirectoryCore
from provtui.connectors.ldap.target import LdapTarget

_CAPABILITIES = frozenset(
    {Capability.CREATE, Capability.UPDATE, Capability.DEACTIVATE, Capability.REACTIVATE, Capability.DELETE, Capability.SYNC_PASSWORD}
)


class LdapAppConnector:
    """An LDAP/AD directory behind the connector contract (see the module docstring).

    Capabilities: accounts (create, update, deactivate/reactivate, delete) and passwords; group push
    when ``push_groups`` (the group calls refuse otherwise); no account listing (app import is SCIM's).
    """

    def __init__(
        self, config: Mapping[str, Any], *, push_groups: bool = False, on_call: OnCall | None = None, connections: int = 1
    ) -> None:
        try:
            self.target = LdapTarget.from_config(config)
            # ``connections`` cores, a connection each (opened when first used): calls run side by side, as the
            # app's concurrency allows; one core serves one call at a time
            cores = [DirectoryCore(self.target) for _ in range(max(1, connections))]
        except (ValueError, TypeError, KeyError) as exc:
            # Raised inside the reconciler's call: a failure of the app, not a crash of the run.
            raise DownstreamError(f"the LDAP app is misconfigured: {exc}") from None
        self._cores = cores
        self._free: asyncio.Queue[DirectoryCore] = asyncio.Queue()
        for core in cores:
            self._free.put_nowait(core)
        self.naming_attribute = self.target.naming_attribute
        self.push_groups = push_groups
        self._on_call = on_call

    @property
    def capabilities(self) -> frozenset[Capability]:
        return _CAPABILITIES | {Capability.PUSH_GROUPS} if self.push_groups else _CAPABILITIES

    def __repr__(self) -> str:
        return f"LdapAppConnector({self.target.uri!r}, base_dn={self.target.base_dn!r}, flavor={self.target.flavor!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _call(self, operation: str, *args: Any) -> Any:
        """``operation`` (a DirectoryCore method) on a free core, in a thread; its LDAP calls reported after."""
        events: list[Event] = []
        core = await self._free.get()
        try:
            return await asyncio.to_thread(core.run, events, getattr(core, operation), *args)
        finally:
            self._free.put_nowait(core)
            if self._on_call is not None:
                for event in events:
                    self._on_call(*event)

    def _groups(self) -> None:
        if not self.push_groups:
            raise DownstreamError("group push is not turned on for this app")

    # ----------------------------------------------------------------- users

    async def find_user(self, *, external_id: str | None = None, user_name: str | None = None) -> RemoteUser | None:
        return await self._call("find_user", external_id, user_name)

    async def get_user(self, remote_id: str) -> RemoteUser | None:
        return await self._call("get_user", remote_id)

    async def create_user(self, attributes: dict[str, Any], *, active: bool = True) -> RemoteUser:
        return await self._call("create_user", attributes, active)

    async def update_user(self, remote_id: str, changed: dict[str, Any], *, full: dict[str, Any], active: bool | None = None) -> None:
        """Modify what changed (LDAP modifies are partial: ``full`` is not needed), rename when the
        RDN attribute changed, then enable/disable by the app's method."""
        await self._call("update_user", remote_id, changed, active)

    async def delete_user(self, remote_id: str) -> None:
        await self._call("delete_user", remote_id)

    async def set_password(self, remote_id: str, password: str, *, full: dict[str, Any]) -> None:
        await self._call("set_password", remote_id, password)

    # ----------------------------------------------------------------- groups

    async def find_group(self, *, external_id: str | None = None, display_name: str | None = None) -> RemoteGroup | None:
        self._groups()
        return await self._call("find_group", external_id, display_name)

    async def get_group(self, remote_id: str) -> RemoteGroup | None:
        self._groups()
        return await self._call("get_group", remote_id)

    async def list_groups(self) -> AsyncIterator[RemoteGroup]:
        """Every group of the directory (for importing them as app groups; needs no group push):
        read in one call (paged underneath), then yielded."""
        for group in await self._call("list_groups"):
            yield group

    async def create_group(self, display_name: str, external_id: str | None, members: set[str]) -> RemoteGroup:
        self._groups()
        return await self._call("create_group", display_name, external_id, set(members))

    async def update_group(
        self,
        remote_id: str,
        *,
        display_name: str | None,
        add: set[str],
        remove: set[str],
        full_name: str,
        external_id: str | None,
        full_members: set[str],
    ) -> None:
        self._groups()
        await self._call("update_group", remote_id, display_name, set(add), set(remove))

    async def delete_group(self, remote_id: str) -> None:
        self._groups()
        await self._call("delete_group", remote_id)

    async def aclose(self) -> None:
        cores = [await self._free.get() for _ in self._cores]  # each once its call is done
        try:
            for core in cores:
                await asyncio.to_thread(core.close)
        finally:
            for core in cores:
                self._free.put_nowait(core)
