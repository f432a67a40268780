"""The CLI contract of `provtui audit ...` and `provtui report ...`: options, exit codes, JSON keys, CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat

import pytest

from provtui.cli.main import main
from provtui.model.schema import ACCOUNTS, USERS, account_key
from provtui.service import Service
from provtui.service.reports import COLUMNS, NAMES, ORPHANS
from provtui.store import AUDIT, decode_lines, encode_line

EVIL = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Built once (every commit is fsync'd: slow); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "store"

    def run(*args):
        assert main(["--store", str(path), *args]) == 0, args

    run("init")
    for login in ("ada", "bob"):
        run("user", "create", login, "--email", f"{login}@example.com", "--first", login.title(), "--last", "T", "--activate")
    run("group", "create", "-1")  # a name a spreadsheet would read as a formula
    run("config", "set", "smtp.from", EVIL)
    run("app", "create", "Wiki", "--manual", "--notify", "it@example.com")
    run("app", "assign", "Wiki", "--user", "ada")
    return path


@pytest.fixture
def cli(template, tmp_path, monkeypatch, capsys):
    shutil.copytree(template, tmp_path / "store")
    monkeypatch.setenv("PROVTUI_STORE", str(tmp_path / "store"))
    capsys.readouterr()

    def run(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def service(tmp_path, cli):
    return Service.open(tmp_path / "store")


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# -- audit -------------------------------------------------------------------------------


def test_audit_without_subcommand_works_as_before(cli):
    code, out, _ = cli("audit", "--json", "--limit", "3")
    events = json.loads(out)
    assert code == 0 and len(events) == 3 and events[-1]["action"] == "app.assign"
    assert {"seq", "time", "actor", "action", "target", "before", "after", "correlation", "prev", "hash"} <= events[0].keys()
    code, out, _ = cli("audit")
    assert code == 0 and "user.create" in out and len(out.splitlines()) == 7


def test_audit_filters(cli, service):
    def actions(*args):
        code, out, err = cli("audit", "--json", *args)
        assert code == 0, err
        return [e["action"] for e in json.loads(out)]

    assert actions("--action", "user") == ["user.create", "user.create"]
    assert actions("--target", "bob") == ["user.create"]
    assert actions("--actor", service.actor, "--action", "app.create") == ["app.create"]
    assert actions("--actor", "nobody") == []
    assert actions("--since", "2999-01-01") == []
    assert len(actions("--since", "2000-01-01T00:00:00Z")) == 7
    assert actions("--until", "2000-01-01") == []
    code, _, err = cli("audit", "--since", "yesterday")
    assert code == 2 and "--since" in err
    code, _, err = cli("audit", "--limit", "-1")
    assert code == 2 and "--limit" in err


def test_audit_export_jsonl(cli, tmp_path):
    code, out, _ = cli("audit", "export", "--format", "jsonl")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7 and json.loads(lines[0])["action"] == "store.init"
    target = tmp_path / "trail.jsonl"
    code, out, _ = cli("audit", "export", "--format", "jsonl", "--output", str(target), "--action", "user", "--json")
    assert code == 0 and json.loads(out) == {"exported": 2, "format": "jsonl", "output": str(target)}
    assert [json.loads(line)["target"] for line in target.read_text().splitlines()] == ["ada", "bob"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_audit_export_csv_escapes_formulas(cli, tmp_path):
    code, out, _ = cli("audit", "export", "--format", "csv")
    rows = csv_rows(out)
    assert code == 0 and rows[0] == ["seq", "time", "actor", "action", "target", "before", "after", "correlation", "prev", "hash"]
    by_action = {r[3]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_action["group.create"]["target"] == "'-1"
    assert by_action["config.set"]["after"] == "'" + EVIL
    assert by_action["app.assign"]["after"] == '{"subject":"user:ada","values":{},"priority":null}'  # compact JSON in one cell
    target = tmp_path / "trail.csv"
    assert cli("audit", "export", "--format", "csv", "--output", str(target))[0] == 0
    assert target.read_bytes().decode() == out


def test_audit_export_usage_errors(cli, tmp_path):
    code, _, err = cli("audit", "export")
    assert code == 2 and "--format" in err
    code, _, err = cli("audit", "--format", "csv")
    assert code == 2 and "--format" in err
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "export", "--format", "xml"])
    assert exit_.value.code == 2
    code, _, err = cli("audit", "export", "--format", "csv", "--output", str(tmp_path / "no" / "such" / "dir.csv"))
    assert code == 2 and "--output" in err


def test_audit_verify_exit_codes(cli, tmp_path):
    code, out, err = cli("audit", "verify")
    assert code == 0 and "intact" in out and err == ""
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["entries"] == 7

    store = Service.open(tmp_path / "store").store
    store.compact()  # the events into audit.jsonl, where an attacker edits one and fixes its CRC
    path = tmp_path / "store" / AUDIT
    records = decode_lines(path.read_bytes())[0]
    records[3]["target"] = "not-minus-one"
    path.write_bytes(b"".join(encode_line(r) for r in records))
    code, out, err = cli("audit", "verify")
    assert code == 1 and out == ""
    assert f"seq {records[3]['seq']}" in err and "edited" in err
    code, out, _ = cli("audit", "verify", "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["first_broken"]["index"] == 3 and report["first_broken"]["seq"] == records[3]["seq"]
    assert {"seq", "index", "reason"} <= report["first_broken"].keys()


def test_audit_verify_takes_no_filters(cli):
    code, _, err = cli("audit", "verify", "--actor", "x")
    assert code == 2 and "--actor" in err


def test_audit_is_refused_to_outsiders(cli, monkeypatch):
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "mallory")
    for args in (("audit",), ("audit", "verify"), ("audit", "export", "--format", "csv"), ("report", "apps")):
        assert cli(*args)[0] == 4, args


# -- reports -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_report_json_and_csv(cli, name):
    code, out, err = cli("report", name, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    if name != "access":
        assert all(list(row) == COLUMNS[name] for row in rows)
    code, out, _ = cli("report", name, "--csv")
    assert code == 0 and csv_rows(out)[0] == (COLUMNS[name] if name != "access" else COLUMNS["access"])
    code, out, _ = cli("report", name)
    assert code == 0 and out


def test_report_apps_with_licenses(cli):
    assert cli("app", "update", "Wiki", "--licenses", "1")[0] == 0
    code, out, _ = cli("report", "apps", "--json")
    [wiki] = json.loads(out)
    assert wiki == {
        "app": "Wiki",
        "kind": "manual",
        "entitled": 1,
        "active": 0,
        "deactivated": 0,
        "failed": 0,
        "licenses": 1,
        "over_license": False,
        "utilisation": 0.0,
    }
    code, _, err = cli("app", "update", "Wiki", "--licenses", "-1")
    assert code == 2 and "--licenses" in err


def test_report_access_pivot_csv(cli):
    code, out, _ = cli("report", "access", "--pivot", "--csv")
    assert code == 0 and csv_rows(out) == [["user", "user_state", "Wiki"], ["ada", "active", "pending"], ["bob", "active", ""]]
    code, out, _ = cli("report", "access", "--json")
    assert json.loads(out) == [
        {"user": "ada", "user_state": "active", "app": "Wiki", "entitled": True, "via": "direct", "account": "pending"}
    ]


def test_report_csv_escapes_formulas(cli, service):
    with service.store.transaction() as tx:  # what an app import would record
        tx.put(
            ORPHANS,
            "o1",
            {
                "app": service.directory.app("Wiki")["id"],
                "remote_id": "@SUM(A1)",
                "userName": EVIL,
                "email": "+1@example.com",
                "seen": "2024-01-01T00:00:00Z",
            },
        )
    code, out, _ = cli("report", "orphans", "--csv")
    assert code == 0 and csv_rows(out) == [COLUMNS["orphans"], ["Wiki", "'@SUM(A1)", "'" + EVIL, "'+1@example.com", "2024-01-01T00:00:00Z"]]
    code, out, _ = cli("report", "changes", "--csv", "--limit", "4")
    rows = csv_rows(out)
    assert len(rows) == 5 and rows[0] == COLUMNS["changes"]
    assert "'" + EVIL in [r[6] for r in rows]


def test_report_stale_failures_and_pending(cli, service):
    ada = next(u["id"] for u in service.store.all(USERS).values() if u["login"] == "ada")
    wiki = service.directory.app("Wiki")["id"]
    with service.store.transaction() as tx:
        tx.put(
            ACCOUNTS,
            account_key(wiki, ada),
            {
                "app": wiki,
                "user": ada,
                "remote_id": "manual",
                "active": False,
                "state": "deactivated",
                "deactivated_at": "2000-01-01T00:00:00Z",
            },
        )
    code, out, _ = cli("report", "stale", "--json")
    assert code == 0 and [(r["kind"], r["user"]) for r in json.loads(out)] == [("account", "ada")]
    code, out, _ = cli("report", "stale", "--json", "--days", "100000")
    assert json.loads(out) == []
    code, _, err = cli("report", "stale", "--days", "-3")
    assert code == 2 and "--days" in err
    assert json.loads(cli("report", "failures", "--json")[1]) == []
    assert json.loads(cli("report", "pending", "--json")[1]) == []


def test_report_usage_errors(cli):
    code, _, err = cli("report", "apps", "--json", "--csv")
    assert code == 2 and "--csv" in err
    code, _, err = cli("report", "apps", "--app", "Nope")
    assert code == 2 and "Nope" in err
    for argv in (["report"], ["report", "nope"], ["report", "changes", "--app", "Wiki"], ["report", "apps", "--days", "3"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2, argv
