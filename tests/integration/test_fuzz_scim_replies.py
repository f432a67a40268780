"""Fuzzing what a SCIM app replies: any reply becomes a correct result or a clean, surfaced fault.

The replies hypothesis makes up (wrong JSON types, missing id/userName/meta, nulls, huge
strings and numbers, deep nesting, odd Unicode, wrong content types, empty, non-JSON or
truncated bodies, odd status codes and Retry-After values, ListResponses whose totalResults
lie) are served by a real HTTP server on 127.0.0.1: the fault server's ``scripted`` kind,
whose reply the test sets per example.  The connector must return a well-formed result or
raise DownstreamError; the reconciler must record a failed or deferred key with a readable
message, never crash, never link the wrong account and never half-write one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provtui.compose import build_engine
from provtui.connectors.scim import MAX_MESSAGE_CHARS, MAX_RETRY_AFTER, DownstreamError, RemoteGroup, RemoteUser, ScimConnector
from provtui.engine import reconciler as engine
from provtui.model.schema import ACCOUNTS, DIRTY, USERS, account_key
from provtui.service import Service
from provtui.testing.fault_server import FaultServerProcess, FaultSpecError

TOKEN = "fuzz-token-3f9a"
TOKEN_ENV = "PROVTUI_TEST_FUZZ_SCIM_TOKEN"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server():
    with FaultServerProcess(token=TOKEN) as process:
        yield process
        process.clear_faults()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr("provtui.engine.sending.BACKOFF_BASE", 0.001)
    monkeypatch.setattr("provtui.engine.sending.BACKOFF_CAP", 0.01)


# --------------------------------------------------------------------------- replies

# Odd Unicode: RTL and bidi controls, NUL and other controls, combining marks, astral planes, and
# lone surrogates (which only reach the wire as \\ud800 escapes, or as CESU bytes in a raw body).
odd_text = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(categories=["Cc", "Cf", "Mn", "Zl", "Zp", "Cs", "Co"]), max_size=10),
    st.sampled_from(["", " ", "\u202eevil\u202c", "\u0000", "e\u0301\u0301\u0301", "\U0001f600", "\ud800", "שלום", "null"]),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "x" * n),  # huge
)
huge_numbers = st.one_of(st.integers(), st.integers(min_value=2**63, max_value=2**200), st.floats(allow_nan=False))
scalars = st.one_of(st.none(), st.booleans(), huge_numbers, odd_text)
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)), max_leaves=12
)


def optional(name: str, values: st.SearchStrategy) -> st.SearchStrategy[dict]:
    """{name: value} or {} (the field missing)."""
    return st.one_of(st.just({}), values.map(lambda v: {name: v}))


def merged(*parts: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    return st.tuples(*parts).map(lambda dicts: {k: v for d in dicts for k, v in d.items()})


good_ids = st.one_of(st.uuids().map(str), st.sampled_from(["a/b", "../Users", "?x=1", "#frag", "%2F", " lead", "שלום"]))
user_resources = merged(
    optional("schemas", st.one_of(st.just([CORE_USER]), json_values)),
    optional("id", st.one_of(good_ids, json_values)),
    optional("userName", json_values),
    optional("externalId", json_values),
    optional("meta", json_values),
    optional("active", json_values),
    optional("name", st.one_of(st.fixed_dictionaries({"givenName": odd_text, "familyName": json_values}), json_values)),
    optional(
        "emails",
        st.one_of(
            st.lists(st.fixed_dictionaries({"type": json_values, "value": json_values}, optional={"primary": json_values}), max_size=3),
            json_values,
        ),
    ),
    optional("members", st.one_of(st.lists(st.fixed_dictionaries({"value": json_values}), max_size=3), json_values)),
    optional("displayName", json_values),
    optional(CORE_USER, json_values),
    optional("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", json_values),
    optional("patch", st.one_of(st.fixed_dictionaries({"supported": json_values}), json_values)),
)
list_responses = merged(
    optional("schemas", st.just([LIST_SCHEMA])),
    optional("totalResults", st.one_of(st.integers(min_value=-5, max_value=10**12), json_values)),
    optional("startIndex", json_values),
    optional("Resources", st.one_of(st.lists(user_resources, max_size=3), json_values)),
)
errors = merged(
    st.just({"schemas": [ERROR_SCHEMA]}),
    optional("detail", json_values),
    optional("scimType", json_values),
    optional("status", json_values),
)


def deep(depth: int) -> bytes:
    """A user whose one attribute nests ``depth`` objects deep (orjson reads up to 1024)."""
    return b'{"id":"deep","userName":"d","x":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


def encode(value: Any, ascii_only: bool) -> bytes:
    """JSON text; lone surrogates are written as escapes (ensure_ascii) or as CESU bytes."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


documents = st.one_of(user_resources, list_responses, errors, json_values)
bodies = st.one_of(
    st.tuples(documents, st.booleans()).map(lambda t: encode(*t)),
    st.tuples(documents, st.booleans(), st.floats(0, 1)).map(lambda t: (b := encode(t[0], t[1]))[: int(len(b) * t[2])]),
    st.binary(max_size=64),
    st.just(b""),
    st.sampled_from([100, 900, 1023, 1100, 5000]).map(deep),
    st.sampled_from([b"[" * 2000, b"null", b"<html><body>502 Bad Gateway</body></html>", b"\xef\xbb\xbf{}"]),
)
statuses = st.one_of(st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 412, 429, 500, 501, 503]), st.integers(200, 999))
content_types = st.sampled_from(
    [
        None,
        "application/scim+json",
        "application/json",
        "text/html",
        "text/plain; charset=foo",
        "application/scim+json; charset=utf-16",
        "application/json; charset=latin-1",
    ]
)
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "1.5",
            "\u00b2",
            "\u00b3",
            "99999999999999999999999",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "soon",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20),
)
replies = st.fixed_dictionaries(
    {"status": statuses, "body": bodies, "content_type": content_types, "retry_after": retry_afters, "length_lies": st.booleans()}
)


def script(server: FaultServerProcess, reply: dict) -> None:
    """Every request is answered with ``reply`` until the next script."""
    headers = []
    if reply["content_type"] is not None:
        headers.append(["Content-Type", reply["content_type"]])
    if reply["retry_after"] is not None:
        headers.append(["Retry-After", reply["retry_after"]])
    if reply["length_lies"] and reply["body"]:
        headers.append(["Content-Length", str(len(reply["body"]) + 10)])  # promises more than comes: truncated
    server.set_faults(
        reset=True, scripted={"status": reply["status"], "headers": headers, "body_b64": base64.b64encode(reply["body"]).decode()}
    )


def payload_of(reply: dict) -> Any:
    try:
        return orjson.loads(reply["body"])
    except orjson.JSONDecodeError:
        return None


# --------------------------------------------------------------------------- checks


def refused_delete(server: FaultServerProcess) -> DownstreamError:
    """The fault a DELETE meets under the scripted reply (the reply is one no success can come from)."""

    async def scenario():
        async with ScimConnector(server.url, TOKEN, timeout=5) as scim:
            with pytest.raises(DownstreamError) as caught:
                await scim.delete_user("x")
            return caught.value

    return asyncio.run(scenario())


def check_error(error: DownstreamError) -> None:
    """A clean fault: a short, readable message without the token, and sane retry fields."""
    assert isinstance(error.message, str) and error.message.strip(), repr(error)
    assert len(error.message) <= MAX_MESSAGE_CHARS + 200, len(error.message)
    assert TOKEN not in error.message and TOKEN not in str(error)
    assert "\x00" not in error.message
    assert isinstance(error.retryable, bool)
    assert error.status is None or isinstance(error.status, int)
    if error.retry_after is not None:
        assert math.isfinite(error.retry_after) and 0 <= error.retry_after <= MAX_RETRY_AFTER
    orjson.dumps({"message": error.message})  # storable: no lone surrogates


def check_user(user: RemoteUser, reply: dict) -> None:
    payload = payload_of(reply)
    assert isinstance(user, RemoteUser) and isinstance(user.id, str) and user.id
    assert isinstance(user.active, bool) and isinstance(user.attributes, dict)
    assert 200 <= reply["status"] < 300
    # Not a made-up link: the id is the one the reply gave (for a list, one of its Resources).
    if isinstance(payload, dict) and "Resources" in payload and payload.get("id") != user.id:
        assert user.id in [r.get("id") for r in payload["Resources"]]
    else:
        assert isinstance(payload, dict) and payload.get("id") == user.id


def check_group(group: RemoteGroup, reply: dict) -> None:
    assert isinstance(group, RemoteGroup) and isinstance(group.id, str) and group.id
    assert isinstance(group.display_name, str) and all(isinstance(m, str) for m in group.members)
    assert group.external_id is None or isinstance(group.external_id, str)
    assert 200 <= reply["status"] < 300


async def outcome(call, check=None, reply=None) -> None:
    """Run one connector call: it returns a checked result or raises DownstreamError, nothing else."""
    try:
        result = await asyncio.wait_for(call, timeout=30)  # a paging loop that never ends fails here
    except DownstreamError as error:
        check_error(error)
        return
    if check is not None and result is not None:
        check(result, reply)


async def collect(iterator) -> list:
    return [item async for item in iterator]


# --------------------------------------------------------------------------- the connector


def test_scripted_replies_are_served_byte_for_byte(server):
    body = "\ud800 caf\u00e9".encode("utf-8", "surrogatepass") + b"\xff"
    server.set_faults(reset=True, scripted={"status": 418, "headers": [["X-Odd", "\u00b2"]], "body_b64": base64.b64encode(body).decode()})
    response = httpx.get(server.url + "/Users", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (response.status_code, response.content, response.headers["x-odd"]) == (418, body, "\u00b2")
    assert "content-type" not in response.headers  # headers given replace the default
    with pytest.raises(FaultSpecError, match="status"):
        server.set_faults(scripted={"status": 100})
    with pytest.raises(FaultSpecError, match="base64"):
        server.set_faults(scripted={"body_b64": "not base64!"})
    server.clear_faults()


@given(reply=replies)
@SETTINGS
def test_every_connector_call_returns_a_result_or_a_clean_fault(server, reply):
    script(server, reply)

    async def scenario():
        async with ScimConnector(server.url, TOKEN, timeout=5, use_patch=None) as scim:
            await outcome(scim.patch_supported())
            await outcome(scim.find_user(external_id="ext-1", user_name="u1"), check_user, reply)
            await outcome(scim.get_user("abc"), check_user, reply)
            await outcome(scim.create_user({"userName": "u1", "externalId": "ext-1", "name.givenName": "U"}), check_user, reply)
            await outcome(scim.update_user("abc", {"title": "T"}, full={"userName": "u1", "title": "T"}))
            await outcome(scim.set_password("abc", "pw-secret-1", full={"userName": "u1"}))
            await outcome(scim.delete_user("abc"))
            await outcome(collect(scim.list_users(page_size=2)))
            await outcome(scim.find_group(external_id="g1", display_name="G"), check_group, reply)
            await outcome(scim.get_group("g"), check_group, reply)
            await outcome(scim.create_group("G", "g1", {"m1"}), check_group, reply)
            await outcome(
                scim.update_group("g", display_name="H", add={"m2"}, remove={"m1"}, full_name="H", external_id="g1", full_members={"m2"})
            )
            await outcome(scim.delete_group("g"))
            await outcome(collect(scim.list_groups(page_size=2)))

    asyncio.run(scenario())


def test_a_server_that_ignores_start_index_cannot_page_forever(server):
    """Regression: the same page over and over with a totalResults that never comes looped for ever."""
    page = {"schemas": [LIST_SCHEMA], "totalResults": 10**9, "Resources": [{"id": "same", "userName": "u"}]}
    script(server, {"status": 200, "body": orjson.dumps(page), "content_type": None, "retry_after": None, "length_lies": False})

    async def scenario():
        async with ScimConnector(server.url, TOKEN, timeout=5) as scim:
            for listing in (scim.list_users(page_size=1), scim.list_groups(page_size=1)):
                with pytest.raises(DownstreamError, match="startIndex"):
                    await asyncio.wait_for(collect(listing), timeout=30)

    asyncio.run(scenario())
    server.clear_faults()


@pytest.mark.parametrize("retry_after", ["\u00b2", "99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_odd_retry_after_is_a_bounded_number_of_seconds(server, retry_after):
    """Regression: a Unicode digit crashed float(); a huge wait overflowed the engine's not_before."""
    script(server, {"status": 503, "body": b"", "content_type": None, "retry_after": retry_after, "length_lies": False})
    error = refused_delete(server)
    assert error.retryable and (error.retry_after is None or 0 <= error.retry_after <= MAX_RETRY_AFTER)
    server.clear_faults()


def test_a_deeply_nested_reply_is_a_clean_fault(server):
    """Regression: flattening a reply nested a thousand objects deep raised RecursionError."""
    script(server, {"status": 200, "body": deep(1000), "content_type": None, "retry_after": None, "length_lies": False})

    async def scenario():
        async with ScimConnector(server.url, TOKEN, timeout=5) as scim:
            with pytest.raises(DownstreamError, match="nested"):
                await scim.get_user("deep")

    asyncio.run(scenario())
    server.clear_faults()


def test_a_huge_error_detail_is_cut_to_a_readable_message(server):
    """Regression: a 1 MB SCIM error detail (with NULs and newlines) went whole into the store and audit."""
    detail = "bad\x00value\n" * 100_000
    body = orjson.dumps({"schemas": [ERROR_SCHEMA], "detail": detail, "status": "400"})
    script(server, {"status": 400, "body": body, "content_type": None, "retry_after": None, "length_lies": False})
    error = refused_delete(server)
    check_error(error)
    assert error.message.startswith("bad value bad value")
    server.clear_faults()


# --------------------------------------------------------------------------- the engine


def new_org(root: Path, server: FaultServerProcess) -> Service:
    service = Service.init(root / "store", actor="admin")
    service.create_app("Fuzzed", scim_url=server.url, token_env=TOKEN_ENV)
    service.create_group("eng")
    service.assign("Fuzzed", group="eng")
    return service


def hire(service: Service) -> str:
    login = f"fz-{uuid.uuid4().hex[:10]}"
    service.create_user(login, f"{login}@example.com", "Fuzz", "User", {"title": "Engineer"}, activate=True)
    service.add_members("eng", [login])
    return login


def sync(service: Service) -> engine.SyncReport:
    async def run():
        reconciler = build_engine(service, sleep=lambda seconds: asyncio.sleep(0), notify=False)
        try:
            return await reconciler.run_until_idle()
        finally:
            await reconciler.aclose()

    return asyncio.run(run())


def account_of(service: Service, login: str) -> tuple[str, dict]:
    service.store.refresh()
    app = next(iter(service.list_apps()))
    (user_id,) = service.store.lookup(USERS, "login", login)
    key = account_key(app["id"], user_id)
    return key, service.store.get(ACCOUNTS, key)


def check_failure_surfaced(service: Service, key: str, account: dict, report: engine.SyncReport) -> None:
    assert account["state"] == "failed" and isinstance(account["last_error"], str) and account["last_error"].strip()
    assert TOKEN not in account["last_error"]
    entries = report.failed + report.deferred
    assert len(entries) == 1 and entries[0]["error"] == account["last_error"]
    assert (service.store.get(DIRTY, key) is not None) == bool(report.deferred)  # a transient fault stays queued


def check_credentials_rejected(service: Service, key: str, reply: dict, report: engine.SyncReport) -> None:
    """A 401/403 is about the app: it is paused with the server's (clean) message; the account stays queued, not failed."""
    assert reply["status"] in (401, 403) and not report.failed and not report.deferred
    [rejected] = report.credentials_rejected
    assert isinstance(rejected["error"], str) and rejected["error"].strip() and TOKEN not in rejected["error"]
    [status] = service.app_status()
    assert status["credentials_rejected"] and status["credentials_error"] == rejected["error"] and status["failed"] == 0
    assert service.store.get(DIRTY, key) is not None


@given(reply=replies)
@settings(SETTINGS, max_examples=25)
def test_a_create_under_any_reply_links_the_right_account_or_fails_cleanly(server, monkeypatch, reply):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with tempfile.TemporaryDirectory() as root:
        server.clear_faults()
        service = new_org(Path(root), server)
        login = hire(service)
        script(server, reply)
        report = sync(service)
        key, account = account_of(service, login)
        payload = payload_of(reply)
        if report.credentials_rejected:
            check_credentials_rejected(service, key, reply, report)
            assert account is None or (account["remote_id"] is None and account["state"] != "failed")
        elif account["state"] == "active":
            assert 200 <= reply["status"] < 300 and not report.failed and not report.deferred
            # The id the reply gave, never one made up or left over.
            assert isinstance(payload, dict) and account["remote_id"] == payload["id"]
            assert account["attributes"]["userName"] == login and service.store.get(DIRTY, key) is None
        else:
            check_failure_surfaced(service, key, account, report)
            assert account["remote_id"] is None and account["create_uncertain"] is True
            assert account["attributes"] == {}  # nothing recorded as sent


@given(reply=replies)
@settings(SETTINGS, max_examples=20)
def test_an_update_under_any_reply_keeps_the_link_and_fails_cleanly(server, monkeypatch, reply):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with tempfile.TemporaryDirectory() as root:
        server.clear_faults()
        service = new_org(Path(root), server)
        login = hire(service)
        assert sync(service).ok
        key, before = account_of(service, login)
        service.update_user(login, {"title": "Principal"})
        script(server, reply)
        report = sync(service)
        _, account = account_of(service, login)
        assert account["remote_id"] == before["remote_id"]  # an update never relinks
        if report.credentials_rejected:
            check_credentials_rejected(service, key, reply, report)
            assert account["attributes"] == before["attributes"]  # what was last sent, not what was wanted
        elif account["state"] == "active":
            assert 200 <= reply["status"] < 300 and not report.failed and not report.deferred
            assert account["attributes"]["title"] == "Principal"
        else:
            check_failure_surfaced(service, key, account, report)
            assert account["attributes"] == before["attributes"]  # what was last sent, not what was wanted
        server.clear_faults()


def test_a_body_that_does_not_match_its_charset_is_a_clean_fault(server):
    """Regression: reading the excerpt of a reply labelled utf-16 without a BOM raised UnicodeError."""
    script(
        server,
        {"status": 400, "body": b"null", "content_type": "application/json; charset=utf-16", "retry_after": None, "length_lies": False},
    )
    error = refused_delete(server)
    check_error(error)
    assert error.status == 400 and error.message == "null"
    server.clear_faults()


def test_the_engine_defers_a_key_told_to_retry_after_ages(server, monkeypatch, tmp_path):
    """Regression: Retry-After of 10^23 seconds overflowed the key's not_before and crashed the run."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    service = new_org(tmp_path, server)
    login = hire(service)
    script(server, {"status": 503, "body": b"", "content_type": None, "retry_after": "99999999999999999999999", "length_lies": False})
    report = sync(service)
    key, account = account_of(service, login)
    check_failure_surfaced(service, key, account, report)
    (deferred,) = report.deferred
    assert deferred["status"] == 503
    server.clear_faults()
