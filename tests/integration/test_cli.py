"""The CLI contract: command names, options, JSON keys and exit codes."""

import json
import subprocess
import sys
import uuid

import pytest

from provtui.cli.main import main

TOKEN_ENV = "PROVTUI_CLI_TEST_TOKEN"


def test_python_dash_m_and_store_option(tmp_path):
    store = tmp_path / "s"
    done = subprocess.run([sys.executable, "-m", "provtui", "init", "--store", str(store)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "--store", str(store), "user", "list", "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0 and json.loads(done.stdout) == []


def test_user_lifecycle_and_show_json_shape(cli):
    code, out, _ = cli(
        "user", "create", "ada", "--email", "ada@example.com", "--first", "Ada", "--last", "L", "--set", "department=Eng", "--json"
    )
    assert code == 0 and json.loads(out)["state"] == "staged"
    assert cli("user", "activate", "ada")[0] == 0
    assert cli("group", "create", "eng", "--description", "Engineers")[0] == 0
    assert cli("group", "add-member", "eng", "ada")[0] == 0
    assert cli("app", "create", "Slack", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", TOKEN_ENV)[0] == 0
    assert cli("app", "assign", "Slack", "--group", "eng")[0] == 0
    code, out, _ = cli("user", "show", "ada", "--json")
    view = json.loads(out)
    assert {"login", "state", "profile", "groups", "apps"} <= view.keys()
    assert view["login"] == "ada" and view["state"] == "active" and view["profile"]["department"] == "Eng"
    assert view["groups"] == ["eng"]
    [app] = view["apps"]
    assert {"app", "entitled", "via", "account"} <= app.keys()
    assert {"state", "remote_id", "last_error"} <= app["account"].keys()
    assert app["via"] == ["group:eng"] and app["entitled"] is True
    for verb, state in (
        ("suspend", "suspended"),
        ("unsuspend", "active"),
        ("deactivate", "deprovisioned"),
        ("reactivate", "active"),
        ("deactivate", "deprovisioned"),
        ("delete", "deleted"),
    ):
        code, out, _ = cli("user", verb, "ada", "--json")
        assert code == 0 and json.loads(out)["state"] == state


def test_user_update_and_list(cli):
    cli("user", "create", "bob", "--email", "bob@example.com", "--first", "Bob", "--last", "Stone", "--activate")
    cli("user", "create", "cy", "--email", "cy@example.com", "--first", "Cy", "--last", "Young")
    assert cli("user", "update", "bob", "--set", "title=Chief", "--set", "lastName=Rock")[0] == 0
    code, out, _ = cli("user", "list", "--json")
    users = json.loads(out)
    assert [u["login"] for u in users] == ["bob", "cy"] and all({"login", "state"} <= u.keys() for u in users)
    code, out, _ = cli("user", "list", "--search", "rock", "--json")
    assert [u["login"] for u in json.loads(out)] == ["bob"]
    code, out, _ = cli("user", "list")
    assert "bob" in out and "LOGIN" in out


@pytest.mark.parametrize(
    "args, field",
    [
        (("user", "create", "x y", "--email", "a@b.co", "--first", "A", "--last", "B"), "login"),
        (("user", "create", "xy", "--email", "nope", "--first", "A", "--last", "B"), "email"),
        (("user", "update", "ghost", "--set", "title=x"), "user"),
        (("user", "activate", "ghost"), "user"),
        (("app", "create", "X", "--scim-url", "http://x"), "--token-env"),
        (("app", "assign", "Nope", "--user", "ghost"), "app"),
        (("group", "add-member", "nope", "ghost"), "group"),
        (("user", "update", "ghost", "--set", "novalue"), "--set"),
    ],
)
def test_bad_input_exits_2_naming_the_field(cli, args, field):
    code, _, err = cli(*args)
    assert code == 2 and field in err


def test_usage_errors_exit_2(cli):
    with pytest.raises(SystemExit) as exit_:
        main(["user", "frobnicate"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["app", "assign", "X"])  # neither --user nor --group
    assert exit_.value.code == 2


def test_illegal_transition_exits_2(cli):
    cli("user", "create", "dee", "--email", "dee@example.com", "--first", "D", "--last", "E", "--activate")
    code, _, err = cli("user", "reactivate", "dee")
    assert code == 2 and "cannot reactivate" in err


def test_not_allowed_exits_4(cli, monkeypatch):
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "mallory")
    code, _, err = cli("user", "create", "m", "--email", "m@example.com", "--first", "M", "--last", "M")
    assert code == 4 and "super-admin" in err


def test_missing_store_exits_2(tmp_path, capsys):
    assert main(["--store", str(tmp_path / "none"), "user", "list"]) == 2
    assert "provtui init" in capsys.readouterr().err


def test_sync_and_audit(cli, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    login = f"cli-{uuid.uuid4().hex[:8]}"
    cli("user", "create", login, "--email", f"{login}@example.com", "--first", "E", "--last", "F", "--activate")
    cli("app", "create", "Slack", "--scim-url", scim_server.url, "--token-env", TOKEN_ENV)
    cli("app", "assign", "Slack", "--user", login)
    code, out, _ = cli("sync", "--json")
    assert code == 0 and json.loads(out)["done"] == 1 and json.loads(out)["failed"] == []
    code, out, _ = cli("audit", "--json", "--limit", "3")
    events = json.loads(out)
    assert code == 0 and len(events) == 3
    assert all({"actor", "time", "action", "target", "before", "after"} <= e.keys() for e in events)
    assert scim_server.token not in json.dumps(cli("audit", "--json")[1])


def test_sync_failure_exits_1_and_lists_it_on_stderr(cli, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cli("user", "create", "gil", "--email", "gil@example.com", "--first", "G", "--last", "H", "--activate")
    cli("app", "create", "Slack", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", TOKEN_ENV)
    cli("app", "assign", "Slack", "--user", "gil")
    code, _, err = cli("sync")
    assert code == 1 and "gil" in err and "Slack" in err and TOKEN_ENV in err


def test_manual_app_tasks(cli):
    cli("user", "create", "hu", "--email", "hu@example.com", "--first", "H", "--last", "U", "--activate")
    assert cli("app", "create", "Payroll", "--manual", "--notify", "it@example.com,hr@example.com")[0] == 0
    cli("app", "assign", "Payroll", "--user", "hu")
    assert cli("sync")[0] == 0
    code, out, _ = cli("tasks", "--json")
    [task] = json.loads(out)
    assert {"id", "app", "user", "action", "state", "created"} <= task.keys()
    assert (task["app"], task["user"], task["action"], task["state"]) == ("Payroll", "hu", "provision", "open")
    assert cli("tasks", "done", task["id"])[0] == 0
    assert json.loads(cli("user", "show", "hu", "--json")[1])["apps"][0]["account"]["state"] == "active"
    cli("user", "deactivate", "hu")
    cli("sync")
    tasks = json.loads(cli("tasks", "--json")[1])
    assert [(t["action"], t["state"]) for t in tasks] == [("provision", "done"), ("deprovision", "open")]
    cli("user", "reactivate", "hu")  # back before the deprovision was done: the task is cancelled
    cli("sync")
    tasks = json.loads(cli("tasks", "--json")[1])
    assert [(t["action"], t["state"]) for t in tasks] == [("provision", "done"), ("deprovision", "cancelled")]
    code, _, err = cli("tasks", "done", "nope")
    assert code == 2 and "nope" in err
