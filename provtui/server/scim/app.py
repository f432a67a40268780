"""The SCIM 2.0 endpoint (RFC 7643/7644) that inbound clients push people and groups to (#20): scim2-server's
ASGI application over the service (provtui.server.scim.storage), served at ``/scim/v2`` by `provtui server
--scim-listen`.

What it adds to scim2-server's protocol:
- **authentication**: ``Authorization: Bearer <token>`` names a client (``provtui scim-client add``), matched
  in constant time; the request then runs as its source ``scim:NAME``.  No token ever reaches a log or the
  audit trail.  A token seen in the last ``AUTH_SECONDS`` is not looked up again before a request that the
  storage serves: that storage call checks it anyway, under the lock, against the store as it is then (so a
  rotated or removed token is refused at once, and the request costs no trip to a thread to learn it);
- **a correlation id** per request: the client's ``X-Request-Id`` when it is a plain one, else a new one; it
  is on every audit event of the request and echoed in the reply;
- **limits**: a body over ``MAX_BODY`` bytes is refused (413) before it is parsed; each client has a request
  rate (``scim.rate``, default ``DEFAULT_RATE`` a second, bursts of twice that), past which it gets 429 with
  Retry-After;
- **the safeguard**: a held deprovision is answered 503 with Retry-After (provtui.service.scim_safeguard).

Bulk is not offered (ServiceProviderConfig says so): a bulk request's operations would each need the
safeguard's and the mastering's answer, and a partial failure of a bulk is what single requests avoid.
"""

from __future__ import annotations

import asyncio
import re
import time
from http import HTTPStatus
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Context,
    External,
    Mutability,
    PayloadTooLargeException,
    Reference,
    Required,
    Resource,
    ResponseParameters,
    Schema,
    SchemaExtension,
    SCIMException,
    ScimProvider,
    ServiceProviderConfig,
    UnauthorizedException,
)
from scim2_server.applications.asgi import ASGIApplication, Receive, Scope, Send
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas

from provtui.domain.scim_clients import source_of, token_digest
from provtui.domain.scim_resources import GROUP_SCHEMA, MAPPED, PROVTUI_USER, USER_SCHEMA
from provtui.ids import new_id
from provtui.server.hub import ServiceHub
from provtui.server.scim.quirks import patch_body
from provtui.server.scim.storage import CLIENT, CORRELATION, PRESENTED, HeldException, ServiceStorage

PREFIX = "/scim"  # the endpoint is /scim/v2/...
MAX_BODY = 1024 * 1024  # a User or a Group is a few KB; a group of 10,000 members ~1 MB
DEFAULT_RATE = 50  # requests a second a client may send, sustained
MAX_RESULTS = 1000
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
AUTH_SECONDS = 1.0  # a token's client (and rate) known this long without a lookup, before a storage call
STORED = {
    Operation.create,
    Operation.query,
    Operation.replace,
    Operation.patch,
    Operation.delete,
    Operation.search,
    Operation.search_with_body,
}


class RateLimited(SCIMException):
    status = 429
    _default_detail = "too many requests"


def build_provider(custom_attributes: list[str]) -> ScimProvider:
    """RFC 7643's User (with the enterprise extension) and Group, and provtui's extension holding the profile
    attributes SCIM has no name for (``custom_attributes``: the directory's, when the server started)."""
    schemas = [_as_provtui_reads_it(schema) for schema in load_default_schemas().values()]
    custom = sorted(set(custom_attributes) - MAPPED - {"login"})
    extension = Schema.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": PROVTUI_USER,
            "name": "ProvtuiUser",
            "description": "provtui's profile attributes that RFC 7643 does not name",
            "attributes": [
                {
                    "name": name,
                    "type": "string",
                    "multiValued": False,
                    "required": False,
                    "caseExact": False,
                    "mutability": "readWrite",
                    "returned": "default",
                    "uniqueness": "none",
                }
                for name in custom
            ],
        }  # fmt: skip
    )
    user, group = (load_default_resource_types()[name] for name in ("User", "Group"))
    if custom:  # (an extension of no attributes would be one more thing for a client to send empty)
        extensions = [*(user.schema_extensions or []), SchemaExtension.model_validate({"schema": PROVTUI_USER, "required": False})]
        user = user.model_copy(update={"schema_extensions": extensions})
        schemas.append(extension)
    config = ServiceProviderConfig.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": True},
            "etag": {"supported": True},
        }
    )
    config.authentication_schemes = [
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="Bearer token",
            description="The token `provtui scim-client add` prints",
            spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
            primary=True,
        )
    ]
    return ScimProvider.from_discovery(schemas, [user, group], config=config)


def _as_provtui_reads_it(schema: Schema) -> Schema:
    """RFC 7643's schemas as provtui keeps them: a person has an email and a given and a family name (as a
    person created in provtui, or by an import, does): required; a member's display is their login: read-only."""
    schema = schema.model_copy(deep=True)
    if schema.id == GROUP_SCHEMA:
        for sub in next(a for a in schema.attributes or [] if a.name == "members").sub_attributes or []:
            if sub.name == "display":
                sub.mutability = Mutability.read_only
    if schema.id != USER_SCHEMA:
        return schema
    for attribute in schema.attributes or []:
        if attribute.name in ("emails", "name"):
            attribute.required = Required.true
            for sub in attribute.sub_attributes or []:
                if sub.name in ("value", "givenName", "familyName"):
                    sub.required = Required.true
    return schema


class PatchAnswersTheResource(ScimService):
    """A PATCH answers 200 with the resource, always: RFC 7644 §3.5.2 allows 204 when no attributes were asked
    for, but Okta's guide expects the resource, and a client learns the new version from it."""

    def patch_response(self, base_url: str, resource: Resource[Any], response_parameters: ResponseParameters[Any]) -> ScimResponse:
        return self.resource_response(self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters)


class ScimApplication(ASGIApplication):
    def __init__(self, hub: ServiceHub, provider: ScimProvider):
        super().__init__(ServiceStorage(hub, provider), provider, PatchAnswersTheResource(provider))
        self.hub = hub
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when counted)
        self._known: dict[str, tuple[str, Any, float]] = {}  # a token's digest -> (its client, the rate, when looked up)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (scope["path"] == PREFIX or scope["path"].startswith(PREFIX + "/")):
            await self.send_response(ScimResponse(HTTPStatus.NOT_FOUND, {"detail": f"the SCIM endpoint is {PREFIX}/v2"}), send)
            return
        await super().__call__({**scope, "root_path": PREFIX} if scope["type"] == "http" else scope, receive, send)

    async def read_request(self, scope: Scope, receive: Receive) -> ScimRequest:
        return await super().read_request(scope, _bounded(receive, MAX_BODY))

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        if len(request.body) > MAX_BODY:
            raise PayloadTooLargeException(detail=f"a request's body is at most {MAX_BODY} bytes")
        if not self.needs_auth(request):
            return await self.handler.handle(request)
        client, rate = await self._client(request)
        self._take_token(client, float(rate or DEFAULT_RATE))
        if request.method.upper() == "PATCH" and request.path.startswith("/Groups/"):
            request.body = patch_body(request.body)
        given = request.header("X-Request-Id") or ""
        CLIENT.set(source_of(client))
        CORRELATION.set(given if _REQUEST_ID.match(given) else new_id())
        request.subject = client
        return await self.handler.handle(request)

    async def _client(self, request: ScimRequest) -> tuple[str, Any]:
        """The client the request's token names, and the rate it may send at (``scim.rate``)."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedException(detail="a bearer token is needed (`provtui scim-client add` makes one)")
        digest = token_digest(token.strip())
        PRESENTED.set(digest)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and now - known[2] < AUTH_SECONDS and self.service.match(request).operation in STORED:
            return known[0], known[1]  # (the storage call checks the token again, under the lock)
        root = self.hub.root
        client, rate = await asyncio.to_thread(
            lambda: _locked(self.hub, lambda: (root.scim_client_of_digest(digest), root.config().get("scim.rate")))
        )
        self._known = {d: k for d, k in self._known.items() if now - k[2] < AUTH_SECONDS}  # (only valid tokens are kept)
        if client is None:
            raise UnauthorizedException(detail="this token is no SCIM client's")
        self._known[digest] = (str(client), rate, now)
        return str(client), rate

    def _take_token(self, client: str, rate: float) -> None:
        now = time.monotonic()
        tokens, since = self._buckets.get(client, (2 * rate, now))
        tokens = min(2 * rate, tokens + (now - since) * rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            raise RateLimited(detail=f"more than {rate:g} requests a second", retry_after=max(1, round((1 - tokens) / rate)))
        self._buckets[client] = (tokens - 1, now)

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        response = super().handle_exception(request, exception)
        if isinstance(exception, HeldException):
            response.headers["Retry-After"] = str(exception.retry_after)
        elif isinstance(exception, UnauthorizedException):  # (a storage call found the token rotated or removed)
            self._known.pop(PRESENTED.get(""), None)
        elif isinstance(exception, RateLimited):
            response.headers["Retry-After"] = str(exception.context.get("retry_after", 1))
        return response

    def finalize_response(self, request: ScimRequest, response: ScimResponse) -> ScimResponse:
        correlation = CORRELATION.get()
        if correlation is not None:
            response.headers["X-Request-Id"] = correlation
        return super().finalize_response(request, response)


def _locked(hub: ServiceHub, fn: Any) -> Any:
    with hub.lock:
        hub.root.refresh()
        return fn()


def _bounded(receive: Receive, limit: int) -> Receive:
    """``receive``, keeping at most ``limit`` + 1 bytes of the body (the rest is read and dropped)."""
    kept = 0

    async def bounded() -> dict[str, Any]:
        nonlocal kept
        message = await receive()
        body = message.get("body", b"")
        if body:
            room = max(0, limit + 1 - kept)
            message = {**message, "body": body[:room]}
            kept += len(message["body"])
        return message

    return bounded
