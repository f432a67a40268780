"""SCIM 2.0 downstream connector (RFC 7644 protocol) over httpx: the :class:`~provtui.connectors.base.Connector`
for SCIM apps.  Resources are built and read by :mod:`provtui.connectors.scim.resources`."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from provtui.connectors.base import AmbiguousMatch, Capability, Conflict, DownstreamError, OnCall, RemoteGroup, RemoteUser
from provtui.connectors.scim.resources import (
    PATCH_OP,
    from_resource,
    group_from_resource,
    group_patch_operations,
    group_resource,
    patch_operations,
    quote_filter_value,
    to_resource,
)

SCIM_JSON = "application/scim+json"

_EXCERPT_CHARS = 200
MAX_MESSAGE_CHARS = 1000  # of a server's error detail: it is stored, audited and shown
MAX_RETRY_AFTER = 86_400.0  # a longer Retry-After is read as a day (an absurd one would overflow dates)


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
    capabilities = frozenset(
        {
            Capability.CREATE,
            Capability.UPDATE,
            Capability.DEACTIVATE,
            Capability.REACTIVATE,
            Capability.DELETE,
            Capability.PUSH_GROUPS,
            Capability.SYNC_PASSWORD,
            Capability.IMPORT,
        }
    )

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

    async def __aenter__(self) -> Self:
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

    async def update_user(self, remote_id: str, changed: dict[str, Any], *, full: dict[str, Any], active: bool | None = None) -> None:
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
                raise DownstreamError(
                    f"GET {path} at startIndex={start} repeated a page already read: the server ignores startIndex", retryable=False
                )
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
            raise DownstreamError(
                f"malformed reply: the app answered {search} with {len(resources)} resource(s) that do not match it", retryable=True
            )
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

    async def _request(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> httpx.Response:
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
