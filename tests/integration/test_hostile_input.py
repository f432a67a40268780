"""Hostile input stays harmless (issue #14).

What an admin types is refused, naming the field, when it holds a control character or is too
long; every number is held to its range; input files are regular files of a bounded size; values
that came from outside are shown escaped in text and exactly in JSON; a closed pipe ends a
command quietly.  The same checks, aimed at every argument of every command, are properties in
tests/unit/test_fuzz_cli.py; the console's side is tests/console/test_tui_hostile.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provtui.cli.sources import report_app_import
from provtui.domain.errors import InvalidInput
from provtui.model.schema import GROUPS, ORPHANS, RULES, USERS
from provtui.service import Service
from provtui.store import LOCK

HOSTILE = "Ada\x1b[2J\x1b]0;pwned\x07"  # clears the screen, retitles the terminal
FAKE_LINE = "Lovelace\ngroups: admins"  # a newline drawing a line that is not there


def store_files(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.is_file() and p.name != LOCK}


def store_state() -> object:
    """What the cli fixture's store holds, byte for byte: its files, or the database's head, trail and documents."""
    location = os.environ["PROVTUI_STORE"]
    if not location.startswith("postgresql"):
        return store_files(Path(location))
    import psycopg

    with psycopg.connect(location) as conn:
        return conn.execute(
            "SELECT (SELECT seq FROM head), (SELECT count(*) FROM audit),"
            " (SELECT md5(string_agg(tbl || key || doc::text, '' ORDER BY tbl, key)) FROM docs)"
        ).fetchone()


def provtui(*args: str, store: Path, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVTUI_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "provtui", *args], capture_output=True, text=True, env=env, timeout=timeout, **kwargs)


@pytest.fixture
def run(cli, capsys):
    """``cli``, answering argparse's usage errors (SystemExit 2) as an exit code too."""

    def call(*args: str) -> tuple[int, str, str]:
        try:
            return cli(*args)
        except SystemExit as stop:
            out, err = capsys.readouterr()
            return stop.code, out, err

    return call


def raw_controls(text: str) -> list[str]:
    """Control characters in ``text`` other than line ends: what must never reach a terminal."""
    return [c for c in text if (c < " " and c not in "\n\t") or "\x7f" <= c <= "\x9f"]


# -- what an admin types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["user", "create", "ada", "--email", "ada@example.com", "--first", "Ad\x1ba", "--last", "L"],
            "--first: contains a control character (\\x1b at position 3)",
        ),
        (
            ["user", "create", "ada", "--email", "ada@example.com", "--first", "Ada", "--last", FAKE_LINE],
            "--last: contains a control character (\\n at position 9)",
        ),
        (["user", "create", "ada", "--email", "ada\r@example.com", "--first", "Ada", "--last", "L"], "--email: contains a control"),
        (
            ["user", "create", "ada", "--email", "ada@example.com", "--first", "A", "--last", "L", "--set", "title=\x9b31m"],
            "--set: contains a control character (\\x9b at position 7)",
        ),
        (["user", "update", "ada", "--set", "department=R&D\x7f"], "--set: contains a control character (\\x7f at position 15)"),
        (["group", "create", "eng", "--description", "x\x1b]0;pwned\x07"], "--description: contains a control character"),
        (["rule", "create", "r", "--group", "eng", "--expr", 'user.title == "\x1b[2J"'], "--expr: contains a control character"),
        (["app", "create", "Pay", "--manual", "--notify", "ops@example.com,\x1b[2J@example.com"], "--notify: contains a control"),
        (["app", "assign", "Pay", "--user", "ada", "--set", "role=\x85admin"], "--set: contains a control character (\\x85"),
        (["config", "set", "smtp.host", "mail\n.example.com"], "value: contains a control character (\\n at position 5)"),
        (["user", "list", "--where", 'user.title == "\x1b"'], "--where: contains a control character"),
    ],
)
def test_a_control_character_an_admin_types_is_refused_naming_the_field(cli, tmp_path, argv, message):
    cli("user", "create", "ada", "--email", "ada@example.com", "--first", "Ada", "--last", "L")
    cli("group", "create", "eng")
    cli("app", "create", "Pay", "--manual", "--notify", "ops@example.com")
    before = store_state()
    code, out, err = cli(*argv)
    assert code == 2 and message in err, err
    assert not raw_controls(out + err)
    assert store_state() == before


def test_the_service_refuses_them_from_any_caller_the_console_too(tmp_path):
    """The checks are the service's (and the domain's): the console calls the same functions."""
    service = Service.init(tmp_path / "store", actor=None)
    service.create_user("ada", "ada@example.com", "Ada", "L")
    service.create_group("eng")
    service.create_app("Pay", manual=True, notify=["ops@example.com"])
    refused = {
        "--first": lambda: service.create_user("bob", "bob@example.com", "B\x1bob", "B"),
        "--set title": lambda: service.update_user("ada", {"title": "\x1b[2J"}),
        "--set": lambda: service.update_user("ada", {"ti\ntle": "x"}),
        "--description": lambda: service.create_group("ops", "a\rb"),
        "name": lambda: service.create_group("o\x1bps"),
        "--expr": lambda: service.rules().create("r", groups=["eng"], expr='user.title == "\x1b"', exclude=[]),
        "--notify": lambda: service.update_app("Pay", notify=["a\x85@example.com"]),
        "--set role": lambda: service.assign("Pay", login="ada", values={"role": "x\x7f"}),
        "smtp.from": lambda: service.set_config("smtp.from", "a@example.com\n"),
        "password": lambda: service.check_password("Secret\x1b123"),
    }
    for field, call in refused.items():
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field, (field, str(caught.value))
    assert service.user_view("ada")["profile"].get("title") is None
    assert [g["name"] for g in service.list_groups()] == ["eng"]


def test_a_tab_is_not_a_control_character_here(cli):
    code, out, err = cli(
        "user", "create", "ada", "--email", "ada@example.com", "--first", "Ada", "--last", "L", "--set", "note=a\tb", "--json"
    )
    assert code == 0 and json.loads(out)["profile"]["note"] == "a\tb"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["user", "create", "ada", "--email", "ada@example.com", "--first", "A" * 201, "--last", "L"], "--first: too long (max 200)"),
        (["user", "create", "ada", "--email", "ada@example.com", "--first", "A" * 100_000, "--last", "L"], "--argument"),
        (["user", "create", "ada", "--email", "ada@example.com", "--first", "A", "--last", "L" * 201], "--last: too long (max 200)"),
        (["user", "create", "a" * 129, "--email", "ada@example.com", "--first", "A", "--last", "L"], "login: too long (max 128)"),
        (["user", "create", "ada", "--email", "a" * 250 + "@x.io", "--first", "A", "--last", "L"], "--email: too long (max 254)"),
        (
            ["user", "create", "ada", "--email", "ada@example.com", "--first", "A", "--last", "L", "--set", "title=" + "t" * 1001],
            "--set title: too long (max 1000)",
        ),
        (["group", "create", "g" * 101], "name: too long (max 100)"),
        (["group", "create", "eng", "--description", "d" * 1001], "--description: too long (max 1000)"),
        (["rule", "create", "r", "--group", "eng", "--expr", "user.title == " + '"' + "x" * 9990 + '"'], "--expr: too long (max 10000)"),
    ],
)
def test_every_text_field_has_a_maximum_and_too_long_says_so(cli, tmp_path, argv, message):
    cli("group", "create", "eng")
    before = store_state()
    code, _, err = cli(*argv)
    if message == "--argument":  # longer than any argument may be: the CLI's own check says so first
        message = "--first: too long (max 10000)"
    assert code == 2 and message in err, err[-300:]
    assert "valid" not in err.rpartition("error:")[2]  # not "not a valid login": what is wrong is its length
    assert store_state() == before


# -- numbers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["app", "create", "S", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "T", "--rate", "1e-300"],
            "--rate: 1e-300 is not a number of calls per second from 0.01 to 10000",
        ),
        (["app", "create", "S", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "T", "--rate", "nan"], "from 0.01 to 10000"),
        (["app", "create", "S", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "T", "--rate", "inf"], "from 0.01 to 10000"),
        (
            ["app", "create", "S", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "T", "--concurrency", "1.5"],
            "argument --concurrency: '1.5' is not a whole number of calls in flight from 1 to 256",
        ),  # not a whole number: usage
        (
            ["app", "create", "S", "--scim-url", "http://127.0.0.1:9/v2", "--token-env", "T", "--concurrency", "257"],
            "--concurrency: 257 is not a whole number of calls in flight from 1 to 256",
        ),
        (["app", "create", "S", "--manual", "--notify", "o@example.com", "--delete-after-days", "-1"], "of days from 0 to 36500"),
        (["app", "create", "S", "--manual", "--notify", "o@example.com", "--licenses", str(2**64)], "of licenses from 0 to"),
        (["sync", "--max-wait", "nan"], "--max-wait: nan is not a number of seconds from 0 to 86400"),
        (
            [
                "source",
                "add-ldap",
                "d",
                "--uri",
                "ldap://h",
                "--bind-dn",
                "cn=a",
                "--password-env",
                "LDAP_PW",
                "--base-dn",
                "dc=a",
                "--interval",
                "0",
            ],
            "--interval: 0 is not a whole number of minutes from 1 to 525600",
        ),
        (["report", "stale", "--days", "1e9"], "argument --days: '1e9' is not a whole number of days from 0 to 1000000000"),
        (["report", "stale", "--days", str(10**10)], "--days: 10000000000 is not a whole number of days from 0 to 1000000000"),
        (["audit", "--limit", "-1"], "--limit: -1 is not a whole number from 0 to 1000000000"),
        (["user", "history", "ada", "--limit", "0"], "--limit: 0 is not a whole number from 1 to 1000000000"),
        (["config", "set", "smtp.port", "0"], "smtp.port: 0 is not a whole number from 1 to 65535"),
        (["config", "set", "smtp.port", "65536"], "from 1 to 65535"),
        (["config", "set", "safeguard.threshold", "nan"], "safeguard.threshold: nan is not a number from 0 to 1"),
        (["config", "set", "password.min-length", "9" * 100], "password.min-length: '" + "9" * 40 + "…' is not a whole number"),
    ],
)
def test_every_number_is_checked_with_its_range_in_the_message(run, tmp_path, argv, message):
    before = store_state()
    code, _, err = run(*argv)
    assert code == 2 and message in err, err[-400:]
    assert store_state() == before


def test_the_service_holds_settings_to_the_same_ranges(tmp_path):
    """The console's app settings (and any caller) meet the ranges the CLI's options do."""
    service = Service.init(tmp_path / "store", actor=None)
    service.create_app("S", scim_url="http://127.0.0.1:9/v2", token_env="SCIM_TOKEN")
    for settings, field in (
        ({"rate": 1e-300}, "--rate"),
        ({"rate": float("nan")}, "--rate"),
        ({"rate": float("inf")}, "--rate"),
        ({"concurrency": 0}, "--concurrency"),
        ({"concurrency": 257}, "--concurrency"),
        ({"concurrency": True}, "--concurrency"),
        ({"delete_after_days": 10**9}, "--delete-after-days"),
    ):
        with pytest.raises(InvalidInput) as caught:
            service.update_app("S", **settings)
        assert caught.value.field == field and "from" in caught.value.message
    with pytest.raises(InvalidInput, match="--priority"):
        service.assign("S", group=service.create_group("eng")["name"], priority=10**30)
    assert (
        service.update_app("S", rate=0.5, concurrency=256)["settings"] | {"rate": 0.5, "concurrency": 256}
        == service.update_app("S")["settings"]
    )


# -- input files -----------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "store"
    assert provtui("init", store=path).returncode == 0
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "csv", "/dev/zero"],
        ["config", "set", "password.blocklist", "/dev/zero"],
        ["source", "add-csv", "hr", "--mapping", "/dev/zero"],
    ],
)
def test_dev_zero_is_refused_at_once(store, argv):
    started = time.monotonic()
    done = provtui(*argv, store=store, timeout=30)
    assert done.returncode == 2 and "/dev/zero is a character device: give a regular file" in done.stderr, done.stderr
    assert time.monotonic() - started < 20 and "Traceback" not in done.stderr


def test_a_fifo_nobody_writes_to_and_a_directory_are_refused_at_once(store, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = provtui("import", "csv", str(fifo), store=store, timeout=30)  # an open() that waited would hang here
    assert done.returncode == 2 and "is a pipe: give a regular file" in done.stderr
    done = provtui("config", "set", "password.blocklist", str(tmp_path), store=store)
    assert done.returncode == 2 and "is a directory" in done.stderr


def test_a_password_blocklist_over_16_mb_is_refused(cli, tmp_path):
    big = tmp_path / "blocklist.txt"
    with open(big, "wb") as f:  # sparse: no 16 MB written
        f.truncate(16 * 1024 * 1024 + 1)
    code, _, err = cli("config", "set", "password.blocklist", str(big))
    assert code == 2 and "password.blocklist: " in err and "is too big (max 16 MB)" in err
    small = tmp_path / "small.txt"
    small.write_text("# common\nhunter2\nPassword1\n")
    code, out, _ = cli("config", "set", "password.blocklist", str(small), "--json")
    assert code == 0 and json.loads(out)["value"] == ["hunter2", "password1"]


def test_stdin_is_read_up_to_the_same_limit(monkeypatch, tmp_path):
    import io

    from provtui import input_files

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * 101)))
    with pytest.raises(InvalidInput, match="stdin is too big"):
        input_files.read_input("-", "FILE", 100)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * 100)))
    assert input_files.read_input("-", "FILE", 100) == b"x" * 100


# -- values from outside: escaped in text, exact in JSON -------------------------------------------------------


def seed_from_outside(store: Path | str) -> Service:
    """What an LDAP or SCIM app (or a store from before these checks) may hold: written as imports write."""
    service = Service.open(store, actor=None)
    now = "2026-01-01T00:00:00+00:00"
    with service.store.transaction() as tx:
        profile = {
            "login": "ada",
            "email": "ada@example.com",
            "firstName": HOSTILE,
            "lastName": FAKE_LINE,
            "displayName": f"{HOSTILE} {FAKE_LINE}",
            "title": "T\x9b31m",
        }
        tx.put(
            USERS,
            "u-ada",
            {"id": "u-ada", "login": "ada", "state": "active", "source": "corp", "profile": profile, "created": now, "state_changed": now},
        )
        tx.put(
            GROUPS,
            "g-ldap",
            {
                "id": "g-ldap",
                "name": "ldap-staff",
                "description": "staff\x1b[2J\nfake: row",
                "kind": "ldap:corp",
                "source": "corp",
                "created": now,
            },
        )
        tx.put(
            RULES,
            "r-old",
            {
                "id": "r-old",
                "name": "old",
                "expr": 'user.title == "\x1b]0;pwned\x07"',
                "groups": [],
                "exclude": [],
                "state": "inactive",
                "created": now,
            },
        )
        tx.put(
            ORPHANS,
            "o-1",
            {"app": "Slack", "remote_id": "r\x1b[2J", "userName": "eve\ngroups: admins", "email": "eve\x85@example.com", "seen": now},
        )
    return service


def test_values_from_outside_are_shown_escaped_and_exact_in_json(cli, tmp_path):
    seed_from_outside(os.environ["PROVTUI_STORE"])  # the cli fixture's store
    for argv in (["user", "show", "ada"], ["user", "list"], ["group", "list"], ["rule", "list"], ["report", "orphans"]):
        code, out, err = cli(*argv)
        assert code == 0, err
        assert not raw_controls(out), (argv, out)
        assert not any(line.lstrip().startswith(("groups: admins", "fake: row")) for line in out.splitlines()), out
    code, out, _ = cli("user", "show", "ada")
    assert "firstName: Ada\\x1b[2J\\x1b]0;pwned\\x07" in out and "lastName: Lovelace\\ngroups: admins" in out
    assert "title: T\\x9b31m" in out
    code, out, _ = cli("group", "list")
    assert "staff\\x1b[2J\\nfake: row" in out
    code, out, _ = cli("report", "orphans")
    assert "eve\\ngroups: admins" in out and "r\\x1b[2J" in out and "eve\\x85@example.com" in out
    # --json: exact JSON, every value round-trips
    code, out, _ = cli("user", "show", "ada", "--json")
    assert json.loads(out)["profile"]["firstName"] == HOSTILE and json.loads(out)["profile"]["lastName"] == FAKE_LINE
    code, out, _ = cli("user", "list", "--json")
    assert json.loads(out)[0]["displayName"] == f"{HOSTILE} {FAKE_LINE}"
    code, out, _ = cli("group", "list", "--json")
    assert [g["description"] for g in json.loads(out) if g["name"] == "ldap-staff"] == ["staff\x1b[2J\nfake: row"]
    code, out, _ = cli("rule", "list", "--json")
    assert json.loads(out)[0]["expr"] == 'user.title == "\x1b]0;pwned\x07"'
    code, out, _ = cli("report", "orphans", "--json")
    assert json.loads(out)[0]["userName"] == "eve\ngroups: admins"
    assert not raw_controls(out)  # JSON writes them as \u escapes


def test_an_hr_export_with_a_newline_in_a_name_is_shown_escaped(cli, tmp_path):
    """Through an import: the CSV parser keeps a quoted newline (and refuses ESC itself); both outputs stay right."""
    export = tmp_path / "hr.csv"
    export.write_text(
        "Employee ID,First Name,Last Name,Work Email,Job Title,Department,Status\n"
        '1,Ada,"Lovelace\ngroups: admins",ada@example.com,"T\x9b31m",R&D,Active\n',
        encoding="utf-8",
    )
    code, out, err = cli("import", "csv", str(export))
    assert code == 0, err
    code, out, _ = cli("user", "show", "ada@example.com")
    assert "lastName: Lovelace\\ngroups: admins" in out and "title: T\\x9b31m" in out and not raw_controls(out)
    assert "\n  groups: -" in out and "\ngroups: admins" not in out
    code, out, _ = cli("user", "show", "ada@example.com", "--json")
    assert json.loads(out)["profile"]["lastName"] == "Lovelace\ngroups: admins"


def test_import_app_output_escapes_what_the_app_sent(capsys):
    class Args:
        json = False

    result = {
        "dry_run": True,
        "linked": 1,
        "accounts": 3,
        "app": "Slack",
        "match": "userName",
        "already_linked": 0,
        "conflicts": 1,
        "orphans": 1,
        "details": {
            "linked": [{"remote_id": "1\x1b[2J", "userName": "ada\x9b", "login": "ada", "entitled": True}],
            "conflicts": [{"remote_id": "2", "userName": "bob\r", "reason": "taken\ngroups: admins"}],
            "orphans": [{"remote_id": "3", "userName": "eve\n", "email": "e\x1b@example.com"}],
        },
    }
    report_app_import(Args(), result)
    out = capsys.readouterr().out
    assert not raw_controls(out) and "1\\x1b[2J ada\\x9b -> ada" in out and "taken\\ngroups: admins" in out
    assert len(out.splitlines()) == 4


def test_error_messages_never_carry_a_control_character(run):
    code, _, err = run("user", "list", "--state", "\x1b[2J")  # argparse quotes what was typed
    assert code == 2 and not raw_controls(err) and "\\x1b[2J" in err


# -- a closed pipe ---------------------------------------------------------------------------------------------


def test_a_closed_pipe_ends_the_command_quietly(store):
    service = Service.open(store, actor=None)
    now = "2026-01-01T00:00:00+00:00"
    with service.store.transaction() as tx:  # a few thousand users: far more output than a pipe's buffer holds
        for n in range(4000):
            login = f"user{n:05d}"
            tx.put(
                USERS,
                f"u{n:05d}",
                {
                    "id": f"u{n:05d}",
                    "login": login,
                    "state": "active",
                    "source": "provtui",
                    "profile": {
                        "login": login,
                        "email": f"{login}@example.com",
                        "firstName": "F" * 30,
                        "lastName": "L" * 30,
                        "displayName": "D" * 40,
                    },
                    "created": now,
                    "state_changed": now,
                },
            )
    for argv in (["user", "list"], ["user", "list", "--json"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "provtui", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PROVTUI_STORE": str(store)},
        )
        first = process.stdout.readline()  # as `| head -1`: read a line, then close the pipe
        process.stdout.close()
        _, err = process.communicate(timeout=60)
        assert first and not err, err.decode()[-800:]  # no traceback, no "Exception ignored", nothing at all
        assert process.returncode == 141  # 128 + SIGPIPE, as a shell reports any Unix tool a closed pipe ended


@pytest.mark.parametrize("argv", [["source", "priority", "--", "--json", "--"], ["app", "map", "alice", "--", "--", "--json"]])
def test_a_positional_argparse_leaves_empty_after_a_second_double_dash_is_missing_not_a_crash(cli, argv):
    """argparse hands such a positional [] (found by the CLI fuzzer): exit 2 naming it, no traceback."""
    code, _, err = cli(*argv)
    assert code == 2 and "missing: give a value" in err and "Traceback" not in err
