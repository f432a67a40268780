"""LDAP/AD apps end to end: the real reconciler, through the Service, into a real slapd
(provtui.connectors.ldap.LdapAppConnector over LdapWriter)."""

from __future__ import annotations

import json
import secrets
import uuid
from types import SimpleNamespace
from typing import Any

import ldap3
import pytest

from provtui.compose import build_engine
from provtui.connectors.base import DownstreamError
from provtui.connectors.ldap import LdapAppConnector, LdapTarget, uuid_filter
from provtui.engine import sending
from provtui.service import Service
from provtui.testing.scim_server import free_port
from provtui.testing.slapd import SlapdProcess, ad_user_entry, person_entry, slapd_available
from tests.helpers.ldap import AD_TEST_OPTIONS, entries, sync
from tests.helpers.ldap import LDAP_APP_PASSWORD_ENV as PW_ENV
from tests.helpers.ldap import ldap_app_target as target
from tests.helpers.ldap import make_ldap_service as make_service

needs_slapd = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def org(tmp_path, slapd: SlapdProcess, tree: SimpleNamespace) -> Service:
    return make_service(tmp_path / "store", target(slapd, tree), push_groups=True, sync_password=True)


def calls(service: Service) -> list[dict]:
    return [e["after"] for e in service.audit() if e["action"] == "downstream.call"]


def account(service: Service, login: str) -> dict:
    return service.user_view(login)["apps"][0]["account"]


# --------------------------------------------------------------------------- accounts


@needs_slapd
async def test_create_update_and_rename(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    login = org.hire("ada", title="Engineer", department="R&D")
    report = await sync(org)
    assert report.ok and report.done == 1
    user_id = org.user_view(login)["id"]
    ((dn, attrs),) = entries(slapd, tree.base).items()
    assert dn == f"uid=ada,{tree.people}"
    assert {k: attrs[k] for k in ("uid", "cn", "givenName", "sn", "mail", "title", "departmentNumber", "employeeNumber")} == {
        "uid": ["ada"],
        "cn": ["Ada Lovelace"],
        "givenName": ["Ada"],
        "sn": ["Lovelace"],
        "mail": ["ada@example.org"],
        "title": ["Engineer"],
        "departmentNumber": ["R&D"],
        "employeeNumber": [user_id],
    }
    uuid_ = attrs["entryUUID"][0]
    assert account(org, login)["remote_id"] == uuid_ and account(org, login)["state"] == "active"
    made = calls(org)
    assert {"BIND", "SEARCH", "ADD"} <= {c["method"] for c in made}
    assert {"method": "ADD", "path": dn, "status": 0} in [{k: c[k] for k in ("method", "path", "status")} for c in made]
    assert slapd.admin_password not in json.dumps(made)

    org.update_user(login, {"title": "Chief Engineer", "department": None})
    report = await sync(org)
    assert report.ok and report.done == 1
    attrs = entries(slapd, tree.base)[dn]
    assert attrs["title"] == ["Chief Engineer"] and "departmentNumber" not in attrs
    assert [c["method"] for c in calls(org)[len(made) :] if c["method"] not in ("BIND", "SEARCH")] == ["MODIFY"]

    org.update_user(login, {"login": "ada.l"})  # uid names the entry: a MODRDN, same entry
    before = len(calls(org))
    report = await sync(org)
    assert report.ok
    found = entries(slapd, tree.base)
    assert list(found) == [f"uid=ada.l,{tree.people}"] and found[f"uid=ada.l,{tree.people}"]["entryUUID"] == [uuid_]
    assert found[f"uid=ada.l,{tree.people}"]["uid"] == ["ada.l"]
    assert "MODRDN" in [c["method"] for c in calls(org)[before:]]
    again = await sync(org)
    assert again.ok and again.calls == 0  # nothing left to do: no LDAP traffic at all
    # Every LDAP operation made for her is in her history, under her new login: DNs name no account id.
    history = [e["after"]["method"] for e in org.user_history("ada.l", limit=500) if e["action"] == "downstream.call"]
    assert sorted(history) == sorted(c["method"] for c in calls(org) if c.get("user") in ("ada", "ada.l"))
    assert {"ADD", "MODIFY", "MODRDN"} <= set(history)


@needs_slapd
@pytest.mark.parametrize("method", ["ou", "attr"])
async def test_deactivate_and_reactivate(tmp_path, slapd: SlapdProcess, tree: SimpleNamespace, method: str) -> None:
    disable = f"ou:{tree.disabled}" if method == "ou" else "attr:employeeType=disabled"
    service = make_service(tmp_path / "store", target(slapd, tree, disable_method=disable))
    login = service.hire("kim", employeeType="staff")
    service.set_mapping("Directory", "employeeType", "user.employeeType")
    assert (await sync(service)).ok
    active_dn = f"uid=kim,{tree.people}"
    assert entries(slapd, tree.base)[active_dn]["employeeType"] == ["staff"]

    service.change_state(login, "deactivate")
    report = await sync(service)
    assert report.ok and account(service, login)["state"] == "deactivated"
    found = entries(slapd, tree.base)
    if method == "ou":
        assert list(found) == [f"uid=kim,{tree.disabled}"]
    else:
        assert list(found) == [active_dn] and sorted(found[active_dn]["employeeType"]) == ["disabled", "staff"]

    service.change_state(login, "reactivate")
    report = await sync(service)
    assert report.ok and account(service, login)["state"] == "active"
    found = entries(slapd, tree.base)
    assert list(found) == [active_dn] and found[active_dn]["employeeType"] == ["staff"]


@needs_slapd
async def test_existing_entries_are_linked_not_duplicated(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    slapd.add_ldif(
        [person_entry(tree.people, "grace", "Grace", "Hopper", title="Lieutenant"), person_entry(tree.disabled, "bob", "Bob", "Builder")]
    )  # no employeeNumber: not linked yet
    existing = {dn.split(",")[0]: attrs["entryUUID"][0] for dn, attrs in entries(slapd, tree.base).items()}
    org.hire("grace", "Grace", "Hopper", title="Rear Admiral")
    org.hire("bob", "Bob", "Builder")
    report = await sync(org)
    assert report.ok and report.done == 2
    found = entries(slapd, tree.base)
    assert sorted(found) == [f"uid=bob,{tree.people}", f"uid=grace,{tree.people}"]  # bob was enabled: moved back
    grace = found[f"uid=grace,{tree.people}"]
    assert grace["title"] == ["Rear Admiral"] and grace["employeeNumber"] == [org.user_view("grace")["id"]]
    assert account(org, "grace")["remote_id"] == existing["uid=grace"]
    assert account(org, "bob")["remote_id"] == existing["uid=bob"]
    assert "ADD" not in {c["method"] for c in calls(org)}


@needs_slapd
async def test_an_entry_holding_another_id_is_not_taken_over(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    slapd.add_ldif([person_entry(tree.people, "hank", "Hank", "Hill", employeeNumber="HR-0007")])
    org.hire("hank", "Hank", "Hill", title="Manager")
    report = await sync(org)
    assert [(f["user"], f["status"]) for f in report.failed] == [("hank", 409)] and "HR-0007" in report.failed[0]["error"]
    attrs = entries(slapd, tree.base)[f"uid=hank,{tree.people}"]
    assert attrs["employeeNumber"] == ["HR-0007"] and "title" not in attrs  # untouched


@needs_slapd
async def test_a_mapping_may_not_overwrite_the_link(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    org.set_mapping("Directory", "employeeNumber", "user.login")
    org.hire("eve")
    report = await sync(org)
    assert [f["status"] for f in report.failed] == [None] and "employeeNumber" in report.failed[0]["error"]
    assert entries(slapd, tree.base) == {}


@needs_slapd
async def test_deletion_policy_deletes_and_leaves_groups(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    stay, leave = org.hire("stay"), org.hire("leave")
    org.create_group("crew")
    org.add_members("crew", [stay, leave])
    org.push_group("crew", "Directory")
    assert (await sync(org)).ok
    org.update_app("Directory", delete_after_days=0)
    org.change_state(leave, "deactivate")
    first = await sync(org)
    assert first.ok and list(entries(slapd, tree.disabled)) == [f"uid=leave,{tree.disabled}"]
    ((_, group),) = entries(slapd, tree.people, "(objectClass=groupOfNames)").items()
    assert sorted(group["member"]) == [f"uid=leave,{tree.disabled}", f"uid=stay,{tree.people}"]  # followed the move
    second = await sync(org)
    assert second.ok and account(org, leave)["state"] == "deleted"
    assert list(entries(slapd, tree.base)) == [f"uid=stay,{tree.people}"]
    ((_, group),) = entries(slapd, tree.people, "(objectClass=groupOfNames)").items()
    assert group["member"] == [f"uid=stay,{tree.people}"]


@needs_slapd
async def test_password_push_sets_a_password_the_user_can_bind_with(org: Service, slapd: SlapdProcess) -> None:
    login = org.hire("pat")
    assert (await sync(org)).ok
    targets = org.password_targets(login)
    assert [t["app"] for t in targets] == ["Directory"]
    password = f"N3w-{secrets.token_urlsafe(12)}"
    reconciler = build_engine(org)
    try:
        results = await reconciler.push_passwords(targets, {targets[0]["app_id"]: password})
    finally:
        await reconciler.aclose()
    assert results == [{"app": "Directory", "error": None}]
    dn = next(dn for dn in entries(slapd, slapd.base_dn, f"(uid={login})"))
    assert ldap3.Connection(ldap3.Server(slapd.uri, get_info=ldap3.NONE), dn, password).bind()
    assert not ldap3.Connection(ldap3.Server(slapd.uri, get_info=ldap3.NONE), dn, "wrong-pw").bind()
    made = calls(org)
    assert {"method": "EXTENDED", "path": dn, "status": 0} in [{k: c[k] for k in ("method", "path", "status")} for c in made]
    assert password not in json.dumps(list(org.audit()))


# --------------------------------------------------------------------------- groups


@needs_slapd
async def test_group_push_creates_and_maintains_a_group_of_names(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    a, b, c = org.hire("a1"), org.hire("b1"), org.hire("c1")
    group = org.create_group("eng")
    org.add_members("eng", [a, b])
    org.push_group("eng", "Directory")
    report = await sync(org)
    assert report.ok

    def group_entry() -> tuple[str, dict]:
        ((dn, attrs),) = entries(slapd, tree.base, "(objectClass=groupOfNames)").items()
        return dn, attrs

    dn, attrs = group_entry()
    assert dn == f"cn=eng,{tree.people}" and attrs["description"] == [f"provtui:{group['id']}"]
    assert sorted(attrs["member"]) == [f"uid={a},{tree.people}", f"uid={b},{tree.people}"]

    org.remove_members("eng", [b])
    org.add_members("eng", [c])
    before = len(calls(org))
    assert (await sync(org)).ok
    assert sorted(group_entry()[1]["member"]) == [f"uid={a},{tree.people}", f"uid={c},{tree.people}"]
    assert {"method": "MODIFY", "path": dn} in [{k: x[k] for k in ("method", "path")} for x in calls(org)[before:]]

    org.update_user(a, {"login": "a2"})  # the member DN follows the rename
    org.rename_group("eng", "engineering")
    assert (await sync(org)).ok
    dn, attrs = group_entry()
    assert dn == f"cn=engineering,{tree.people}"
    assert sorted(attrs["member"]) == [f"uid=a2,{tree.people}", f"uid={c},{tree.people}"]

    org.remove_members("engineering", ["a2", c])  # a groupOfNames must keep a member: the empty DN stands in
    assert (await sync(org)).ok
    assert group_entry()[1]["member"] == [""]
    org.add_members("engineering", [b])
    assert (await sync(org)).ok
    assert group_entry()[1]["member"] == [f"uid={b},{tree.people}"]

    org.unpush_group("engineering", "Directory", delete=True)
    assert (await sync(org)).ok
    assert entries(slapd, tree.base, "(objectClass=groupOfNames)") == {}


# --------------------------------------------------------------------------- Active Directory (AD-flavoured schema)


def ad_factory(**options: Any):
    """Connectors for AD apps against slapd's AD test schema (inetOrgPerson + provtuiADUser entries)."""

    def factory(app: dict) -> LdapAppConnector:
        return LdapAppConnector({**app["ldap"], **AD_TEST_OPTIONS, **options}, push_groups=False)

    return factory


def uac(server: SlapdProcess, base: str, login: str) -> int:
    ((_, attrs),) = entries(server, base, f"(sAMAccountName={login})").items()
    return int(attrs["userAccountControl"][0])


@needs_slapd
async def test_ad_over_plain_ldap_enables_no_account(tmp_path, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    """AD enables an account only once it has a password, which it takes only over TLS: over plain LDAP (allowed to
    this host only) a new active account is refused before anything is added.  Samba: test_ad_target.py."""
    service = make_service(tmp_path / "store", target(slapd, tree, flavor="ad", disable_method=None), sync_password=True)
    service.hire("nsimone", "Nina", "Simone", title="Singer", department="Music")
    reconciler = build_engine(service, connector_factory=ad_factory(uuid_attribute="entryUUID"))
    try:
        report = await reconciler.run_until_idle()
        assert [(f["user"], f["status"]) for f in report.failed] == [("nsimone", 400)] and "only over TLS" in report.failed[0]["error"]
        assert entries(slapd, tree.base) == {}
    finally:
        await reconciler.aclose()


@needs_slapd
async def test_ad_links_an_existing_account_by_object_guid(tmp_path, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    guid = uuid.uuid4().bytes_le
    slapd.add_ldif([ad_user_entry(tree.people, "gbush", "Grace", "Bush", disabled=True, object_guid=guid)])
    service = make_service(tmp_path / "store", target(slapd, tree, flavor="ad", disable_method=None))
    login = service.hire("gbush", "Grace", "Bush")
    reconciler = build_engine(service, connector_factory=ad_factory())
    try:
        report = await reconciler.run_until_idle()
        # found by sAMAccountName, and not enabled: it has no password, and none can be set over plain LDAP
        [failure] = report.failed
        assert (failure["user"], failure["status"]) == (login, 400) and f"cn=Grace Bush,{tree.people} has no password" in failure["error"]
        assert len(entries(slapd, tree.base)) == 1 and uac(slapd, tree.base, login) & 0x2
    finally:
        await reconciler.aclose()


# --------------------------------------------------------------------------- faults


@needs_slapd
async def test_a_server_stopped_midway_defers_then_catches_up(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sending, "BACKOFF_BASE", 0.001)  # retries and the deferral: milliseconds
    with SlapdProcess(ad_schema=False) as server:
        monkeypatch.setenv(PW_ENV, server.admin_password)
        tree = SimpleNamespace(people=server.people_dn, disabled=server.disabled_dn)
        service = make_service(tmp_path / "store", target(server, tree))
        service.hire("early")
        reconciler = build_engine(service)
        try:
            assert (await reconciler.run_until_idle()).ok  # the connector now holds an open connection
            uri = server.uri
            server.stop()
            service.hire("late")
            report = await reconciler.run_until_idle()
            assert not report.failed and [d["user"] for d in report.deferred] == ["late"]
            assert report.deferred[0]["status"] is None and report.retries == sending.MAX_ATTEMPTS - 1
            assert service.pending_work() == 1

            server.start()  # same port, an empty database with the base OUs
            assert server.uri == uri
            report = await reconciler.run_until_idle()
            assert report.ok and report.done == 1
            assert list(entries(server, server.base_dn)) == [f"uid=late,{server.people_dn}"]
        finally:
            await reconciler.aclose()


async def test_an_unreachable_server_is_retryable_and_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_ENV, "pw-unreachable-123")
    seen: list[tuple] = []
    connector = LdapAppConnector(
        {
            "uri": f"ldap://127.0.0.1:{free_port()}",
            "bind_dn": "cn=admin,dc=example,dc=org",
            "password_env": PW_ENV,
            "base_dn": "dc=example,dc=org",
            "flavor": "openldap",
            "disable_method": "ou:ou=disabled,dc=example,dc=org",
        },
        on_call=lambda *event: seen.append(event),
    )
    with pytest.raises(DownstreamError) as caught:
        await connector.find_user(user_name="x")
    await connector.aclose()
    assert caught.value.retryable and caught.value.status is None and "pw-unreachable-123" not in str(caught.value)
    assert [(m, p, s) for m, p, s, _ in seen] == [("BIND", "cn=admin,dc=example,dc=org", None)]


async def test_a_missing_password_variable_is_not_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PW_ENV, raising=False)
    connector = LdapAppConnector(
        {
            "uri": "ldap://127.0.0.1:1",
            "bind_dn": "cn=admin,dc=example,dc=org",
            "password_env": PW_ENV,
            "base_dn": "dc=example,dc=org",
            "flavor": "ad",
        }
    )
    with pytest.raises(DownstreamError, match=PW_ENV) as caught:
        await connector.get_user(str(uuid.uuid4()))
    assert not caught.value.retryable
    with pytest.raises(DownstreamError, match="group push is not turned on"):
        await connector.find_group(external_id="g1")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"flavor": "openldap", "disable_method": "uac"}, "Active Directory only"),
        ({"flavor": "openldap", "disable_method": "flag"}, "ou:DN, attr:NAME=VALUE"),
        ({"flavor": "ad", "rdn_attr": "uid"}, "named cn="),
        ({"flavor": "nds"}, "openldap or ad"),
    ],
)
def test_misconfigured_targets_are_refused(config: dict, message: str) -> None:
    base = {"uri": "ldap://127.0.0.1:389", "bind_dn": "cn=a,dc=x", "password_env": PW_ENV, "base_dn": "dc=x"}
    with pytest.raises(DownstreamError, match=message) as caught:
        LdapAppConnector({**base, **config})
    assert not caught.value.retryable


def test_target_defaults_and_uuid_filters() -> None:
    ad = LdapTarget.from_config(
        {
            "uri": "ldaps://dc1:636",
            "bind_dn": "cn=a,dc=x",
            "password_env": PW_ENV,
            "base_dn": "ou=people,dc=x",
            "flavor": "ad",
            "disable_method": "ou:ou=off,dc=x",
        }
    )
    assert (ad.naming_attribute, ad.uuid_attribute, ad.external_id_attribute, ad.rdn_attr) == (
        "sAMAccountName",
        "objectGUID",
        "employeeNumber",
        "cn",
    )
    assert ad.uses_tls and ad.user_bases == ("ou=people,dc=x", "ou=off,dc=x") and ad.groups_dn == "ou=people,dc=x"
    value = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    assert uuid_filter("objectGUID", str(value)) == r"(objectGUID=\33\22\11\00\55\44\77\66\88\99\aa\bb\cc\dd\ee\ff)"
    assert uuid_filter("entryUUID", str(value)) == f"(entryUUID={value})"
    assert uuid_filter("entryUUID", "manual") is None and uuid_filter("entryUUID", "x)(uid=*") is None


@needs_slapd
async def test_a_batch_pushes_its_groups_after_its_accounts(org: Service, slapd: SlapdProcess, tree: SimpleNamespace) -> None:
    """A renamed member and its renamed group, queued together: the account's calls (its new DN added to the
    group it is in) all come before the group's rename, so the two never race (it once failed: noSuchObject)."""
    a, b = org.hire("x1"), org.hire("y1")
    org.create_group("ops")
    org.add_members("ops", [a, b])
    org.push_group("ops", "Directory")
    assert (await sync(org)).ok
    before = len(calls(org))
    org.update_user(a, {"login": "x2"})
    org.rename_group("ops", "operations")
    assert (await sync(org)).ok
    made = [c["path"] for c in calls(org)[before:]]
    group_calls = [i for i, path in enumerate(made) if path.lower().startswith(("cn=ops,", "cn=operations,"))]
    account_calls = [i for i, path in enumerate(made) if path.lower().startswith("uid=")]
    assert group_calls and account_calls and max(account_calls) < min(group_calls), made
    ((dn, attrs),) = entries(slapd, tree.base, "(cn=operations)").items()
    assert sorted(attrs["member"]) == sorted([f"uid=x2,{tree.people}", f"uid={b},{tree.people}"])
