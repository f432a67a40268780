"""SCIM connector: pure mapping functions, error mapping, and a real scim2-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from provtui.connectors.scim import (
    CORE_USER,
    ENTERPRISE_USER,
    AmbiguousMatch,
    Conflict,
    DownstreamError,
    ScimConnector,
    from_resource,
    patch_operations,
    quote_filter_value,
    to_resource,
)
from provtui.testing.scim_server import ScimServerProcess

TOKEN = "test-token"
WORK_EMAIL = 'emails[type eq "work"].value'
DEPARTMENT = f"{ENTERPRISE_USER}:department"

Call = tuple[str, str, int | None, float]


def profile(**overrides: Any) -> dict[str, Any]:
    """Flat attributes as the mapping layer produces them, with a unique userName."""
    suffix = uuid.uuid4().hex[:12]
    attributes: dict[str, Any] = {
        "externalId": f"ext-{suffix}",
        "userName": f"user-{suffix}",
        "displayName": "Ada Lovelace",
        "title": "Analyst",
        "name.givenName": "Ada",
        "name.familyName": "Lovelace",
        WORK_EMAIL: f"ada-{suffix}@example.com",
        DEPARTMENT: "Engines",
    }
    attributes.update(overrides)
    return attributes


@pytest.fixture
def calls() -> list[Call]:
    return []


@pytest.fixture
async def connector(scim_server: ScimServerProcess, calls: list[Call]) -> AsyncIterator[ScimConnector]:
    async with ScimConnector(scim_server.url, TOKEN, on_call=lambda *call: calls.append(call)) as conn:
        yield conn


def mock_connector(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> ScimConnector:
    return ScimConnector("https://scim.test/v2", TOKEN, transport=httpx.MockTransport(handler), **kwargs)


def scim_error(status: int, detail: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


# --------------------------------------------------------------------------- pure functions


def test_to_resource_nests_paths_and_declares_the_extension() -> None:
    resource = to_resource(profile(userName="ada", externalId="e1", **{WORK_EMAIL: "ada@example.com"}), active=False)
    assert resource == {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "externalId": "e1",
        "userName": "ada",
        "displayName": "Ada Lovelace",
        "title": "Analyst",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": "ada@example.com", "primary": True}],
        ENTERPRISE_USER: {"department": "Engines"},
        "active": False,
    }


def test_to_resource_leaves_out_none_values() -> None:
    resource = to_resource({"userName": "ada", WORK_EMAIL: None, DEPARTMENT: None, "title": None})
    assert resource == {"schemas": [CORE_USER], "userName": "ada", "active": True}


def test_to_resource_generic_paths() -> None:
    resource = to_resource(
        {
            'phoneNumbers[type eq "mobile"].value': "+1 555",
            'emails[type eq "home"].value': "h@example.com",
            'emails[type eq "work"].value': "w@example.com",
            'emails[type eq "work"].display': "Work",
            f"{ENTERPRISE_USER}:manager.value": "boss-id",
            "urn:example:ext:1.0:User:badge": 7,
            f"{CORE_USER}:nickName": "ace",  # fully qualified core attribute
        }
    )
    assert resource["schemas"] == [CORE_USER, ENTERPRISE_USER, "urn:example:ext:1.0:User"]
    assert resource["phoneNumbers"] == [{"type": "mobile", "value": "+1 555", "primary": True}]
    assert resource["emails"] == [
        {"type": "home", "value": "h@example.com", "primary": True},
        {"type": "work", "value": "w@example.com", "display": "Work"},
    ]
    assert resource[ENTERPRISE_USER] == {"manager": {"value": "boss-id"}}
    assert resource["urn:example:ext:1.0:User"] == {"badge": 7}
    assert resource["nickName"] == "ace"


def test_from_resource_flattens_back_to_the_same_keys() -> None:
    attributes = profile()
    resource = {**to_resource(attributes, active=False), "id": "r1", "meta": {"resourceType": "User"}}
    user = from_resource(orjson.loads(orjson.dumps(resource)))
    assert (user.id, user.active, user.attributes) == ("r1", False, attributes)


def test_from_resource_prefers_the_primary_entry_and_skips_server_managed_keys() -> None:
    user = from_resource(
        {
            "schemas": [CORE_USER],
            "id": "r1",
            "userName": "ada",
            "emails": [
                {"value": "old@example.com", "type": "work"},
                {"value": "new@example.com", "type": "work", "primary": True},
                {"value": "untyped@example.com"},
            ],
            "groups": [{"value": "g1", "type": "direct"}],
        }
    )
    assert user.active is True  # a provider without `active` has active users
    assert user.attributes == {"userName": "ada", WORK_EMAIL: "new@example.com"}


def test_from_resource_requires_an_id() -> None:
    with pytest.raises(ValueError, match="no id"):
        from_resource({"schemas": [CORE_USER], "userName": "ada"})


def test_patch_operations() -> None:
    changed = {"title": "Boss", "name.givenName": "Augusta", WORK_EMAIL: None, DEPARTMENT: None, "displayName": "A"}
    assert patch_operations(changed, active=False) == [
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "remove", "path": 'emails[type eq "work"]'},  # the whole entry, not a value-less one
        {"op": "remove", "path": DEPARTMENT},
        {"op": "replace", "path": "displayName", "value": "A"},
        {"op": "replace", "path": "active", "value": False},
    ]
    assert patch_operations({WORK_EMAIL: "x@example.com"}) == [{"op": "replace", "path": WORK_EMAIL, "value": "x@example.com"}]
    assert patch_operations({}) == []


def test_quote_filter_value_escapes_like_json() -> None:
    assert quote_filter_value('a"b\\c') == '"a\\"b\\\\c"'


# --------------------------------------------------------------------------- real scim2-server


async def test_create_then_find_by_external_id_and_user_name(connector: ScimConnector) -> None:
    attributes = profile()
    created = await connector.create_user(attributes)
    assert created.id and created.active and created.attributes == attributes

    by_external_id = await connector.find_user(external_id=attributes["externalId"], user_name="nobody")
    assert by_external_id is not None and by_external_id.id == created.id
    by_user_name = await connector.find_user(external_id="no-such-id", user_name=attributes["userName"].upper())
    assert by_user_name is not None and by_user_name.id == created.id  # userName matching is case-insensitive
    assert await connector.find_user(external_id="no-such-id", user_name=f"nobody-{uuid.uuid4()}") is None
    assert await connector.find_user() is None


async def test_find_escapes_quotes_and_backslashes(connector: ScimConnector) -> None:
    attributes = profile()
    attributes["userName"] = f'we"ird\\{attributes["userName"]}'
    created = await connector.create_user(attributes)
    found = await connector.find_user(user_name=attributes["userName"])
    assert found is not None and found.id == created.id


async def test_duplicate_user_name_raises_conflict(connector: ScimConnector) -> None:
    attributes = profile()
    await connector.create_user(attributes)
    with pytest.raises(Conflict) as caught:
        await connector.create_user({**attributes, "externalId": "other"})
    assert caught.value.status == 409 and not caught.value.retryable
    assert caught.value.scim_type == "uniqueness"


async def test_patch_updates_email_department_title_and_name(connector: ScimConnector, calls: list[Call]) -> None:
    attributes = profile()
    user = await connector.create_user(attributes)
    changed = {
        WORK_EMAIL: "changed@example.com",
        DEPARTMENT: "Analytics",
        "title": "Countess",
        "name.givenName": "Augusta",
        "displayName": None,
    }
    await connector.update_user(user.id, changed, full={**attributes, **changed})

    assert [c[:3] for c in calls if c[0] == "PATCH"] == [("PATCH", f"/Users/{user.id}", 204)]
    assert not any(c[0] == "PUT" for c in calls)
    fetched = await connector.get_user(user.id)
    assert fetched is not None and fetched.active
    expected = {k: v for k, v in {**attributes, **changed}.items() if v is not None}
    assert fetched.attributes == expected


async def test_patch_removes_the_work_email_entry(connector: ScimConnector) -> None:
    attributes = profile()
    user = await connector.create_user(attributes)
    await connector.update_user(user.id, {WORK_EMAIL: None}, full={**attributes, WORK_EMAIL: None})
    fetched = await connector.get_user(user.id)
    assert fetched is not None and not any(key.startswith("emails") for key in fetched.attributes)


async def test_first_email_falls_back_to_put_after_no_target(connector: ScimConnector, calls: list[Call]) -> None:
    """RFC 7644 makes a replace through an unmatched filter a noTarget error, not an add."""
    attributes = profile(**{WORK_EMAIL: None})
    user = await connector.create_user(attributes, active=False)
    changed = {WORK_EMAIL: "first@example.com"}
    await connector.update_user(user.id, changed, full={**attributes, **changed})

    assert [c[:3] for c in calls if c[0] in ("PATCH", "PUT")] == [("PATCH", f"/Users/{user.id}", 400), ("PUT", f"/Users/{user.id}", 200)]
    fetched = await connector.get_user(user.id)
    assert fetched is not None and fetched.attributes[WORK_EMAIL] == "first@example.com"
    assert fetched.active is False  # kept, although update_user was not told


async def test_put_path_replaces_the_resource(scim_server: ScimServerProcess, calls: list[Call]) -> None:
    async with ScimConnector(scim_server.url, TOKEN, use_patch=False, on_call=lambda *c: calls.append(c)) as conn:
        attributes = profile()
        user = await conn.create_user(attributes)
        full = {**attributes, "title": "Countess", DEPARTMENT: None, WORK_EMAIL: "put@example.com"}
        await conn.update_user(user.id, {"title": "Countess"}, full=full)
        fetched = await conn.get_user(user.id)
        assert fetched is not None and fetched.active  # active=None keeps the current value
        assert fetched.attributes == {k: v for k, v in full.items() if v is not None}

        await conn.update_user(user.id, {}, full=full, active=False)
        fetched = await conn.get_user(user.id)
        assert fetched is not None and not fetched.active

    assert not any(c[0] in ("PATCH",) or c[1] == "/ServiceProviderConfig" for c in calls)


async def test_deactivate_via_patch(connector: ScimConnector, calls: list[Call]) -> None:
    attributes = profile()
    user = await connector.create_user(attributes)
    await connector.update_user(user.id, {}, full=attributes, active=False)
    fetched = await connector.get_user(user.id)
    assert fetched is not None and fetched.active is False and fetched.attributes == attributes

    await connector.update_user(user.id, {}, full=attributes)  # nothing to do: no request at all
    discovery = [c for c in calls if c[1] == "/ServiceProviderConfig"]
    assert len(discovery) == 1 and await connector.patch_supported()
    assert len([c for c in calls if c[1] == "/ServiceProviderConfig"]) == 1  # cached


async def test_delete_is_idempotent(connector: ScimConnector) -> None:
    user = await connector.create_user(profile())
    await connector.delete_user(user.id)
    assert await connector.get_user(user.id) is None
    await connector.delete_user(user.id)  # 404: already gone


async def test_update_of_a_missing_user_is_not_retryable(connector: ScimConnector) -> None:
    with pytest.raises(DownstreamError) as caught:
        await connector.update_user("no-such-user", {"title": "x"}, full=profile())
    assert caught.value.status == 404 and not caught.value.retryable


async def test_list_users_pages_through_everyone(connector: ScimConnector, calls: list[Call]) -> None:
    created = [await connector.create_user(profile()) for _ in range(7)]
    calls.clear()
    listed = [user.id async for user in connector.list_users(page_size=3)]

    assert len(listed) == len(set(listed))  # no user twice across page boundaries
    assert {user.id for user in created} <= set(listed)
    pages = [c for c in calls if c[:2] == ("GET", "/Users")]
    assert len(pages) >= 3 and len(pages) == -(-len(listed) // 3)


async def test_concurrent_calls_stay_within_the_connection_limit(scim_server: ScimServerProcess) -> None:
    """The built-in server drops connections beyond ~30 at once; the pool must queue instead."""
    async with ScimConnector(scim_server.url, TOKEN, max_connections=8) as conn:
        users = await asyncio.gather(*(conn.create_user(profile()) for _ in range(60)))
    assert len({user.id for user in users}) == 60


async def test_wrong_token_is_a_non_retryable_401_without_the_token(scim_server: ScimServerProcess) -> None:
    secret = f"wrong-{uuid.uuid4().hex}"
    async with ScimConnector(scim_server.url, secret) as conn:
        with pytest.raises(DownstreamError) as caught:
            await conn.get_user("anyone")
    error = caught.value
    assert error.status == 401 and not error.retryable and error.message
    for text in (str(error), repr(error), error.message, repr(conn)):
        assert secret not in text


async def test_connection_refused_is_retryable(calls: list[Call]) -> None:
    server = ScimServerProcess(TOKEN).start()
    server.stop()
    server.stop()  # idempotent
    assert not server.running
    async with ScimConnector(server.url, TOKEN, on_call=lambda *c: calls.append(c)) as conn:
        with pytest.raises(DownstreamError) as caught:
            await conn.create_user(profile())
    assert caught.value.status is None and caught.value.retryable
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert [c[:3] for c in calls] == [("POST", "/Users", None)]


async def test_on_call_reports_method_path_status_and_duration(connector: ScimConnector, calls: list[Call]) -> None:
    user = await connector.create_user(profile())
    await connector.get_user(user.id)
    await connector.get_user("missing")
    assert [c[:3] for c in calls] == [("POST", "/Users", 201), ("GET", f"/Users/{user.id}", 200), ("GET", "/Users/missing", 404)]
    assert all(isinstance(c[3], float) and c[3] >= 0 for c in calls)


# --------------------------------------------------------------------------- error mapping (mock transport)


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (scim_error(503, "busy", {"Retry-After": "7"}), 7.0),
        (scim_error(429, "slow down", {"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}), 30.0),
        (scim_error(500, "oops", {"Retry-After": "soon"}), None),
    ],
)
async def test_throttling_and_server_errors_are_retryable(response: httpx.Response, retry_after: float | None) -> None:
    async with mock_connector(lambda request: response) as conn:
        with pytest.raises(DownstreamError) as caught:
            await conn.get_user("u1")
    assert caught.value.retryable and caught.value.retry_after == retry_after
    assert caught.value.message == orjson.loads(response.content)["detail"]


async def test_client_errors_carry_the_detail_and_are_final() -> None:
    async with mock_connector(lambda request: scim_error(400, "userName is required")) as conn:
        with pytest.raises(DownstreamError) as caught:
            await conn.create_user({})
    assert (caught.value.status, caught.value.message, caught.value.retryable) == (400, "userName is required", False)


async def test_malformed_reply_is_retryable() -> None:
    async with mock_connector(lambda request: httpx.Response(200, text="<html>proxy error</html>")) as conn:
        with pytest.raises(DownstreamError, match="malformed reply") as caught:
            await conn.get_user("u1")
    assert caught.value.retryable and "proxy error" in caught.value.message


async def test_non_json_error_body_is_excerpted() -> None:
    async with mock_connector(lambda request: httpx.Response(502, text="<h1>Bad   gateway</h1>")) as conn:
        with pytest.raises(DownstreamError) as caught:
            await conn.get_user("u1")
    assert (caught.value.status, caught.value.message, caught.value.retryable) == (502, "<h1>Bad gateway</h1>", True)


async def test_timeout_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    async with mock_connector(handler) as conn:
        with pytest.raises(DownstreamError, match="timed out") as caught:
            await conn.delete_user("u1")
    assert caught.value.status is None and caught.value.retryable


async def test_a_token_echoed_by_the_server_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return scim_error(401, f"bad credentials: {request.headers['Authorization']}")

    async with mock_connector(handler) as conn:
        with pytest.raises(DownstreamError) as caught:
            await conn.get_user("u1")
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert "[redacted]" in caught.value.message


async def test_several_matches_are_refused() -> None:
    resources = [{"id": "a", "userName": "x"}, {"id": "b", "userName": "x"}]
    page = {"totalResults": 2, "Resources": resources}
    async with mock_connector(lambda request: httpx.Response(200, content=orjson.dumps(page))) as conn:
        with pytest.raises(AmbiguousMatch):
            await conn.find_user(user_name="X")  # userName compares without case (RFC 7643 §4.1.1)


async def test_a_search_answered_with_users_that_do_not_match_it_links_no_one() -> None:
    """Found by the reply fuzzer: an app (or a proxy) that ignores the filter answers with whatever
    users it lists first; linking the first would hand our user someone else's account."""
    others = {"totalResults": 1, "Resources": [{"id": "someone-else", "userName": "mallory", "externalId": "u-9"}]}
    async with mock_connector(lambda request: httpx.Response(200, content=orjson.dumps(others))) as conn:
        with pytest.raises(DownstreamError, match="do not match") as caught:
            await conn.find_user(external_id="u-1", user_name="ada")
        assert caught.value.retryable
        with pytest.raises(DownstreamError, match="do not match"):
            await conn.find_group(display_name="Engineering")
        with pytest.raises(DownstreamError, match="do not match"):  # externalId is case-exact
            await conn.find_user(external_id="U-9")


async def test_an_app_that_leaves_external_id_out_of_its_answers_is_matched_by_user_name() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        resource = {"id": "ada-1", "userName": "ada"}  # found by externalId, returned without it
        return httpx.Response(200, content=orjson.dumps({"totalResults": 1, "Resources": [resource]}))

    async with mock_connector(handler) as conn:
        found = await conn.find_user(external_id="u-1", user_name="ada")
        assert found is not None and found.id == "ada-1"
        with pytest.raises(DownstreamError, match="do not match"):  # userName is the last word: never linked blind
            await conn.find_user(external_id="u-1", user_name="bob")


async def test_a_search_keeps_only_the_resources_that_match_it() -> None:
    page = {"totalResults": 2, "Resources": [{"id": "a", "userName": "mallory"}, {"id": "b", "userName": "Ada"}]}
    async with mock_connector(lambda request: httpx.Response(200, content=orjson.dumps(page))) as conn:
        found = await conn.find_user(user_name="ada")
    assert found is not None and found.id == "b"


async def test_without_service_provider_config_updates_use_put() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        assert request.method == "GET" or request.headers["Content-Type"] == "application/scim+json"
        if request.url.path.endswith("/ServiceProviderConfig"):
            return scim_error(404, "not here")
        return httpx.Response(200, content=orjson.dumps({"id": "u1", "userName": "x"}))

    async with mock_connector(handler) as conn:
        await conn.update_user("u1", {"title": "t"}, full={"userName": "x", "title": "t"}, active=True)
    assert seen == [("GET", "/v2/ServiceProviderConfig"), ("PUT", "/v2/Users/u1")]
