"""The connector contract (provtui.connectors.base), one suite for every kind of connector.

Each kind is built the way the engine builds it (provtui.connectors.config.connector_for, from an app
record) against a real downstream: SCIM against the session's scim2-server, LDAP against the session's
slapd.  Each must implement the protocol, declare what it can do, do what it declares (create, read
back, update, deactivate, reactivate, delete; groups, passwords, account listing where declared), and
fail with the contract's errors: a taken name is a Conflict, a missing account a permanent 404, refused
credentials a permanent 401, an unreachable app a retryable fault with no status, a configuration that
cannot work a DownstreamError before anything is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from provtui.connectors.base import AccountListing, Capability, Conflict, Connector, DownstreamError, GroupPush, PasswordSync, supports
from provtui.connectors.config import ConfigError, connector_for
from provtui.domain.apps import DEFAULT_CAPABILITIES, AppKind
from provtui.testing.scim_server import free_port
from provtui.testing.slapd import slapd_available
from tests.helpers.ldap import LDAP_APP_PASSWORD_ENV, ldap_app_target

TOKEN_ENV = "PROVTUI_TEST_CONTRACT_TOKEN"
OPTIONAL = {Capability.PUSH_GROUPS: GroupPush, Capability.SYNC_PASSWORD: PasswordSync, Capability.IMPORT: AccountListing}
Call = tuple[str, str, int | None, float]


@dataclass
class Kind:
    """One kind of downstream: how to make its app record and the flat attributes its mappings send."""

    name: str
    app: Callable[..., dict]  # (**settings) -> app record, credentials in the environment
    attributes: Callable[[str, str], dict[str, Any]]  # (login, external id) -> what a create sends
    break_credentials: Callable[[], None]  # make the credentials in the environment wrong
    unreachable: Callable[[dict], dict]  # an app record pointing at a port nothing listens on
    misconfigured: Callable[[dict], dict]  # an app record that cannot work as it stands


def _scim_kind(server, monkeypatch) -> Kind:
    monkeypatch.setenv(TOKEN_ENV, server.token)

    def app(**settings: Any) -> dict:
        return {
            "id": "contract-scim",
            "name": "Contract SCIM",
            "kind": AppKind.SCIM,
            "scim_url": server.url,
            "token_env": TOKEN_ENV,
            "settings": {"concurrency": 4, **settings},
        }

    def attributes(login: str, external_id: str) -> dict[str, Any]:
        return {
            "userName": login,
            "externalId": external_id,
            "name.givenName": "Ada",
            "name.familyName": "Lovelace",
            'emails[type eq "work"].value': f"{login}@example.org",
            "title": "Engineer",
        }

    return Kind(
        "scim",
        app,
        attributes,
        lambda: monkeypatch.setenv(TOKEN_ENV, "not-the-token"),
        lambda record: {**record, "scim_url": f"http://127.0.0.1:{free_port()}/v2"},
        lambda record: {**record, "token_env": "PROVTUI_TEST_CONTRACT_UNSET"},
    )


def _ldap_kind(server, subtree, monkeypatch) -> Kind:
    def app(**settings: Any) -> dict:
        return {
            "id": "contract-ldap",
            "name": "Contract LDAP",
            "kind": AppKind.LDAP,
            "ldap": ldap_app_target(server, subtree),
            "settings": settings,
        }

    def attributes(login: str, external_id: str) -> dict[str, Any]:
        return {
            "uid": login,
            "externalId": external_id,
            "cn": "Ada Lovelace",
            "givenName": "Ada",
            "sn": "Lovelace",
            "mail": f"{login}@example.org",
            "title": "Engineer",
        }

    return Kind(
        "ldap",
        app,
        attributes,
        lambda: monkeypatch.setenv(LDAP_APP_PASSWORD_ENV, "not-the-password"),
        lambda record: {**record, "ldap": {**record["ldap"], "uri": f"ldap://127.0.0.1:{free_port()}"}},
        lambda record: {**record, "ldap": {**record["ldap"], "disable_method": "nonsense"}},
    )


@pytest.fixture(params=["scim", "ldap"])
def kind(request, monkeypatch) -> Kind:
    if request.param == "scim":
        return _scim_kind(request.getfixturevalue("scim_server"), monkeypatch)
    if not slapd_available():
        pytest.skip("OpenLDAP slapd is not installed")
    return _ldap_kind(request.getfixturevalue("slapd"), request.getfixturevalue("tree"), monkeypatch)


def _names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"contract{suffix}", f"ext-{suffix}"


# --------------------------------------------------------------------------- the protocol and its declarations


async def test_implements_the_protocol_and_declares_its_capabilities(kind: Kind) -> None:
    async with connector_for(kind.app(push_groups=True)) as connector:
        assert isinstance(connector, Connector)
        assert isinstance(connector.naming_attribute, str) and connector.naming_attribute
        capabilities = connector.capabilities
        assert capabilities <= set(Capability)
        # At least what the domain lets an app of its kind do by default, and every account lifecycle step.
        assert set(DEFAULT_CAPABILITIES[AppKind(kind.name)]) <= capabilities
        assert {Capability.CREATE, Capability.UPDATE, Capability.DEACTIVATE, Capability.REACTIVATE, Capability.DELETE} <= capabilities
        for capability, protocol in OPTIONAL.items():
            if supports(connector, capability):
                assert isinstance(connector, protocol), capability
        assert supports(connector, Capability.PUSH_GROUPS)


# --------------------------------------------------------------------------- accounts


async def test_account_lifecycle_create_read_back_update_deactivate_reactivate_delete(kind: Kind) -> None:
    login, external_id = _names()
    calls: list[Call] = []
    async with connector_for(kind.app(), on_call=lambda *call: calls.append(call)) as connector:
        attributes = kind.attributes(login, external_id)
        created = await connector.create_user(attributes, active=True)
        assert created.id and created.active

        for found in (
            await connector.get_user(created.id),
            await connector.find_user(external_id=external_id),
            await connector.find_user(user_name=attributes[connector.naming_attribute]),
        ):
            assert found is not None and found.id == created.id and found.active
            assert found.attributes.get("title") == "Engineer"
            assert found.attributes.get("externalId") == external_id

        await connector.update_user(created.id, {"title": "Chief Engineer"}, full={**attributes, "title": "Chief Engineer"})
        assert (await connector.get_user(created.id)).attributes.get("title") == "Chief Engineer"

        attributes["title"] = "Chief Engineer"
        await connector.update_user(created.id, {}, full=attributes, active=False)
        deactivated = await connector.get_user(created.id)
        assert deactivated is not None and deactivated.active is False
        assert (await connector.find_user(external_id=external_id)).id == created.id  # still found while inactive

        await connector.update_user(created.id, {}, full=attributes, active=True)
        assert (await connector.get_user(created.id)).active is True

        await connector.delete_user(created.id)
        assert await connector.get_user(created.id) is None
        await connector.delete_user(created.id)  # already gone: the goal, not an error
        assert await connector.find_user(external_id=external_id) is None
    # Every wire call was reported: (method, path, status, duration).
    assert calls and all(isinstance(m, str) and isinstance(p, str) and d >= 0 for m, p, _, d in calls)


async def test_a_taken_name_is_a_conflict(kind: Kind) -> None:
    login, external_id = _names()
    async with connector_for(kind.app()) as connector:
        first = await connector.create_user(kind.attributes(login, external_id))
        try:
            with pytest.raises(Conflict) as raised:
                await connector.create_user(kind.attributes(login, f"{external_id}-other"))
            assert isinstance(raised.value, DownstreamError) and raised.value.status == 409
        finally:
            await connector.delete_user(first.id)


async def test_a_missing_account_is_a_permanent_404(kind: Kind) -> None:
    async with connector_for(kind.app()) as connector:
        missing = str(uuid.uuid4())
        assert await connector.get_user(missing) is None
        with pytest.raises(DownstreamError) as raised:
            await connector.update_user(missing, {"title": "x"}, full={"title": "x"}, active=False)
        assert raised.value.status == 404 and not raised.value.retryable


# --------------------------------------------------------------------------- declared extras


async def test_groups_when_declared(kind: Kind) -> None:
    login, external_id = _names()
    async with connector_for(kind.app(push_groups=True)) as connector:
        assert supports(connector, Capability.PUSH_GROUPS) and isinstance(connector, GroupPush)
        member = await connector.create_user(kind.attributes(login, external_id))
        other = await connector.create_user(kind.attributes(f"{login}b", f"{external_id}b"))
        group_id = f"group-{uuid.uuid4().hex[:8]}"
        name = f"{login}-team"
        try:
            group = await connector.create_group(name, group_id, {member.id})
            assert group.display_name == name and group.members == {member.id}
            assert (await connector.find_group(external_id=group_id)).id == group.id
            await connector.update_group(
                group.id,
                display_name=f"{name}-2",
                add={other.id},
                remove={member.id},
                full_name=f"{name}-2",
                external_id=group_id,
                full_members={other.id},
            )
            changed = await connector.get_group(group.id)
            assert changed.display_name == f"{name}-2" and changed.members == {other.id}
            listed = {g.id: g for g in [g async for g in connector.list_groups()]}
            assert listed[group.id].members == {other.id}
            await connector.delete_group(group.id)
            assert await connector.get_group(group.id) is None
        finally:
            await connector.delete_user(member.id)
            await connector.delete_user(other.id)


async def test_group_calls_work_exactly_when_group_push_is_declared(kind: Kind) -> None:
    """An app without group push: a connector that then declares no PUSH_GROUPS refuses group calls."""
    async with connector_for(kind.app(push_groups=False)) as connector:
        if supports(connector, Capability.PUSH_GROUPS):
            assert await connector.find_group(external_id=f"nobody-{uuid.uuid4().hex}") is None
        else:
            with pytest.raises(DownstreamError) as raised:
                await connector.find_group(external_id="nobody")
            assert not raised.value.retryable


async def test_passwords_when_declared(kind: Kind) -> None:
    login, external_id = _names()
    async with connector_for(kind.app()) as connector:
        assert supports(connector, Capability.SYNC_PASSWORD) and isinstance(connector, PasswordSync)
        attributes = kind.attributes(login, external_id)
        created = await connector.create_user(attributes)
        try:
            await connector.set_password(created.id, f"S3cret-{uuid.uuid4().hex}", full=attributes)
            assert (await connector.get_user(created.id)).active
        finally:
            await connector.delete_user(created.id)


async def test_account_listing_when_declared(kind: Kind) -> None:
    login, external_id = _names()
    async with connector_for(kind.app()) as connector:
        if not supports(connector, Capability.IMPORT):
            assert not isinstance(connector, AccountListing)
            return
        created = await connector.create_user(kind.attributes(login, external_id))
        try:
            assert created.id in {user.id async for user in connector.list_users(page_size=50)}
        finally:
            await connector.delete_user(created.id)


# --------------------------------------------------------------------------- the app's faults


async def test_refused_credentials_are_a_permanent_401(kind: Kind) -> None:
    kind.break_credentials()
    async with connector_for(kind.app()) as connector:
        with pytest.raises(DownstreamError) as raised:
            await connector.find_user(external_id="provtui-contract-probe")
    assert raised.value.status == 401 and not raised.value.retryable
    assert "not-the-" not in str(raised.value)  # never the credential


async def test_an_unreachable_app_is_a_retryable_fault_without_status(kind: Kind) -> None:
    async with connector_for(kind.unreachable(kind.app())) as connector:
        with pytest.raises(DownstreamError) as raised:
            await connector.find_user(external_id="provtui-contract-probe")
    assert raised.value.status is None and raised.value.retryable


async def test_a_configuration_that_cannot_work_fails_before_any_call(kind: Kind) -> None:
    with pytest.raises(DownstreamError) as raised:
        connector_for(kind.misconfigured(kind.app()))
    assert raised.value.status is None and not raised.value.retryable
    if kind.name == "scim":
        assert isinstance(raised.value, ConfigError)
