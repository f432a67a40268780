"""Issue #14: never deprovision from an empty or broken source; scripts can trust an import's exit code.

Every test drives the real CLI in a subprocess (``python -m provtui ... --store DIR``) on a store made
by ``provtui init``; the LDAP ones against a real slapd (the session's, tests/integration/conftest.py, except
where a test must stop its server), the scheduled one through a real ``provtui worker``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap3
import pytest

from provtui.service import Service
from provtui.testing.slapd import SlapdProcess, group_entry, person_entry, slapd_available
from tests.helpers.ldap import PASSWORD_ENV

HEADER = "Employee ID,First Name,Last Name,Work Email,Department,Status"
NO_VALID_PERSON = "the source returned no valid person; nothing was changed"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\ufeff" + header + "\r\n" + "".join(r + "\r\n" for r in rows)).encode()


def person(n: int, status: str = "Active") -> str:
    return f"{1000 + n},P{n},Person,p{n}@example.com,Eng,{status}"


def run(store: Path, *args: str, env: dict | None = None) -> tuple[int, str, str]:
    """`provtui ARGS --store STORE` in a subprocess: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "provtui", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def run_json(store: Path, *args: str, env: dict | None = None):
    code, out, err = run(store, *args, "--json", env=env)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "store"
    code, _, err = run(path, "init")
    assert code == 0, err
    return path


def write(tmp_path: Path, data: bytes, name: str = "hr.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def states(store: Path, env: dict | None = None) -> dict[str, str]:
    return {u["login"]: u["state"] for u in run_json(store, "user", "list", env=env)}


def audit(store: Path) -> list[dict]:
    return run_json(store, "audit")


def seq(store: Path) -> int:
    return Service.open(store).store.seq


def assert_only_a_refusal_was_written(store: Path, before_seq: int, before_audit: int, action: str = "import.refused") -> dict:
    """One transaction since, holding one audit event: the refusal's.  Returns that event."""
    assert seq(store) == before_seq + 1
    events = audit(store)
    assert len(events) == before_audit + 1
    assert events[-1]["action"] == action
    return events[-1]


def import_people(store: Path, tmp_path: Path, count: int) -> None:
    code, _, err = run(store, "import", "csv", write(tmp_path, csv(*(person(n) for n in range(count))), "first.csv"))
    assert code == 0, err


# --------------------------------------------------------------------------- empty or broken CSV exports


def test_a_header_only_export_deactivates_no_one_even_with_confirm(store, tmp_path):
    import_people(store, tmp_path, 195)  # the organisation: 195 people this source masters
    empty = write(tmp_path, csv())
    for flags in ((), ("--confirm",)):
        before_seq, before_audit = seq(store), len(audit(store))
        code, out, err = run(store, "import", "csv", empty, *flags, "--json")
        assert code == 2, err  # refused, not held: --confirm changes nothing about it
        assert NO_VALID_PERSON in err and "--allow-empty" in err and "195 users" in err
        result = json.loads(out)
        assert result["refused"] is True and result["reason"] == "empty" and len(result["would_deactivate"]) == 195
        assert result["deactivated"] == 0
        event = assert_only_a_refusal_was_written(store, before_seq, before_audit)
        assert event["target"] == "csv" and event["after"]["reason"] == "empty" and event["after"]["would_deactivate"] == 195
        assert NO_VALID_PERSON in event["after"]["message"]
    assert set(states(store).values()) == {"active"} and len(states(store)) == 195


def test_a_dry_run_of_an_empty_export_is_refused_the_same_way_and_writes_nothing(store, tmp_path):
    import_people(store, tmp_path, 10)
    before_seq = seq(store)
    code, out, err = run(store, "import", "csv", write(tmp_path, csv()), "--dry-run", "--confirm", "--json")
    assert code == 2 and NO_VALID_PERSON in err
    assert json.loads(out)["refused"] is True and json.loads(out)["dry_run"] is True
    assert seq(store) == before_seq  # a dry run records nothing, not even the refusal


def test_an_export_whose_rows_are_all_rejected_is_refused(store, tmp_path):
    import_people(store, tmp_path, 10)
    bad = csv(*(f"{1000 + n},P{n},Person,not-an-email-{n},Eng,Active" for n in range(10)))
    before_seq, before_audit = seq(store), len(audit(store))
    code, out, err = run(store, "import", "csv", write(tmp_path, bad), "--confirm", "--json")
    assert code == 2 and NO_VALID_PERSON in err and "the 10 it returned were all rejected" in err
    for line in range(2, 12):  # each rejected row is named on stderr: line, column, reason
        assert f"line {line}, column Work Email: " in err
    result = json.loads(out)
    assert [r["line"] for r in result["rejected"]] == list(range(2, 12))
    assert {r["column"] for r in result["rejected"]} == {"Work Email"}
    assert_only_a_refusal_was_written(store, before_seq, before_audit)
    assert set(states(store).values()) == {"active"}


def test_an_export_naming_only_terminated_people_is_refused(store, tmp_path):
    """Decision: a source that says nobody is with the organisation any more is as broken as an empty one."""
    import_people(store, tmp_path, 10)
    code, _, err = run(store, "import", "csv", write(tmp_path, csv(person(0, "Terminated"), person(1, "Terminated"))), "--confirm")
    assert code == 2 and NO_VALID_PERSON in err and "terminated or disabled" in err
    assert set(states(store).values()) == {"active"}


def test_allow_empty_is_still_held_by_the_safeguard_and_deprovisions_with_confirm(store, tmp_path):
    import_people(store, tmp_path, 20)
    empty = write(tmp_path, csv())
    code, out, err = run(store, "import", "csv", empty, "--allow-empty", "--dry-run")
    assert code == 3 and "would deactivate 20 of 20" in err and "20 deactivated" in out  # the dry run: the counts
    before_seq = seq(store)
    code, out, err = run(store, "import", "csv", empty, "--allow-empty", "--json")
    assert code == 3 and json.loads(out)["held"] is True and "20 of 20" in err
    assert set(states(store).values()) == {"active"} and seq(store) == before_seq  # csv: a hold writes nothing
    code, out, err = run(store, "import", "csv", empty, "--allow-empty", "--confirm", "--json")
    assert code == 0, err
    assert json.loads(out)["deactivated"] == 20
    assert set(states(store).values()) == {"deprovisioned"}


def test_a_partial_empty_export_is_not_refused(store, tmp_path):
    """Decision: a partial run (a delta feed) deactivates no one for being absent, and an empty delta is ordinary."""
    import_people(store, tmp_path, 5)
    code, out, err = run(store, "import", "csv", write(tmp_path, csv()), "--partial", "--json")
    assert code == 0, err
    assert json.loads(out)["created"] == json.loads(out)["deactivated"] == 0
    assert set(states(store).values()) == {"active"}


def test_the_refusal_is_decided_by_the_plan_once_for_every_caller():
    """plan_import (pure) decides it; the CLI, the worker and a dry run only act on ``plan.refused``."""
    from provtui.domain.hr_import import parse_csv
    from provtui.domain.import_plan import plan_import

    existing = {
        f"u{n}": {
            "id": f"u{n}",
            "login": f"p{n}@example.com",
            "state": "active",
            "source": "csv",
            "profile": {
                "employeeNumber": str(1000 + n),
                "email": f"p{n}@example.com",
                "login": f"p{n}@example.com",
                "firstName": f"P{n}",
                "lastName": "Person",
                "department": "Eng",
            },
        }
        for n in range(3)
    }
    empty = parse_csv(csv())
    plan = plan_import(empty, existing, source="csv", full=True)
    assert plan.refused and NO_VALID_PERSON in plan.refused and plan.actions == ()
    assert sorted(plan.would_deactivate) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert len(plan_import(empty, existing, source="csv", full=True, allow_empty=True).actions) == 3
    assert plan_import(empty, existing, source="csv", full=False).refused is None  # partial / incremental
    rejected = plan_import(parse_csv(csv("1,A,B,nope,Eng,Active")), existing, source="csv", full=True)
    assert rejected.refused and "was rejected" in rejected.refused and rejected.people == 0
    terminated = plan_import(parse_csv(csv(person(0, "Terminated"))), existing, source="csv", full=True)
    assert terminated.refused and "terminated or disabled" in terminated.refused
    one = plan_import(parse_csv(csv(person(0))), existing, source="csv", full=True)
    assert one.refused is None and one.people == 1 and one.deactivations == 2


# --------------------------------------------------------------------------- exit codes scripts can trust


def test_rejected_rows_apply_the_valid_ones_and_exit_2_listing_each(store, tmp_path):
    data = csv(*(person(n) for n in range(10)), "1098,Bad,Mail,nope,Eng,Active", "1099,Odd,Status,odd@example.com,Eng,Sleeping")
    code, out, err = run(store, "import", "csv", write(tmp_path, data), "--json")
    assert code == 2
    result = json.loads(out)
    assert result["created"] == 10 and len(states(store)) == 10  # the valid rows are applied
    rejected = {r["line"]: r for r in result["rejected"]}
    assert set(rejected) == {12, 13}
    assert rejected[12]["column"] == "Work Email" and "not an email address" in rejected[12]["reason"]
    assert rejected[13]["column"] == "Status" and "unknown employment status" in rejected[13]["reason"]
    assert "line 12, column Work Email: 'nope' is not an email address" in err
    assert "line 13, column Status: unknown employment status 'Sleeping'" in err
    assert "2 rows were rejected" in err
    code, out, err = run(store, "import", "csv", write(tmp_path, csv(*(person(n) for n in range(10)))), "--json")
    assert code == 0 and json.loads(out)["rejected"] == [] and err == ""  # a clean file exits 0


def test_strict_applies_nothing_when_a_row_is_rejected(store, tmp_path):
    data = write(tmp_path, csv(*(person(n) for n in range(5)), "1099,Bad,Mail,nope,Eng,Active"))
    for flags in (("--dry-run",), ()):
        before_seq, before_audit = seq(store), len(audit(store))
        code, out, err = run(store, "import", "csv", data, "--strict", *flags, "--json")
        assert code == 2 and "--strict" in err and "line 7, column Work Email" in err
        assert json.loads(out)["refused"] is True and json.loads(out)["reason"] == "strict"
        assert states(store) == {}
        if flags:
            assert seq(store) == before_seq
        else:
            event = assert_only_a_refusal_was_written(store, before_seq, before_audit)
            assert event["after"]["reason"] == "strict" and event["after"]["rejected"] == 1
    code, _, err = run(store, "import", "csv", write(tmp_path, csv(*(person(n) for n in range(5))), "ok.csv"), "--strict")
    assert code == 0, err
    assert len(states(store)) == 5


def test_a_dry_run_exits_3_when_the_real_run_would_be_held_and_prints_the_counts(store, tmp_path):
    import_people(store, tmp_path, 10)
    two = write(tmp_path, csv(person(0), person(1)))
    before_seq = seq(store)
    code, out, err = run(store, "import", "csv", two, "--dry-run")
    assert code == 3 and "would deactivate 8 of 10" in err
    assert "would import (dry run) from csv: 0 created, 0 updated, 2 unchanged, 0 suspended, 8 deactivated" in out
    assert out.count("deactivated p") == 8  # and the plan, user by user
    code, out, err = run(store, "import", "csv", two, "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 3 and plan["held"] is True and plan["dry_run"] is True and plan["deactivated"] == 8
    assert len(plan["would_deactivate"]) == 8 and len(plan["actions"]) == 8 and plan["active"] == 10
    assert seq(store) == before_seq
    assert run(store, "import", "csv", two, "--dry-run", "--confirm")[0] == 0  # what the confirmed run would do
    assert run(store, "import", "csv", two)[0] == 3  # the real run: held, as its dry run said
    assert set(states(store).values()) == {"active"}


def test_columns_that_map_to_nothing_are_listed_as_ignored(store, tmp_path):
    header = HEADER + ",Salary,Hire Date"
    data = write(tmp_path, csv(f"{person(0)},100000,2020-01-01", header=header))
    code, out, err = run(store, "import", "csv", data, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ignored_columns"] == ["Salary", "Hire Date"] and result["unmapped_columns"] == ["Salary", "Hire Date"]
    assert "ignored columns" in err and "'Salary', 'Hire Date'" in err
    code, out, err = run(store, "import", "csv", data, "--dry-run")  # the people's output says it too
    assert code == 0 and "'Salary', 'Hire Date'" in err
    # a column the mapping marks @ignore is deliberately not imported: listed, not warned about
    mapping = tmp_path / "map.ini"
    mapping.write_text("[columns]\nSalary = @ignore\n")
    assert run(store, "source", "add-csv", "hr", "--mapping", str(mapping))[0] == 0
    code, out, err = run(store, "import", "csv", data, "--source", "hr", "--partial", "--json")
    result = json.loads(out)
    assert result["ignored_columns"] == ["Salary", "Hire Date"] and result["unmapped_columns"] == ["Hire Date"]
    assert "'Hire Date'" in err and "Salary" not in err


# --------------------------------------------------------------------------- LDAP / AD sources

ldap = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


def ldap_env(server: SlapdProcess, **extra: str) -> dict:
    return {**os.environ, PASSWORD_ENV: server.reader_password, **extra}


def add_ldap(store: Path, server: SlapdProcess, base: str, env: dict, name: str = "corp", *options: str) -> None:
    code, _, err = run(
        store,
        "source",
        "add-ldap",
        name,
        "--uri",
        server.uri,
        "--bind-dn",
        server.reader_dn,
        "--password-env",
        PASSWORD_ENV,
        "--base-dn",
        base,
        *options,
        env=env,
    )
    assert code == 0, err


def staff(server: SlapdProcess, base: str, count: int, **extra) -> list[str]:
    entries = [person_entry(base, f"u{n}", f"U{n}", "Staff", **extra) for n in range(count)]
    server.add_ldif(entries)
    return [dn for dn, _ in entries]


def modify_all(server: SlapdProcess, dns: list[str], **replace: str) -> None:
    with server.connection() as conn:
        for dn in dns:
            assert conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in replace.items()})


@ldap
def test_ldap_base_dn_whose_people_moved_away_is_refused(store, slapd, ldap_ou):
    people_ou = slapd.add_ou("people", ldap_ou)
    moved_ou = slapd.add_ou("moved", ldap_ou)
    dns = staff(slapd, people_ou, 10)
    env = ldap_env(slapd)
    add_ldap(store, slapd, people_ou, env)
    assert run(store, "import", "ldap", "corp", env=env)[0] == 0
    with slapd.connection() as conn:  # the people move: the source's base DN is now the wrong one
        for dn in dns:
            assert conn.modify_dn(dn, dn.split(",", 1)[0], new_superior=moved_ou)
    before_seq, before_audit = seq(store), len(audit(store))
    code, out, err = run(store, "import", "ldap", "corp", "--full", "--confirm", "--json", env=env)
    assert code == 2 and NO_VALID_PERSON in err and "it returned nobody" in err
    assert json.loads(out)["refused"] is True and len(json.loads(out)["would_deactivate"]) == 10
    event = assert_only_a_refusal_was_written(store, before_seq, before_audit)
    assert event["after"]["mode"] == "full" and event["after"]["would_deactivate"] == 10
    assert set(states(store, env).values()) == {"active"}
    [source] = run_json(store, "source", "list", env=env)
    assert source["last_outcome"] == "refused" and NO_VALID_PERSON in source["last_message"]


@ldap
def test_ldap_base_dn_that_does_not_exist_changes_nothing(store, slapd, ldap_ou):
    people_ou = slapd.add_ou("people", ldap_ou)
    staff(slapd, people_ou, 5)
    env = ldap_env(slapd)
    add_ldap(store, slapd, people_ou, env)
    assert run(store, "import", "ldap", "corp", env=env)[0] == 0
    with slapd.connection() as conn:  # a reorganisation renames the OU: the base DN no longer exists
        for dn in [f"uid=u{n},{people_ou}" for n in range(5)]:
            assert conn.delete(dn)
        assert conn.delete(people_ou)
    before_seq, before_audit = seq(store), len(audit(store))
    code, _, err = run(store, "import", "ldap", "corp", "--full", "--confirm", "--allow-empty", env=env)
    assert code == 2 and "noSuchObject" in err  # the directory refuses the search: the configuration needs a person
    assert_only_a_refusal_was_written(store, before_seq, before_audit, action="import.failed")
    assert set(states(store, env).values()) == {"active"}


@ldap
def test_ldap_filter_that_matches_no_one_is_refused_then_allow_empty_is_held_then_applies(store, slapd, ldap_ou):
    dns = staff(slapd, ldap_ou, 6, employeeType="staff")
    slapd.add_ldif([group_entry(ldap_ou, "eng", dns[:3])])
    env = ldap_env(slapd)
    add_ldap(store, slapd, ldap_ou, env, "corp", "--user-filter", "(&(objectClass=inetOrgPerson)(employeeType=staff))")
    assert run(store, "import", "ldap", "corp", env=env)[0] == 0
    modify_all(slapd, dns, employeeType="employee")  # the filter is now the wrong one: it finds nobody
    for flags in ((), ("--confirm",), ("--dry-run",)):
        code, out, err = run(store, "import", "ldap", "corp", "--full", *flags, "--json", env=env)
        assert code == 2 and NO_VALID_PERSON in err, (flags, err)
        assert json.loads(out)["groups"]["members_removed"] == 0
    assert set(states(store, env).values()) == {"active"}
    assert run_json(store, "user", "show", "u0", env=env)["groups"] == ["eng"]  # no membership touched either
    code, out, err = run(store, "import", "ldap", "corp", "--full", "--allow-empty", "--dry-run", env=env)
    assert code == 3 and "6 of 6" in err and "6 deactivated" in out
    code, out, err = run(store, "import", "ldap", "corp", "--full", "--allow-empty", "--json", env=env)
    assert code == 3 and json.loads(out)["held"] is True
    assert set(states(store, env).values()) == {"active"}
    code, out, err = run(store, "import", "ldap", "corp", "--full", "--allow-empty", "--confirm", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["deactivated"] == 6 and set(states(store, env).values()) == {"deprovisioned"}


@ldap
def test_a_stopped_ldap_server_exits_1_and_changes_nothing(store, tmp_path):
    server = SlapdProcess(ad_schema=False).start()  # its own: this test stops it
    try:
        staff(server, server.people_dn, 5)
        env = ldap_env(server)
        add_ldap(store, server, server.people_dn, env)
        assert run(store, "import", "ldap", "corp", env=env)[0] == 0
    finally:
        server.stop()
    before_seq, before_audit = seq(store), len(audit(store))
    code, _, err = run(store, "import", "ldap", "corp", "--full", "--confirm", "--allow-empty", env=env)
    assert code == 1 and "could not connect" in err
    assert_only_a_refusal_was_written(store, before_seq, before_audit, action="import.failed")
    assert set(states(store, env).values()) == {"active"}


@ldap
def test_a_refused_bind_exits_2_and_changes_nothing(store, slapd, ldap_ou):
    staff(slapd, ldap_ou, 5)
    env = ldap_env(slapd)
    add_ldap(store, slapd, ldap_ou, env)
    assert run(store, "import", "ldap", "corp", env=env)[0] == 0
    wrong = ldap_env(slapd, **{PASSWORD_ENV: "not-the-password"})
    before_seq, before_audit = seq(store), len(audit(store))
    code, out, err = run(store, "import", "ldap", "corp", "--full", "--confirm", "--allow-empty", env=wrong)
    assert code == 2 and "invalidCredentials" in err and "not-the-password" not in out + err
    assert_only_a_refusal_was_written(store, before_seq, before_audit, action="import.failed")
    assert set(states(store, env).values()) == {"active"}


# --------------------------------------------------------------------------- scheduled imports in the worker


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


@ldap
def test_the_worker_refuses_a_scheduled_import_that_finds_no_one(store, slapd, ldap_ou):
    dns = staff(slapd, ldap_ou, 8, employeeType="staff")
    env = ldap_env(slapd)
    add_ldap(store, slapd, ldap_ou, env, "corp", "--interval", "5", "--user-filter", "(&(objectClass=inetOrgPerson)(employeeType=staff))")
    # the last run, a full one, a day and an hour ago: the worker's run is due and full
    past = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    assert run(store, "import", "ldap", "corp", env={**env, "PROVTUI_FROZEN_TIME": past})[0] == 0
    modify_all(slapd, dns, employeeType="employee")  # the directory now answers the filter with nobody
    imports_before = [e for e in audit(store) if e["action"] == "user.import"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "provtui", "worker", "--store", str(store)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: run_json(store, "source", "list", env=env)[0]["last_outcome"] == "refused")
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "scheduled import from corp: refused" in err and NO_VALID_PERSON in err  # the worker logs it
    assert set(states(store, env).values()) == {"active"} and len(states(store, env)) == 8
    events = audit(store)
    assert [e for e in events if e["action"] == "user.import"] == imports_before
    assert [e["action"] for e in events if e["action"].startswith("import.")][-1] == "import.refused"
