"""scim2-server's storage over the service (#20): each SCIM operation is a call of the client's ScimInbound
(provtui.service.scim_inbound), run as the client in a thread under the server's lock, its errors turned into
SCIM's.  scim2-server does the protocol (filters, PATCH, PUT, paging, attributes, sorting, ETags); this reads
and writes resources as JSON, as the service shows and takes them.

A search reads only the candidates it can name (``userName eq``, ``id eq``, a group's ``displayName eq``:
the lookups clients make before a create) and filters, sorts and pages them as scim2-models does; a search
naming none reads every person (or group) shown to the client, and one with neither a filter nor an order
reads only its page.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Union, cast

from scim2_models import (
    Context,
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    UnauthorizedException,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.storage import AsyncScimStorage, SearchPage
from scim2_server.utils import parametrize

from provtui.domain.errors import InvalidInput, NotAllowed, NotFound
from provtui.domain.scim_clients import source_of
from provtui.domain.scim_resources import GROUP_SCHEMA, USER_SCHEMA
from provtui.server.hub import ServiceHub
from provtui.server.scim.batch import Batches
from provtui.service.scim_inbound import Conflict, ScimInbound, Stale
from provtui.service.scim_safeguard import Held

CLIENT: ContextVar[str] = ContextVar("scim_client")  # the source (scim:NAME) the request being served acts as
CORRELATION: ContextVar[str | None] = ContextVar("scim_correlation", default=None)
PRESENTED: ContextVar[str] = ContextVar("scim_token_digest")  # the SHA-256 of the request's bearer token


class HeldException(SCIMException):
    """A change the safeguard holds for an admin: 503, the client to retry after ``retry_after`` seconds."""

    status = 503
    _default_detail = "held for an admin"

    def __init__(self, held: Held):
        super().__init__(detail=held.message)
        self.retry_after = held.retry_after


class ServiceStorage(AsyncScimStorage):
    def __init__(self, hub: ServiceHub, provider: ScimProvider):
        self.hub = hub
        self.provider = provider
        self.batches = Batches(hub)  # concurrent requests' calls in one turn of the lock: one fsync for them all

    async def _run(self, request: str, fn: Callable[[ScimInbound], Any]) -> Any:
        actor, digest = CLIENT.get(), PRESENTED.get()

        def token_still_valid() -> None:
            # Checked under the lock, against the store as it is now: the endpoint may have known the token for a
            # moment (provtui.server.scim.app.AUTH_SECONDS), and it may have been rotated or removed since.
            if source_of(self.hub.root.scim_client_of_digest(digest) or "") != actor:
                raise UnauthorizedException(detail="this token is no SCIM client's (it was rotated or removed)")

        try:
            return await self.batches.run(actor, f"scim.{request}", lambda service: fn(service.scim_inbound()), token_still_valid)
        except NotFound as missing:
            raise NotFoundException(detail=missing.message) from None
        except Conflict as taken:
            raise UniquenessException(detail=f"{taken.field}: {taken.message}") from None
        except Stale as stale:
            raise PreconditionFailedException(detail=stale.message) from None
        except InvalidInput as bad:
            raise InvalidValueException(detail=f"{bad.field}: {bad.message}") from None
        except NotAllowed as refused:
            raise ForbiddenException(detail=str(refused)) from None

    def _resource(self, resource_type: ResourceType, doc: dict[str, Any] | Held) -> Resource[Any]:
        if isinstance(doc, Held):
            raise HeldException(doc)
        model = self.provider.model_for(resource_type)
        assert model is not None, f"the provider serves {resource_type.name}"
        # (the service's own document, not a peer's: no exchange's checks, which cost five times the validation;
        # the reply is shaped as the exchange wants when scim2-server dumps it)
        return cast(Resource[Any], model.model_validate(doc, scim_ctx=Context.DEFAULT))

    @staticmethod
    def _json(resource: Resource[Any]) -> dict[str, Any]:
        return resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST, mode="json")

    @staticmethod
    def _is_user(resource_type: ResourceType) -> bool:
        return resource_type.schema_ == USER_SCHEMA

    async def get(
        self, resource_type: ResourceType, resource_id: str, *, response_parameters: ResponseParameters[Any] | None = None
    ) -> Resource[Any]:
        if self._is_user(resource_type):
            return self._resource(resource_type, await self._run("get", lambda scim: scim.user(resource_id)))
        members = not _excludes(response_parameters, "members")
        return self._resource(resource_type, await self._run("get", lambda scim: scim.group(resource_id, members=members)))

    async def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *, position: Any = None) -> SearchPage:
        if len(resource_types) != 1:
            from scim2_models import NotImplementedException

            raise NotImplementedException(detail="search /Users or /Groups")
        resource_type = resource_types[0]
        scim_filter = search_request.filter
        named = _equality(scim_filter)
        if self._is_user(resource_type):
            if scim_filter is None and search_request.sort_by is None:
                start, count = search_request.start_index_0 or 0, search_request.count
                total, page = await self._run("search", lambda scim: scim.user_count_and_page(start, count))
                return SearchPage(total, [self._resource(resource_type, doc) for doc in page])
            if named is not None and named[0] == "username":
                docs = await self._run("search", lambda scim: scim.users(login=named[1]))
            elif named is not None and named[0] == "id":
                docs = await self._run("search", lambda scim: scim.users(ids=[named[1]]))
            else:
                docs = await self._run("search", lambda scim: scim.users())
        else:
            name = named[1] if named is not None and named[0] == "displayname" else None
            docs = await self._run("search", lambda scim: scim.groups(name=name))
        candidates = [self._resource(resource_type, doc) for doc in docs]
        if scim_filter is not None:
            model = self.provider.model_for(resource_type)
            bound = parametrize(ScimFilter, Union[model])(str(scim_filter))  # noqa: UP007  (as scim2-server's own storage)
            candidates = [r for r in candidates if bound.match(r)]
        found = search_request.sort(candidates) if search_request.sort_by is not None else candidates
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        data, correlation = self._json(resource), CORRELATION.get()
        if self._is_user(resource_type):
            return self._resource(resource_type, await self._run("create", lambda scim: scim.create_user(data, correlation=correlation)))
        return self._resource(resource_type, await self._run("create", lambda scim: scim.create_group(data, correlation=correlation)))

    async def update(self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None) -> Resource[Any]:
        data, correlation, rid = self._json(resource), CORRELATION.get(), str(resource.id)
        if self._is_user(resource_type):
            doc = await self._run("update", lambda scim: scim.replace_user(rid, data, version=expected_version, correlation=correlation))
        else:
            doc = await self._run("update", lambda scim: scim.replace_group(rid, data, version=expected_version, correlation=correlation))
        return self._resource(resource_type, doc)

    async def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        correlation = CORRELATION.get()
        if self._is_user(resource_type):
            held = await self._run("delete", lambda scim: scim.delete_user(resource_id, version=expected_version, correlation=correlation))
            if held is not None:
                raise HeldException(held)
        else:
            await self._run("delete", lambda scim: scim.delete_group(resource_id, version=expected_version, correlation=correlation))


def _equality(scim_filter: ScimFilter[Any] | None) -> tuple[str, str] | None:
    """(attribute, lowercased, and its value) of a filter that is one ``eq`` of a core attribute to a string."""
    node = scim_filter.ast if scim_filter is not None else None
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq or not isinstance(node.value, str):
        return None
    path = node.attr_path
    if path.sub_attr is not None or path.uri not in (None, USER_SCHEMA, GROUP_SCHEMA):
        return None
    return path.attr.lower(), node.value


def _excludes(parameters: ResponseParameters[Any] | None, attribute: str) -> bool:
    excluded = parameters.excluded_attributes if parameters is not None else None
    return any(str(path).lower() == attribute for path in excluded or ())
