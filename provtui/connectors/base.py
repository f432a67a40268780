"""The connector contract: what the engine (and the importer) call on a downstream app.

Every kind of downstream (SCIM, LDAP/AD) implements :class:`Connector`; which of the optional
parts it offers is declared in ``capabilities`` with the domain's own
:class:`~provtui.domain.apps.Capability` values, and each optional part is a protocol of its own:

============================  =====================================================================
capability                    what it means on the connector
============================  =====================================================================
CREATE                        ``create_user`` (a name taken raises :class:`Conflict`)
UPDATE                        ``update_user(remote_id, changed, full=...)``
DEACTIVATE / REACTIVATE       ``update_user(..., active=False / True)``
DELETE                        ``delete_user`` (an account already gone is not an error)
PUSH_GROUPS                   :class:`GroupPush`: find/get/create/update/delete groups
SYNC_PASSWORD                 :class:`PasswordSync`: ``set_password``
IMPORT                        :class:`AccountListing`: ``list_users`` (link an app's existing accounts)
============================  =====================================================================

Every connector also lists the app's own groups (``list_groups``, for importing them as app groups)
and finds an account by provtui's id (externalId) or by its ``naming_attribute``.  An app's
*enabled* capabilities (``app["capabilities"]``) are a policy choice on top of these.

Records: :class:`RemoteUser` and :class:`RemoteGroup`, flat attributes keyed as the app's mappings
key them.  Errors: every failure leaves a connector as :class:`DownstreamError` (see there for what
``status`` and ``retryable`` mean to the engine); :class:`Conflict` and :class:`AmbiguousMatch` are
the two a caller treats specially.  Audit: a connector reports each wire call to its ``on_call``
hook (:data:`OnCall`).

A connector knows its wire protocol, never the directory: nothing here (nor in any connector)
imports the service, the engine or the faces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

from provtui.domain.apps import Capability

__all__ = [
    "AccountListing",
    "AmbiguousMatch",
    "Capability",
    "Conflict",
    "Connector",
    "DownstreamError",
    "GroupPush",
    "OnCall",
    "PasswordSync",
    "RemoteGroup",
    "RemoteUser",
    "supports",
]

OnCall = Callable[[str, str, int | None, float], None]
"""Audit hook: (method, path without query, status or None, duration in ms), once per wire call."""


# --------------------------------------------------------------------------- records


@dataclass
class RemoteUser:
    """A user as the downstream holds it, flattened to the mapping layer's keys."""

    id: str
    active: bool
    attributes: dict[str, Any]


@dataclass
class RemoteGroup:
    """A group as the downstream holds it: its name and its members' remote user ids."""

    id: str
    display_name: str
    external_id: str | None
    members: set[str]


# --------------------------------------------------------------------------- errors


class DownstreamError(Exception):
    """A failed call to the downstream; ``retryable`` tells the engine whether to try again.

    ``status`` is HTTP's (an LDAP connector maps its result codes onto the same classes):

    - None: no answer about this account — transport fault, timeout, misconfiguration (app-wide);
    - 401/403: the app refuses our credentials (the engine pauses the app, keeps its work queued);
    - 404: no such account; 409: the name is taken (:class:`Conflict`) or a lookup is ambiguous;
    - 408/429/5xx: the app's "not now" (``retryable``, ``retry_after`` in seconds when it said);
    - other 4xx: a permanent refusal of this account's data, shown with the server's message.

    ``retryable`` also covers malformed replies (proxies, truncation).  ``message`` is the server's
    detail (or an excerpt) and never holds a credential.  ``scim_type`` is SCIM's error type.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        scim_type: str | None = None,
    ) -> None:
        super().__init__(message if status is None else f"HTTP {status}: {message}")
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.scim_type = scim_type

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, message={self.message!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r}, scim_type={self.scim_type!r})"
        )


class Conflict(DownstreamError):
    """409: the resource (typically its userName) already exists downstream."""


class AmbiguousMatch(DownstreamError):
    """A lookup matched several users; linking to one of them blindly could hijack an account."""


# --------------------------------------------------------------------------- the protocol


@runtime_checkable
class Connector(Protocol):
    """One downstream app: accounts by remote id, found by externalId or ``naming_attribute``."""

    naming_attribute: str
    """The attribute a create conflicts on, and an existing account is found by (``userName``, ``uid``...)."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this connector can do downstream (see the module docstring)."""
        ...

    async def find_user(self, *, external_id: str | None = None, user_name: str | None = None) -> RemoteUser | None: ...

    async def get_user(self, remote_id: str) -> RemoteUser | None: ...

    async def create_user(self, attributes: dict[str, Any], *, active: bool = True) -> RemoteUser: ...

    async def update_user(self, remote_id: str, changed: dict[str, Any], *, full: dict[str, Any], active: bool | None = None) -> None: ...

    async def delete_user(self, remote_id: str) -> None: ...

    def list_groups(self) -> AsyncIterator[RemoteGroup]:
        """Every group the app holds, with its members' remote ids."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class GroupPush(Connector, Protocol):
    """Capability.PUSH_GROUPS: groups provtui keeps in the app, matched by externalId or name."""

    async def find_group(self, *, external_id: str | None = None, display_name: str | None = None) -> RemoteGroup | None: ...

    async def get_group(self, remote_id: str) -> RemoteGroup | None: ...

    async def create_group(self, display_name: str, external_id: str | None, members: set[str]) -> RemoteGroup: ...

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
    ) -> None: ...

    async def delete_group(self, remote_id: str) -> None: ...


@runtime_checkable
class PasswordSync(Connector, Protocol):
    """Capability.SYNC_PASSWORD: set an account's password (write-only: never read back nor logged)."""

    async def set_password(self, remote_id: str, password: str, *, full: dict[str, Any]) -> None: ...


@runtime_checkable
class AccountListing(Connector, Protocol):
    """Capability.IMPORT: every account of the app, paged (to link existing accounts to users)."""

    def list_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]: ...


def supports(connector: object, capability: Capability) -> bool:
    """Whether ``connector`` declares ``capability`` (a connector without declarations declares nothing)."""
    return capability in getattr(connector, "capabilities", frozenset())
