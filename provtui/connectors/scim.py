"""SCIM 2.0 downstream connector (RFC 7643 resources, RFC 7644 protocol) over httpx.

The mapping layer hands over *flat* attributes keyed by SCIM paths (``name.givenName``,
``emails[type eq "work"].value``, ``urn:...:enterprise:2.0:User:department``).  The pure
functions here nest them into a User resource, flatten replies back to the same keys,
and turn changes into PatchOp operations.  Resources stay plain dicts encoded with
orjson: this is the provisioning hot path and pydantic models would only add cost.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"

OnCall = Callable[[str, str, int | None, float], None]
"""Audit hook: (method, path without query, HTTP status or None, duration in ms)."""

# Top-level keys of a User that are protocol bookkeeping or server-managed, not attributes.
_NOT_ATTRIBUTES = frozenset({"schemas", "id", "meta", "active", "groups"})
# attr[key eq "literal"].sub: the value-path form used to address one multi-valued entry.
_VALUE_PATH = re.compile(
    r'(?P<attr>[A-Za-z][\w$-]*)\[(?P<key>[A-Za-z][\w$-]*) eq (?P<literal>"(?:[^"\\]|\\.)*")\]'
    r"\.(?P<sub>[A-Za-z][\w$-]*)"
)
_EXCERPT_CHARS = 200
MAX_MESSAGE_CHARS = 1000  # of a server's error detail: it is stored, audited and shown
MAX_RETRY_AFTER = 86_400.0  # a longer Retry-After is read as a day (an absurd one would overflow dates)
MAX_DEPTH = 32  # nesting of a reply's attributes: real ones nest two or three deep


# --------------------------------------------------------------------------- pure mapping


def quote_filter_value(value: str) -> str:
    """A filter string literal: RFC 7644 §3.4.2.2 uses JSON string syntax, so escape as JSON."""
    return orjson.dumps(value).decode()


def _split_schema(key: str) -> tuple[str | None, str]:
    """(extension schema URN or None for core, attribute path) of a flat attribute key."""
    if not key.startswith("urn:"):
        return None, key
    # The URN ends at the last colon before any value filter (whose literal may hold colons).
    urn = key.split("[", 1)[0].rpartition(":")[0]
    return (None if urn == CORE_USER else urn), key[len(urn) + 1 :]


def _assign(container: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dotted or value-path) inside a resource or extension object."""
    match = _VALUE_PATH.fullmatch(path)
    if match is None:
        *parents, leaf = path.split(".")
        for parent in parents:
            container = container.setdefault(parent, {})
        container[leaf] = value
        return
    entries: list[dict[str, Any]] = container.setdefault(match["attr"], [])
    key, wanted = match["key"], orjson.loads(match["literal"])
    entry = next((e for e in entries if e.get(key) == wanted), None)
    if entry is None:
        entry = {key: wanted}
        if not entries:
            entry["primary"] = True  # the first (mapped) entry is the primary one, e.g. the work email
        entries.append(entry)
    entry[match["sub"]] = value


def to_resource(attributes: dict[str, Any], active: bool = True) -> dict[str, Any]:
    """Nest flat attributes into a SCIM User resource; None values are left out."""
    resource: dict[str, Any] = {"schemas": [CORE_USER]}
    for key, value in attributes.items():
        if value is None:
            continue
        urn, path = _split_schema(key)
        target = resource
        if urn is not None:
            if urn not in resource["schemas"]:
                resource["schemas"].append(urn)
            target = resource.setdefault(urn, {})
        _assign(target, path, value)
    resource["active"] = active
    return resource


def _flatten(out: dict[str, Any], name: str, value: Any, depth: int = 0) -> None:
    """Add ``value`` under ``name`` to ``out``, descending into complex and multi-valued attributes."""
    if depth > MAX_DEPTH:  # recursing as deep as a hostile reply goes would overflow the stack
        raise ValueError(f"SCIM resource is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for sub, sub_value in value.items():
            _flatten(out, f"{name}.{sub}", sub_value, depth + 1)
    elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
        # Entries are addressed by type, as the mapping does; when a type repeats, the primary wins.
        seen: set[str] = set()
        for entry in sorted(value, key=lambda e: e.get("primary") is not True):
            kind = entry.get("type")
            if not isinstance(kind, str) or kind in seen:
                continue
            seen.add(kind)
            base = f"{name}[type eq {quote_filter_value(kind)}]"
            for sub, sub_value in entry.items():
                if sub not in ("type", "primary"):
                    out[f"{base}.{sub}"] = sub_value
    else:
        out[name] = value


@dataclass
class RemoteUser:
    """A user as the downstream holds it, flattened to the mapping layer's keys."""

    id: str
    active: bool
    attributes: dict[str, Any]


def from_resource(resource: dict[str, Any]) -> RemoteUser:
    """Flatten a SCIM User resource back to the keys ``to_resource`` accepts."""
    remote_id = resource.get("id")
    if not isinstance(remote_id, str) or not remote_id:
        raise ValueError("SCIM resource has no id")
    attributes: dict[str, Any] = {}
    for key, value in resource.items():
        if key in _NOT_ATTRIBUTES:
            continue
        if key.startswith("urn:") and isinstance(value, dict):
            prefix = "" if key == CORE_USER else f"{key}:"
            for name, sub_value in value.items():
                _flatten(attributes, prefix + name, sub_value, 1)
        else:
            _flatten(attributes, key, value)
    # A provider that does not support ``active`` omits it: such users are active.
    return RemoteUser(id=remote_id, active=resource.get("active") is not False, attributes=attributes)


def _removal_path(path: str) -> str:
    """Removing the ``value`` of a multi-valued entry removes the entry; a bare
    ``{type, primary}`` left behind would be invalid (value is the entry's identity)."""
    match = _VALUE_PATH.fullmatch(_split_schema(path)[1])
    return path.removesuffix(".value") if match and match["sub"] == "value" else path


def patch_operations(changed: dict[str, Any], active: bool | None = None) -> list[dict[str, Any]]:
    """PatchOp operations: replace each changed value, remove each None, then set ``active``."""
    operations: list[dict[str, Any]] = [
        {"op": "remove", "path": _removal_path(path)}
        if value is None
        else {"op": "replace", "path": path, "value": value}
        for path, value in changed.items()
    ]
    if active is not None:
        operations.append({"op": "replace", "path": "active", "value": active})
    return operations


@dataclass
class RemoteGroup:
    """A group as the downstream holds it: its name and its members' remote user ids."""

    id: str
    display_name: str
    external_id: str | None
    members: set[str]


def group_resource(display_name: str, external_id: str | None, members: set[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [CORE_GROUP], "displayName": display_name,
                                "members": [{"value": m} for m in sorted(members)]}
    if external_id:
        resource["externalId"] = external_id
    return resource


def group_from_resource(resource: dict[str, Any]) -> RemoteGroup:
    remote_id = resource.get("id")
    if not isinstance(remote_id, str) or not remote_id:
        raise ValueError("SCIM group has no id")
    members = resource.get("members")
    members = members if isinstance(members, list) else []
    name, external_id = resource.get("displayName"), resource.get("externalId")
    return RemoteGroup(
        id=remote_id, display_name=name if isinstance(name, str) else "",
        external_id=external_id if isinstance(external_id, str) and external_id else None,
        members={m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)},
    )


def group_patch_operations(display_name: str | None, add: set[str], remove: set[str]) -> list[dict[str, Any]]:
    """PatchOp for a group: rename, add members, remove each member by value filter (RFC 7644 §3.5.2.2)."""
    operations: list[dict[str, Any]] = []
    if display_name is not None:
        operations.append({"op": "replace", "path": "displayName", "value": display_name})
    if add:
        operations.append({"op": "add", "path": "members", "value": [{"value": m} for m in sorted(add)]})
    for member in sorted(remove):
        operations.append({"op": "remove", "path": f"members[value eq {quote_filter_value(member)}]"})
    return operations


# --------------------------------------------------------------------------- errors


class DownstreamError(Exception):
    """A failed call to the downstream; ``retryable`` tells the engine whether to try again.

    ``message`` is the server's SCIM ``detail`` (or a body excerpt) and never holds the token.
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


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from Retry-After, either delta-seconds or an HTTP date.

    A date is measured against the response's own Date header when present, so the
    server's clock skew cancels out.
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # isdigit alone admits "²", which float() refuses
        return min(float(value), MAX_RETRY_AFTER)
    try:
        until = parsedate_to_datetime(value)
        sent = response.headers.get("Date")
        now = parsedate_to_datetime(sent) if sent else datetime.now(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return min(max(0.0, (until - now).total_seconds()), MAX_RETRY_AFTER)


def _readable(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters: whitespace runs and control characters become one space."""
    return " ".join(_CONTROL.sub(" ", text[: limit * 4]).split())[:limit]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _excerpt(response: httpx.Response) -> str:
    # Not response.text: a charset the body does not match (utf-16 without a BOM) raises there.
    # JSON is UTF-8 (RFC 8259 §8.1), and this is only for reading.
    return _readable(response.content[: _EXCERPT_CHARS * 8].decode("utf-8", "replace"), _EXCERPT_CHARS)


# --------------------------------------------------------------------------- connector


class ScimConnector:
    """One downstream SCIM service provider, reached through one pooled httpx client."""

    naming_attribute = "userName"  # the attribute a create conflicts on, and an existing account is found by

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 8,
        on_call: OnCall | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        use_patch: bool | None = None,
    ) -> None:
        """``use_patch`` None discovers PATCH support from /ServiceProviderConfig; a bool forces it."""
        self._token = token
        self._on_call = on_call
        self._patch_supported = use_patch
        self._discovery_lock = asyncio.Lock()
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": SCIM_JSON},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ScimConnector({str(self._client.base_url)!r})"

    async def __aenter__(self) -> ScimConnector:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ----------------------------------------------------------------- public API

    async def patch_supported(self) -> bool:
        """Whether the provider announces PATCH; asked once, then cached."""
        if self._patch_supported is None:
            async with self._discovery_lock:
                if self._patch_supported is None:
                    response = await self._request("GET", "/ServiceProviderConfig")
                    if response.status_code == 404:
                        supported = False  # no discovery endpoint: PUT is the portable choice
                    else:
                        patch = self._json(response).get("patch")
                        supported = isinstance(patch, dict) and patch.get("supported") is True
                    self._patch_supported = supported
        return self._patch_supported

    async def find_user(self, *, external_id: str | None = None, user_name: str | None = None) -> RemoteUser | None:
        """Match by externalId (our own id, so authoritative) first, then by userName."""
        searches = [(attribute, value) for attribute, value in (("externalId", external_id), ("userName", user_name)) if value]
        for n, (attribute, value) in enumerate(searches, 1):
            resource = await self._find_one("/Users", attribute, value, last=n == len(searches))
            if resource is not None:
                return self._from_resource(resource)
        return None

    async def get_user(self, remote_id: str) -> RemoteUser | None:
        response = await self._request("GET", _user_path(remote_id))
        if response.status_code == 404:
            return None
        return self._user(response)

    async def create_user(self, attributes: dict[str, Any], *, active: bool = True) -> RemoteUser:
        """POST /Users; raises Conflict when the downstream already has the userName."""
        return self._user(await self._request("POST", "/Users", body=to_resource(attributes, active)))

    async def update_user(
        self, remote_id: str, changed: dict[str, Any], *, full: dict[str, Any], active: bool | None = None
    ) -> None:
        """PATCH only what changed when the provider supports it, otherwise PUT ``full``.

        A replace through a value filter (``emails[type eq "work"].value``) that matches no
        entry is a noTarget error per RFC 7644 §3.5.2.3, not an add, e.g. when a user gains
        their first email; that case falls back to PUT of the full resource.
        """
        if await self.patch_supported():
            operations = patch_operations(changed, active)
            if not operations:
                return
            body = {"schemas": [PATCH_OP], "Operations": operations}
            response = await self._request("PATCH", _user_path(remote_id), body=body)
            if response.is_success:
                return
            error = self._error(response)
            if error.scim_type != "noTarget":
                raise error
        await self._put(remote_id, full, active)

    async def delete_user(self, remote_id: str) -> None:
        """DELETE; a 404 means the user is already gone, which is the goal."""
        response = await self._request("DELETE", _user_path(remote_id))
        if response.status_code != 404:
            self._check(response)

    async def list_users(self, *, page_size: int = 100) -> AsyncIterator[RemoteUser]:
        """Every user, paged with startIndex/count (the provider may cap a page below page_size)."""
        async for resource in self._pages("/Users", page_size):
            yield self._from_resource(resource)

    async def set_password(self, remote_id: str, password: str, *, full: dict[str, Any]) -> None:
        """Set a user's password (write-only in SCIM: never read back, never logged)."""
        if await self.patch_supported():
            body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "password", "value": password}]}
            self._check(await self._request("PATCH", _user_path(remote_id), body=body))
            return
        await self._put(remote_id, {**full, "password": password}, None)

    # ----------------------------------------------------------------- groups

    async def find_group(self, *, external_id: str | None = None, display_name: str | None = None) -> RemoteGroup | None:
        """Match by externalId (provtui's group id) first, then by displayName."""
        searches = [(attribute, value) for attribute, value in (("externalId", external_id), ("displayName", display_name)) if value]
        for n, (attribute, value) in enumerate(searches, 1):
            resource = await self._find_one("/Groups", attribute, value, last=n == len(searches))
            if resource is not None:
                return self._group(resource)
        return None

    async def list_groups(self, *, page_size: int = 100) -> AsyncIterator[RemoteGroup]:
        """Every group with its members, paged with startIndex/count."""
        async for resource in self._pages("/Groups", page_size):
            yield self._group(resource)

    async def get_group(self, remote_id: str) -> RemoteGroup | None:
        response = await self._request("GET", _group_path(remote_id))
        if response.status_code == 404:
            return None
        return self._group(self._json(response))

    async def create_group(self, display_name: str, external_id: str | None, members: set[str]) -> RemoteGroup:
        response = await self._request("POST", "/Groups", body=group_resource(display_name, external_id, members))
        return self._group(self._json(response))

    async def update_group(self, remote_id: str, *, display_name: str | None, add: set[str], remove: set[str],
                           full_name: str, external_id: str | None, full_members: set[str]) -> None:
        """PATCH the rename and the membership difference; PUT the whole group when PATCH is unsupported."""
        operations = group_patch_operations(display_name, add, remove)
        if not operations:
            return
        if await self.patch_supported():
            body = {"schemas": [PATCH_OP], "Operations": operations}
            self._check(await self._request("PATCH", _group_path(remote_id), body=body))
            return
        resource = group_resource(full_name, external_id, full_members)
        resource["id"] = remote_id
        self._check(await self._request("PUT", _group_path(remote_id), body=resource))

    async def delete_group(self, remote_id: str) -> None:
        response = await self._request("DELETE", _group_path(remote_id))
        if response.status_code != 404:
            self._check(response)

    # ----------------------------------------------------------------- internals

    def _group(self, resource: Any) -> RemoteGroup:
        try:
            return group_from_resource(resource)
        except (ValueError, TypeError, AttributeError) as exc:
            raise DownstreamError(f"malformed group in reply: {exc}", retryable=True) from None

    async def _pages(self, path: str, page_size: int) -> AsyncIterator[dict[str, Any]]:
        """Every resource of a listing, page by page with startIndex/count, until totalResults.

        A page holding only resources already seen means the server ignores startIndex: with a
        totalResults it never reaches, following it would never end.
        """
        start = 1
        seen: set[Any] = set()
        while True:
            page = self._json(await self._request("GET", path, params={"startIndex": start, "count": page_size}))
            resources = self._resources(page)
            ids = {r.get("id") for r in resources if isinstance(r.get("id"), str)}
            if resources and ids and ids <= seen:
                raise DownstreamError(f"GET {path} at startIndex={start} repeated a page already read: the server "
                                      "ignores startIndex", retryable=False)
            seen |= ids
            for resource in resources:
                yield resource
            start += len(resources)
            total = page.get("totalResults")
            if not resources or (isinstance(total, int) and start > total):
                return

    async def _find_one(self, path: str, attribute: str, value: str, *, last: bool = True) -> dict[str, Any] | None:
        """The one resource under ``path`` whose ``attribute`` equals ``value``, or None.

        What the app answers is checked against the filter: an app that ignores filters (or a proxy
        that serves a cached listing) would otherwise have us link someone else's account.  An answer
        of resources none of which match is a malformed reply on the ``last`` search; before it, the
        next search decides (some apps filter on externalId but leave it out of what they return)."""
        search = f"{attribute} eq {quote_filter_value(value)}"
        resources = self._resources(self._json(await self._request("GET", path, params={"filter": search, "count": 2})))
        found = [resource for resource in resources if _holds(resource, attribute, value)]
        if resources and not found and last:
            raise DownstreamError(f"malformed reply: the app answered {search} with {len(resources)} resource(s) "
                                  f"that do not match it", retryable=True)
        if len(found) > 1:
            kind = path.strip("/").lower()
            raise AmbiguousMatch(f"{len(found)} {kind} match {search}")
        return found[0] if found else None

    async def _put(self, remote_id: str, attributes: dict[str, Any], active: bool | None) -> None:
        """PUT replaces the resource, and an omitted ``active`` would be dropped: keep the current one."""
        if active is None:
            current = await self.get_user(remote_id)
            if current is None:
                raise DownstreamError(f"user {remote_id!r} not found", status=404)
            active = current.active
        resource = to_resource(attributes, active)
        resource["id"] = remote_id
        self._check(await self._request("PUT", _user_path(remote_id), body=resource))

    async def _request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send one request and report it to ``on_call``; transport failures become DownstreamError."""
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else {"Content-Type": SCIM_JSON}
        status: int | None = None
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, content=content, headers=headers, params=params)
            status = response.status_code
            return response
        except httpx.RequestError as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "transport error"
            detail = str(exc) or "no detail"
            # `from None`: the httpx exception carries the request, Authorization header included.
            raise DownstreamError(
                self._scrub(f"{method} {path} {kind} ({type(exc).__name__}: {detail})"),
                retryable=not isinstance(exc, httpx.UnsupportedProtocol),
            ) from None
        finally:
            if self._on_call is not None:
                self._on_call(method, path, status, (time.perf_counter() - started) * 1000)

    def _scrub(self, text: str) -> str:
        """Belt and braces: a server may echo the credential back in an error body."""
        return text.replace(self._token, "[redacted]") if self._token else text

    def _error(self, response: httpx.Response) -> DownstreamError:
        status = response.status_code
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = None
        scim_type = None
        if isinstance(payload, dict) and isinstance(payload.get("detail"), str) and _readable(payload["detail"], 1):
            message = _readable(payload["detail"], MAX_MESSAGE_CHARS)
            scim_type = payload.get("scimType") if isinstance(payload.get("scimType"), str) else None
        else:
            message = _excerpt(response) or response.reason_phrase or "no detail"
        return (Conflict if status == 409 else DownstreamError)(
            self._scrub(message),
            status=status,
            # 408/429 and 5xx are the server's "not now"; 501/505 ("never") are not worth retrying.
            retryable=status in (408, 429) or (status >= 500 and status not in (501, 505)),
            retry_after=_retry_after(response),
            scim_type=scim_type,
        )

    def _check(self, response: httpx.Response) -> None:
        if not response.is_success:
            raise self._error(response)

    def _malformed(self, response: httpx.Response, why: str) -> DownstreamError:
        request = response.request
        return DownstreamError(
            self._scrub(f"malformed reply to {request.method} {request.url.path} ({why}): {_excerpt(response)}"),
            status=response.status_code,
            retryable=True,
        )

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a successful reply; a garbled one is retryable (proxies, truncation)."""
        self._check(response)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise self._malformed(response, "not JSON") from None
        if not isinstance(payload, dict):
            raise self._malformed(response, "not a JSON object")
        return payload

    def _resources(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        resources = page.get("Resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise DownstreamError("malformed reply: Resources is not a list of objects", retryable=True)
        return resources

    def _from_resource(self, resource: dict[str, Any]) -> RemoteUser:
        try:
            return from_resource(resource)
        except ValueError as exc:
            raise DownstreamError(f"malformed reply: {exc}", retryable=True) from None

    def _user(self, response: httpx.Response) -> RemoteUser:
        return self._from_resource(self._json(response))


# RFC 7643: externalId is case-exact; userName (§4.1.1) and a group's displayName are not.
_CASE_EXACT = frozenset({"externalId"})


def _holds(resource: dict[str, Any], attribute: str, value: str) -> bool:
    """Whether the resource's single-valued top-level ``attribute`` equals ``value`` as SCIM compares it."""
    held = resource.get(attribute)
    if not isinstance(held, str):
        return False
    return held == value if attribute in _CASE_EXACT else held.casefold() == value.casefold()


def _group_path(remote_id: str) -> str:
    return f"/Groups/{quote(remote_id, safe='')}"


def _user_path(remote_id: str) -> str:
    """The id is the server's; quote it so it can only ever name one path segment."""
    return f"/Users/{quote(remote_id, safe='')}"
