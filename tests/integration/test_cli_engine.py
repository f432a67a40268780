"""The CLI contract added for provisioning: app settings and status, push, passwords, tasks, config, retry."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provtui.cli.main import main

TOKEN_ENV = "PROVTUI_CLI_ENGINE_TOKEN"


def test_app_create_and_update_settings(cli):
    code, out, _ = cli(
        "app",
        "create",
        "Slack",
        "--scim-url",
        "http://127.0.0.1:9/v2",
        "--token-env",
        TOKEN_ENV,
        "--concurrency",
        "6",
        "--rate",
        "12.5",
        "--push-groups",
        "--sync-password",
        "--delete-after-days",
        "30",
        "--json",
    )
    app = json.loads(out)
    assert code == 0 and app["settings"] == {
        "concurrency": 6,
        "rate": 12.5,
        "push_groups": True,
        "sync_password": True,
        "delete_after_days": 30,
    }
    assert {"push_groups", "sync_password", "delete"} <= set(app["capabilities"])
    code, out, _ = cli("app", "update", "Slack", "--no-push-groups", "--concurrency", "2", "--json")
    app = json.loads(out)
    assert code == 0 and app["settings"]["push_groups"] is False and app["settings"]["concurrency"] == 2
    assert app["settings"]["rate"] == 12.5  # untouched
    assert cli("app", "update", "Slack", "--concurrency", "0")[0] == 2
    assert "--concurrency" in cli("app", "update", "Slack", "--concurrency", "0")[2]
    assert cli("app", "update", "Nope", "--rate", "1")[0] == 2


def test_manual_app_needs_notify_and_tasks_contract(cli):
    code, _, err = cli("app", "create", "Payroll", "--manual")
    assert code == 2 and "--notify" in err
    assert cli("app", "create", "Payroll", "--manual", "--notify", "it@example.com,hr@example.com")[0] == 0
    code, out, _ = cli("tasks", "--json")
    assert code == 0 and json.loads(out) == []


def test_app_status_and_resume(cli):
    cli("app", "create", "Slack", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", TOKEN_ENV)
    code, out, _ = cli("app", "status", "--json")
    [status] = json.loads(out)
    assert code == 0 and {"app", "queued", "in_flight", "failed", "quarantined", "last_success"} <= status.keys()
    assert json.loads(cli("app", "status", "Slack", "--json")[1])[0]["app"] == "Slack"
    code, _, err = cli("app", "resume", "Slack")
    assert code == 2 and "not quarantined" in err


def test_group_push_and_unpush_contract(cli):
    cli("app", "create", "Slack", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", TOKEN_ENV, "--push-groups")
    cli("group", "create", "eng")
    assert cli("group", "push", "eng", "--app", "Slack")[0] == 0
    code, out, _ = cli("group", "unpush", "eng", "--app", "Slack", "--delete", "--json")
    assert code == 0 and json.loads(out) == {"group": "eng", "app": "Slack", "state": "unpushed", "delete": True}
    assert cli("group", "unpush", "eng", "--app", "Slack")[0] == 2
    with pytest.raises(SystemExit) as exit_:
        main(["group", "push", "eng"])  # --app is required
    assert exit_.value.code == 2


def test_config_set(cli):
    assert cli("config", "set", "smtp.host", "mail.example.com")[0] == 0
    assert cli("config", "set", "smtp.port", "587")[0] == 0
    assert cli("config", "set", "smtp.password-env", "SMTP_PASSWORD")[0] == 0
    code, _, err = cli("config", "set", "smtp.port", "many")
    assert code == 2 and "smtp.port" in err
    code, _, err = cli("config", "set", "smtp.password", "hunter2")
    assert code == 2 and "unknown setting" in err and "hunter2" not in err
    code, out, _ = cli("config", "show", "--json")
    assert json.loads(out) == {"smtp.host": "mail.example.com", "smtp.password-env": "SMTP_PASSWORD", "smtp.port": 587}


def test_retry_requeues_failed_accounts(cli, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cli("user", "create", "ada", "--email", "ada@example.com", "--first", "A", "--last", "L", "--activate")
    cli("app", "create", "Slack", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", TOKEN_ENV)
    cli("app", "assign", "Slack", "--user", "ada")
    assert cli("sync")[0] == 1
    assert json.loads(cli("app", "status", "--json")[1])[0]["failed"] == 1
    code, out, _ = cli("retry", "--app", "Slack", "--json")
    assert code == 0 and json.loads(out) == {"queued": 1}
    assert json.loads(cli("user", "show", "ada", "--json")[1])["apps"][0]["account"]["queued"] is True


def _password_env(tmp_path, token):
    import os

    return {**os.environ, TOKEN_ENV: token}  # PROVTUI_STORE: the cli fixture's store


def test_user_password_from_stdin_and_random(tmp_path, scim_server, cli, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)  # through a server, the server's environment holds the token
    login = f"pw-{uuid.uuid4().hex[:6]}"
    cli("user", "create", login, "--email", f"{login}@example.com", "--first", "P", "--last", "W", "--activate")
    cli("app", "create", "Slack", "--scim-url", scim_server.url, "--token-env", TOKEN_ENV, "--sync-password")
    cli("app", "assign", "Slack", "--user", login)
    env = _password_env(tmp_path, scim_server.token)
    assert subprocess.run([sys.executable, "-m", "provtui", "sync"], env=env, capture_output=True).returncode == 0
    secret = "Canary-" + uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "user", "password", login, "--json"], input=secret + "\n", env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"login": login, "apps": [{"app": "Slack", "error": None}]}
    assert secret not in done.stdout + done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "user", "password", login], input="short\n", env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "password" in done.stderr and "short" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "user", "password", login, "--random"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0 and "Slack" in done.stdout
    audit = subprocess.run([sys.executable, "-m", "provtui", "audit", "--json"], env=env, capture_output=True, text=True).stdout
    events = [e for e in json.loads(audit) if e["action"] == "user.password"]
    assert [e["after"]["random"] for e in events] == [False, True]
    location = os.environ["PROVTUI_STORE"]
    if location.startswith("postgresql"):  # every table of the database
        import psycopg

        with psycopg.connect(location) as conn:
            dumped = conn.execute(
                "SELECT string_agg(doc::text, '') FROM docs UNION ALL SELECT string_agg(event::text, '') FROM audit"
                " UNION ALL SELECT string_agg(op::text, '') FROM commit_ops"
            ).fetchall()
        assert all(secret not in (text or "") for (text,) in dumped)
    else:
        for path in Path(location).iterdir():
            assert secret not in path.read_text(errors="replace")


def test_sync_prints_no_progress_when_not_a_terminal(tmp_path):
    import os

    env = {**os.environ, "PROVTUI_STORE": str(tmp_path / "s")}
    subprocess.run([sys.executable, "-m", "provtui", "init"], env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "provtui", "sync"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "provisioning:" not in done.stderr and done.stderr == ""


def test_user_history_lists_what_happened_newest_first_with_every_call_made_for_them(cli, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    login = f"hist-{uuid.uuid4().hex[:6]}"
    cli("user", "create", login, "--email", f"{login}@example.com", "--first", "H", "--last", "Ist", "--activate")
    cli("app", "create", "Slack", "--scim-url", scim_server.url, "--token-env", TOKEN_ENV)
    cli("app", "assign", "Slack", "--user", login)
    assert cli("sync")[0] == 0
    code, out, _ = cli("user", "history", login, "--json")
    events = json.loads(out)
    assert code == 0 and events[-1]["action"] == "user.create" and "app.assign" in [e["action"] for e in events]
    calls = [e for e in events if e["action"] == "downstream.call"]
    assert [(c["target"], c["after"]["method"], c["after"]["user"]) for c in calls][-1] == ("Slack", "POST", login)
    assert scim_server.token not in out
    assert [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    code, out, _ = cli("user", "history", login, "--limit", "1")
    assert code == 0 and out.splitlines() == [f"{events[0]['time']}  {events[0]['actor']:<16} {events[0]['action']:<20} Slack"]
    code, _, err = cli("user", "history", login, "--limit", "0")
    assert code == 2 and "--limit" in err
    assert cli("user", "history", "nobody-at-all")[0] == 2
