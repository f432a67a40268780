"""Issue #14 through the real CLI as real OS users (see test_os_users.py): a group admin's --confirm of a held
rule change, and an app admin's change of an app's endpoint or secret reference, are not allowed (exit 4,
nothing changed); a super admin's are, and moving an app leaves its secret reference behind; a secret given
where a URL or a variable's name belongs is refused (exit 2) and never printed."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import provtui.cli.admins  # noqa: F401  (imported before the fork: the child may not read the venv)
import provtui.connectors.scim  # noqa: F401
import provtui.engine  # noqa: F401
import provtui.service  # noqa: F401
from tests.helpers.os_users import needs_root
from tests.helpers.os_users import os_users as make_os_users
from tests.helpers.os_users import run_as_capturing as run_as

pytestmark = needs_root

CANARY = "Canary-5f0c2d9e8a7b41c3a6d0e9f2b7c8a1d4"  # fixed: parametrised test ids must match across xdist workers


@pytest.fixture(scope="module")
def os_users():
    with make_os_users("rol", {"group_admin": "gad", "app_admin": "aad"}) as made:
        yield made


@pytest.fixture
def org(os_users, monkeypatch):
    """A store shared with the group: CRM given to sales, which the active rule sales-dept fills (deactivating
    it would take CRM from everyone: held); an LDAP app Directory; a group admin of sales; an app admin of both apps."""
    group, names = os_users
    monkeypatch.setenv("SMTP_PASSWORD", CANARY)
    root = Path(tempfile.mkdtemp(prefix="provtui-roles-"))
    os.chmod(root, 0o755)
    store = str(root / "store")
    steps = [
        ("init", "--group", group),
        ("user", "create", "bob", "--email", "bob@example.com", "--first", "Bob", "--last", "T", "--set", "department=Sales", "--activate"),
        ("user", "create", "cy", "--email", "cy@example.com", "--first", "Cy", "--last", "T", "--set", "department=Sales", "--activate"),
        ("group", "create", "sales"),
        ("app", "create", "CRM", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "CRM_TOKEN"),
        (
            "app",
            "create",
            "Directory",
            "--ldap-uri",
            "ldap://127.0.0.1:9",
            "--bind-dn",
            "cn=admin,dc=example,dc=org",
            "--password-env",
            "DIR_PASSWORD",
            "--base-dn",
            "ou=people,dc=example,dc=org",
            "--disable-method",
            "attr:employeeType=disabled",
        ),
        ("app", "assign", "CRM", "--group", "sales"),
        ("rule", "create", "sales-dept", "--group", "sales", "--expr", 'user.department == "Sales"'),
        ("rule", "activate", "sales-dept"),
        ("admin", "grant", names["group_admin"], "group-admin", "--group", "sales"),
        ("admin", "grant", names["app_admin"], "app-admin", "--app", "CRM", "--app", "Directory"),
    ]
    try:
        for step in steps:
            code, _, err = run_as(None, "--store", store, *step)
            assert code == 0, (step, err)
        yield store, names
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_json(user, store, *args):
    code, out, err = run_as(user, *args, "--store", store, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_group_admins_confirm_of_a_held_rule_change_exits_4_and_changes_nothing(org):
    store, names = org
    admin = names["group_admin"]
    code, out, err = run_as(admin, "rule", "deactivate", "sales-dept", "--store", store)
    assert code == 3 and "held" in err  # without --confirm: held for a super admin
    code, out, err = run_as(admin, "rule", "deactivate", "sales-dept", "--store", store, "--confirm")
    assert code == 4 and "super-admin" in err and "--confirm" in err
    [rule] = as_json(None, store, "rule", "list")
    assert (rule["state"], rule["members"]) == ("active", 2)
    [held] = as_json(None, store, "held")
    assert held["state"] == "held" and held["by"] == admin
    assert run_as(admin, "held", "approve", held["id"], "--store", store)[0] == 4
    code, _, err = run_as(None, "rule", "deactivate", "sales-dept", "--store", store, "--confirm")
    assert code == 0, err
    [rule] = as_json(None, store, "rule", "list")
    assert (rule["state"], rule["members"]) == ("inactive", 0)


@pytest.mark.parametrize(
    "change",
    [
        ("CRM", "--scim-url", "http://127.0.0.1:8/attacker"),
        ("CRM", "--token-env", "SMTP_PASSWORD"),
        ("CRM", "--scim-url", "http://127.0.0.1:8/attacker", "--token-env", "SMTP_PASSWORD"),
        ("Directory", "--ldap-uri", "ldap://127.0.0.1:8"),
        ("Directory", "--bind-dn", "cn=me,dc=attacker"),
        ("Directory", "--password-env", "SMTP_PASSWORD"),
    ],
)
def test_an_app_admin_changing_an_endpoint_or_secret_reference_exits_4(org, change):
    store, names = org
    before = {name: as_json(None, store, "app", "show", name) for name in ("CRM", "Directory")}
    code, _, err = run_as(names["app_admin"], "app", "update", *change, "--store", store)
    assert code == 4 and "endpoint or secret reference" in err and "super-admin" in err
    assert {name: as_json(None, store, "app", "show", name) for name in ("CRM", "Directory")} == before
    assert run_as(names["app_admin"], "app", "update", change[0], "--rate", "5", "--store", store)[0] == 0  # still their app


def test_a_super_admin_moving_an_app_clears_its_secret_reference_and_sync_sends_no_token(org, attacker, monkeypatch):
    store, _ = org
    monkeypatch.setenv("CRM_TOKEN", CANARY)
    url = f"http://127.0.0.1:{attacker.server_address[1]}/scim/v2"
    code, out, err = run_as(None, "app", "update", "CRM", "--scim-url", url, "--store", store, "--json")
    assert code == 0 and "token reference was cleared" in err and "--token-env" in err
    assert json.loads(out)["cleared"] == ["token_env"]
    shown = as_json(None, store, "app", "show", "CRM")
    assert (shown["scim_url"], shown["token_env"]) == (url, None)
    code, out, err = run_as(None, "sync", "--store", store)
    assert code == 1  # CRM's accounts fail: it has no token to send
    assert not [h for h in attacker.seen if "authorization" in {k.lower() for k in h}]
    assert CANARY not in out + err + json.dumps(attacker.seen)
    code, _, err = run_as(None, "app", "update", "Directory", "--bind-dn", "cn=provtui,dc=example,dc=org", "--store", store)
    assert code == 0 and "bind password reference was cleared" in err and "--password-env" in err
    assert as_json(None, store, "app", "show", "Directory")["ldap"]["password_env"] is None


@pytest.mark.parametrize(
    "args, option, secret",
    [
        (("CRM", "--scim-url", f"http://u:{CANARY}@127.0.0.1:9/v2"), "--token-env", CANARY),
        (("CRM", "--scim-url", f"https://127.0.0.1:9/v2?access_token={CANARY}"), "--token-env", CANARY),
        (("Directory", "--ldap-uri", f"ldap://admin:{CANARY}@127.0.0.1:9"), "--password-env", CANARY),
        (("CRM", "--token-env", "not a name!"), "--token-env", "not a name!"),
        (("CRM", "--token-env", CANARY), "--token-env", CANARY),
        (("CRM", "--token-env", "hunter2"), "--token-env", "hunter2"),
        (("Directory", "--password-env", CANARY), "--password-env", CANARY),
    ],
)
def test_a_secret_where_a_url_or_a_name_belongs_exits_2_and_is_not_printed(org, args, option, secret):
    store, names = org
    before = as_json(None, store, "app", "show", args[0])
    for user in (None, names["app_admin"]):  # bad input is refused before the role is asked
        code, out, err = run_as(user, "app", "update", *args, "--store", store)
        assert code == 2 and option in err, err
        assert secret not in out + err
    assert as_json(None, store, "app", "show", args[0]) == before
    files = [p.read_bytes().decode(errors="replace") for p in Path(store).iterdir() if p.is_file()]
    assert not any(secret in text for text in files)
