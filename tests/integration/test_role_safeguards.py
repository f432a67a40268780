"""Issue #14, in the service (so the CLI and the console alike): --confirm past the safeguard needs the role
`held approve` needs, on every path the safeguard holds; an app's endpoint and secret reference are a super
admin's to change, a new endpoint drops the secret reference, and a secret typed where its name or a URL
belongs is refused without being repeated."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from provtui.compose import build_engine
from provtui.connectors.scim import RemoteUser
from provtui.domain import roles
from provtui.domain.errors import HeldForConfirmation, InvalidInput, NotAllowed
from provtui.domain.roles import POLICY, Action, Role
from provtui.domain.rules import RuleState
from provtui.domain.secrets import env_name_problem
from provtui.model.schema import ACCOUNTS, account_key
from provtui.service import Service

HEADER = "Employee ID,First Name,Last Name,Work Email,Department,Title,Status\r\n"


def csv(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\r\n" for r in rows)).encode()


PEOPLE = [f"{1000 + n},P{n},Person,p{n}@example.com,Eng,Engineer,Active" for n in range(10)]


@pytest.fixture
def org(tmp_path):
    """CRM (SCIM) given to the sales group, which an active rule fills; a group admin of sales, an app admin of
    CRM, an LDAP app Directory; the rule's deactivation would take CRM from all its users (held)."""
    service = Service.init(tmp_path / "store", actor="root")
    for login in ("bob", "cy"):
        service.create_user(login, f"{login}@example.com", login.title(), "T", {"department": "Sales"}, activate=True)
    service.create_group("sales")
    service.create_app("CRM", scim_url="http://127.0.0.1:9/v2", token_env="CRM_TOKEN")
    service.create_app(
        "Directory",
        ldap={
            "uri": "ldap://127.0.0.1:9",
            "bind_dn": "cn=admin,dc=example,dc=org",
            "password_env": "DIR_PASSWORD",
            "base_dn": "ou=people,dc=example,dc=org",
            "disable_method": "attr:employeeType=disabled",
        },
    )
    service.assign("CRM", group="sales")
    service.rules().create("sales-dept", groups=["sales"], expr='user.department == "Sales"', exclude=[])
    service.rules().change("sales-dept", state=RuleState.ACTIVE)
    service.grant("sales-admin", "group-admin", groups=["sales"])
    service.grant("crm-admin", "app-admin", apps=["CRM", "Directory"])
    return tmp_path / "store"


def members(store, group="sales"):
    return sorted(m["login"] for m in Service.open(store, actor="root").group_view(group)["member_page"])


# -- --confirm needs the role `held approve` needs ------------------------------------------


def test_confirm_needs_exactly_the_roles_approve_needs():
    assert POLICY[Action.CONFIRM] == POLICY[Action.APPROVE] == frozenset({Role.SUPER_ADMIN})


def test_a_group_admins_confirm_of_a_held_rule_change_is_refused_and_changes_nothing(org):
    admin = Service.open(org, actor="sales-admin")
    with pytest.raises(HeldForConfirmation, match="a super-admin may approve it: `provtui held approve"):  # not "--confirm"
        admin.rules().change("sales-dept", state=RuleState.INACTIVE)
    seq = admin.store.seq
    with pytest.raises(NotAllowed, match=r"sales-admin may not confirm a change the safeguard holds .*super-admin"):
        admin.rules().change("sales-dept", state=RuleState.INACTIVE, confirm=True)
    admin.refresh()
    assert admin.store.seq == seq and members(org) == ["bob", "cy"]
    assert [h["state"] for h in admin.rules().held()] == ["held"]  # only the first, unconfirmed, attempt
    with pytest.raises(NotAllowed):  # nor may they approve it
        admin.rules().decide(admin.rules().held()[0]["id"], approve=True)
    root = Service.open(org, actor="root")
    root.rules().change("sales-dept", state=RuleState.INACTIVE, confirm=True)
    assert members(org) == []


def test_a_group_admins_confirm_is_harmless_when_nothing_would_be_held(org):
    """--confirm only matters past the safeguard: a change it would not hold applies for a group admin."""
    admin = Service.open(org, actor="sales-admin")
    result = admin.rules().change("sales-dept", expr='user.department == "Sales" or user.department == "Ops"', confirm=True)
    assert result["rule"]["expr"].endswith('"Ops"') and members(org) == ["bob", "cy"]


def test_an_import_confirmed_past_the_safeguard_needs_the_approvers_role(org, monkeypatch):
    """Imports need a super admin today; were the import role ever widened, --confirm would still not be."""
    root = Service.open(org, actor="root")
    root.import_csv(csv(*PEOPLE))
    root.grant("auditor", "read-only")
    monkeypatch.setitem(roles.POLICY, Action.MANAGE_SOURCES, frozenset({Role.SUPER_ADMIN, Role.READ_ONLY}))
    auditor = Service.open(org, actor="auditor")
    with pytest.raises(HeldForConfirmation):
        auditor.import_csv(csv(*PEOPLE[:5]))
    seq = auditor.store.seq
    for dry_run in (True, False):  # the dry run says what the real run would: not allowed
        with pytest.raises(NotAllowed, match="confirm a change the safeguard holds"):
            auditor.import_csv(csv(*PEOPLE[:5]), confirm=True, dry_run=dry_run)
    auditor.refresh()
    assert auditor.store.seq == seq
    assert auditor.import_csv(csv(*PEOPLE[:9]), confirm=True)["deactivated"] == 1  # below the safeguard: allowed
    assert root.import_csv(csv(*PEOPLE[:4]), confirm=True)["deactivated"] >= 5


def test_an_app_admins_confirmed_app_import_links_nothing(org):
    crm_admin = Service.open(org, actor="crm-admin")
    accounts = [RemoteUser(id="remote-bob", active=True, attributes={"userName": "bob"})]
    with pytest.raises(HeldForConfirmation):
        crm_admin.importer().import_app("CRM", accounts=accounts)
    seq = crm_admin.store.seq
    with pytest.raises(NotAllowed, match="confirm a change the safeguard holds"):
        crm_admin.importer().import_app("CRM", accounts=accounts, confirm=True)
    crm_admin.refresh()
    crm = crm_admin.directory.app("CRM")
    bob = crm_admin.directory.user_id("bob")
    assert crm_admin.store.seq == seq and (crm_admin.store.get(ACCOUNTS, account_key(crm["id"], bob)) or {}).get("remote_id") is None
    root = Service.open(org, actor="root")
    assert root.importer().import_app("CRM", accounts=accounts, confirm=True)["linked"] == 1


# -- an app's endpoint and secret: a super admin's ----------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"scim_url": "http://attacker.example/v2"},
        {"token_env": "SMTP_PASSWORD"},
        {"scim_url": "http://attacker.example/v2", "token_env": "SMTP_PASSWORD"},
    ],
)
def test_an_app_admin_may_not_change_a_scim_apps_endpoint_or_secret(org, change):
    admin = Service.open(org, actor="crm-admin")
    seq = admin.store.seq
    with pytest.raises(NotAllowed, match=r"crm-admin may not change an app's endpoint or secret reference \(app CRM\).*super-admin"):
        admin.update_app("CRM", **change)
    admin.refresh()
    app = admin.directory.app("CRM")
    assert admin.store.seq == seq and (app["scim_url"], app["token_env"]) == ("http://127.0.0.1:9/v2", "CRM_TOKEN")
    # their app's other settings, and the same endpoint given again, stay theirs
    assert admin.update_app("CRM", scim_url="http://127.0.0.1:9/v2", token_env="CRM_TOKEN", rate=5.0)["settings"]["rate"] == 5.0


@pytest.mark.parametrize(
    "change", [{"uri": "ldap://attacker.example"}, {"bind_dn": "cn=me,dc=attacker"}, {"password_env": "SMTP_PASSWORD"}]
)
def test_an_app_admin_may_not_change_an_ldap_apps_endpoint_or_secret(org, change):
    admin = Service.open(org, actor="crm-admin")
    seq = admin.store.seq
    with pytest.raises(NotAllowed, match=r"endpoint or secret reference \(app Directory\)"):
        admin.update_app("Directory", ldap=change)
    admin.refresh()
    assert admin.store.seq == seq and admin.directory.app("Directory")["ldap"]["password_env"] == "DIR_PASSWORD"


def test_a_new_endpoint_clears_the_secret_reference_unless_one_comes_with_it(org):
    root = Service.open(org, actor="root")
    app = root.update_app("CRM", scim_url="http://new.example/v2")
    assert (app["scim_url"], app["token_env"], app["cleared"]) == ("http://new.example/v2", None, ["token_env"])
    event = root.audit()[-1]
    assert event["action"] == "app.update" and event["before"]["token_env"] == "CRM_TOKEN" and event["after"]["token_env"] is None
    app = root.update_app("CRM", token_env="NEW_CRM_TOKEN")  # named again, deliberately
    assert (app["token_env"], app["cleared"]) == ("NEW_CRM_TOKEN", [])
    app = root.update_app("CRM", scim_url="http://newer.example/v2", token_env="NEWER_CRM_TOKEN")  # both at once: kept
    assert (app["token_env"], app["cleared"]) == ("NEWER_CRM_TOKEN", [])
    assert root.update_app("CRM", token_env="OTHER_TOKEN")["scim_url"] == "http://newer.example/v2"  # a secret alone: endpoint kept
    ldap = root.update_app("Directory", ldap={"bind_dn": "cn=provtui,dc=example,dc=org"})
    assert ldap["ldap"]["password_env"] is None and ldap["cleared"] == ["password_env"]
    ldap = root.update_app("Directory", ldap={"uri": "ldaps://dir2.example", "password_env": "DIR2_PASSWORD"})
    assert (ldap["ldap"]["uri"], ldap["ldap"]["password_env"], ldap["cleared"]) == ("ldaps://dir2.example", "DIR2_PASSWORD", [])
    assert ldap["ldap"]["base_dn"] == "ou=people,dc=example,dc=org"  # the rest of the connection stays


def test_the_issues_attack_fails_and_a_moved_app_sends_no_bearer_token(tmp_path, scim_server, attacker, monkeypatch):
    """The app admin's redirect is refused, the super admin's sync goes to the real server; when a super admin
    moves the app, its token reference is dropped and the next sync sends no Authorization header anywhere."""
    secret = "smtp-" + uuid.uuid4().hex
    monkeypatch.setenv("SMTP_PASSWORD", secret)
    monkeypatch.setenv("CRM_SCIM_TOKEN", scim_server.token)
    root = Service.init(tmp_path / "store", actor="root")
    login = f"moved-{uuid.uuid4().hex[:6]}"
    root.create_user(login, f"{login}@example.com", "M", "V", activate=True)
    root.create_app("CRM", scim_url=scim_server.url, token_env="CRM_SCIM_TOKEN")
    root.grant("crm-admin", "app-admin", apps=["CRM"])
    url = f"http://127.0.0.1:{attacker.server_address[1]}/scim/v2"
    with pytest.raises(NotAllowed):
        Service.open(tmp_path / "store", actor="crm-admin").update_app("CRM", scim_url=url, token_env="SMTP_PASSWORD")
    root.refresh()
    root.assign("CRM", login=login)
    assert asyncio.run(build_engine(root, notify=False).run_until_idle()).ok
    assert attacker.seen == []

    assert root.update_app("CRM", scim_url=url)["token_env"] is None  # moved by a super admin: the token stays behind
    root.update_user(login, {"title": "Moved"})  # something to send
    asyncio.run(build_engine(root, notify=False).run_until_idle(max_wait=1))
    assert [h for h in attacker.seen if "Authorization" in h or "authorization" in h] == []
    assert all(secret not in json.dumps(h) and scim_server.token not in json.dumps(h) for h in attacker.seen)


# -- secrets where a name or a URL belongs ------------------------------------------------


@pytest.mark.parametrize(
    "url, option",
    [
        ("http://u:p4ssw0rd-canary@127.0.0.1:9/v2", "--token-env"),
        ("https://p4ssw0rd-canary@scim.example/v2", "--token-env"),
        ("https://scim.example/v2?access_token=p4ssw0rd-canary", "--token-env"),
    ],
)
def test_credentials_in_a_scim_url_are_refused_without_repeating_them(org, url, option):
    root = Service.open(org, actor="root")
    seq = root.store.seq
    for attempt in (lambda: root.update_app("CRM", scim_url=url), lambda: root.create_app("New", scim_url=url, token_env="NEW_TOKEN")):
        with pytest.raises(InvalidInput) as refusal:
            attempt()
        assert refusal.value.field == "--scim-url" and option in str(refusal.value) and "p4ssw0rd-canary" not in str(refusal.value)
    root.refresh()
    assert root.store.seq == seq


def test_credentials_in_an_ldap_uri_are_refused_without_repeating_them(org):
    root = Service.open(org, actor="root")
    with pytest.raises(InvalidInput) as refusal:
        root.update_app("Directory", ldap={"uri": "ldap://cn=admin:p4ssw0rd-canary@dir.example"})
    assert refusal.value.field == "--ldap-uri" and "--password-env" in str(refusal.value)
    assert "p4ssw0rd-canary" not in str(refusal.value)


@pytest.mark.parametrize(
    "value",
    [
        "not a name!",
        "hunter2",
        "ghp_A1b2C3d4E5f6G7h8I9j0",
        "Passw0rd!",
        "slack_token",
        "AKIAIOSFODNN7EXAMPLE",
        "X" * 65,
        "1TOKEN",
        "",
        "SLACK-TOKEN",
        "TOKEN\n",
    ],
)
def test_a_value_that_is_not_a_variables_name_is_refused_without_repeating_it(org, value):
    root = Service.open(org, actor="root")
    seq = root.store.seq
    attempts = [
        ("--token-env", lambda: root.update_app("CRM", token_env=value)),
        ("--token-env", lambda: root.create_app("New", scim_url="http://127.0.0.1:9/v2", token_env=value)),
        ("--password-env", lambda: root.update_app("Directory", ldap={"password_env": value})),
        ("smtp.password-env", lambda: root.set_config("smtp.password-env", value)),
    ]
    for field, attempt in attempts:
        with pytest.raises(InvalidInput) as refusal:
            attempt()
        assert refusal.value.field == field
        if value:
            assert value.strip() not in str(refusal.value)
    root.refresh()
    assert root.store.seq == seq


@pytest.mark.parametrize("name", ["T", "SLACK_TOKEN", "PROVTUI_TEST_LDAP_APP_GROUPS_TOKEN", "_X", "TOKEN_2", "LDAP_BIND_PW_2024"])
def test_environment_variable_names(name):
    assert env_name_problem(name) is None


# -- the same through the CLI, in-process (as the super admin who ran init) ---------------


def test_cli_refuses_secrets_in_urls_and_names_without_printing_them(cli):
    canary = "Canary-" + uuid.uuid4().hex
    assert cli("app", "create", "CRM", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "CRM_TOKEN")[0] == 0
    for args, option in (
        (("--scim-url", f"http://u:{canary}@127.0.0.1:9/v2"), "--token-env"),
        (("--token-env", canary), "--token-env"),
        (("--token-env", "not a name!"), "--token-env"),
    ):
        code, out, err = cli("app", "update", "CRM", *args)
        assert code == 2 and option in err and args[1] not in out + err and canary not in out + err
    code, out, err = cli("app", "create", "New", "--scim-url", f"https://{canary}@127.0.0.1:9/v2", "--token-env", "T")
    assert code == 2 and "--token-env" in err and canary not in out + err
    code, out, _ = cli("app", "show", "CRM", "--json")
    assert code == 0 and json.loads(out)["token_env"] == "CRM_TOKEN"
    code, out, err = cli("app", "update", "CRM", "--scim-url", "http://127.0.0.1:8/v2", "--json")
    assert code == 0 and json.loads(out)["cleared"] == ["token_env"] and "--token-env" in err
    code, out, _ = cli("app", "show", "CRM", "--json")
    assert json.loads(out)["token_env"] is None and canary not in out
    assert cli("app", "show", "Nope")[0] == 2


def test_deleting_an_active_rule_is_held_by_the_safeguard_like_deactivating_it(org):
    """Deleting the rule took the same access away with no hold: it is judged as its deactivation."""
    admin = Service.open(org, actor="sales-admin")
    with pytest.raises(HeldForConfirmation):
        admin.rules().delete("sales-dept")
    assert members(org) == ["bob", "cy"] and [r["name"] for r in admin.rules().list()] == ["sales-dept"]
    with pytest.raises(NotAllowed, match="may not confirm"):
        admin.rules().delete("sales-dept", confirm=True)
    assert members(org) == ["bob", "cy"]
    root = Service.open(org, actor="root")
    root.rules().delete("sales-dept", confirm=True)
    assert members(org) == [] and root.rules().list() == []


def test_cli_rule_delete_exits_3_when_held(org, monkeypatch, capsys):
    from provtui.cli.main import main

    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "root")
    assert main(["--store", str(org), "rule", "delete", "sales-dept"]) == 3
    assert main(["--store", str(org), "rule", "delete", "sales-dept", "--confirm"]) == 0
    assert members(org) == []
