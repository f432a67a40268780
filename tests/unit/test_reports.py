"""Reports over a small organisation; downstream states are written straight to the store, as a sync would leave them."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from provtui.domain.errors import InvalidInput, NotAllowed, NotFound
from provtui.model.schema import ACCOUNTS, DIRTY, TASKS, USERS, account_key
from provtui.service import Service
from provtui.service.reports import COLUMNS, NAMES, ORPHANS

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Built once (every commit is fsync'd: slow); each test gets a copy."""
    s = Service.init(tmp_path_factory.mktemp("template") / "store", actor="alice")
    for login in ("ada", "bob", "cy", "dee", "eve", "fay", "gus"):
        s.create_user(login, f"{login}@example.com", login.title(), "T", activate=True)
    s.create_group("eng")
    s.add_members("eng", ["ada", "bob", "cy"])
    s.create_app("Slack", scim_url="http://127.0.0.1:9/v2", token_env="PROVTUI_REPORTS_TOKEN")
    s.update_app("Slack", licenses=2)
    s.create_app("Wiki", manual=True, notify=["it@example.com"])
    s.assign("Slack", group="eng")
    s.assign("Slack", login="ada")
    s.assign("Wiki", login="dee")
    for login in ("fay", "gus"):
        s.change_state(login, "deactivate")
    ids = {u["login"]: u["id"] for u in s.store.all(USERS).values()}
    slack, wiki = s.directory.app("Slack")["id"], s.directory.app("Wiki")["id"]

    def account(app, login, **fields):
        doc = {
            "app": app,
            "user": ids[login],
            "remote_id": f"r-{login}",
            "active": True,
            "attributes": {},
            "state": "active",
            "last_error": None,
            "attempts": 0,
            "last_sync": iso(1),
            **fields,
        }
        tx.put(ACCOUNTS, account_key(app, ids[login]), doc)

    with s.store.transaction() as tx:  # as a sync (and an admin long ago) left things
        for key in list(s.store.all(DIRTY)):
            tx.delete(DIRTY, key)
        account(slack, "ada")
        account(slack, "bob")
        account(
            slack, "cy", remote_id=None, active=False, state="failed", last_error="HTTP 503 from Slack", attempts=3, last_action="create"
        )
        account(slack, "eve")  # never entitled: someone made it by hand downstream
        account(slack, "dee", active=False, state="deactivated", deactivated_at=iso(200))
        account(wiki, "bob", remote_id="manual", state="task-open", task="t1")
        account(wiki, "dee", remote_id=None, active=False, state="task-open", task="t2")
        tx.put(TASKS, "t1", {"id": "t1", "app": wiki, "user": ids["bob"], "action": "deprovision", "state": "open", "created": iso(3)})
        tx.put(TASKS, "t2", {"id": "t2", "app": wiki, "user": ids["dee"], "action": "provision", "state": "open", "created": iso(2)})
        tx.put(USERS, ids["fay"], {**s.store.get(USERS, ids["fay"]), "state_changed": iso(120)})
        tx.put(USERS, ids["gus"], {**s.store.get(USERS, ids["gus"]), "state_changed": iso(10)})
    s.remove_members("eng", ["bob"])  # bob leaves: his Slack account is queued to go
    return s.location


@pytest.fixture
def org(template, tmp_path):
    shutil.copytree(template, tmp_path / "store")
    return Service.open(tmp_path / "store", actor="alice")


def test_every_report_has_its_columns_and_writes_nothing(org):
    reports, seq = org.reports(), org.store.seq
    for name in NAMES:
        rows, columns = reports.run(name)
        assert columns == COLUMNS[name] or name == "access"
        assert all(list(row) == columns for row in rows), name
    assert org.store.seq == seq


def test_reports_need_read_access(org):
    with pytest.raises(NotAllowed):
        Service.open(org.location, actor="mallory").reports()


def test_apps_against_licenses(org):
    assert org.reports().apps() == [
        {
            "app": "Slack",
            "kind": "scim",
            "entitled": 2,
            "active": 3,
            "deactivated": 1,
            "failed": 1,
            "licenses": 2,
            "over_license": True,
            "utilisation": 150.0,
        },
        {
            "app": "Wiki",
            "kind": "manual",
            "entitled": 1,
            "active": 1,
            "deactivated": 0,
            "failed": 0,
            "licenses": None,
            "over_license": False,
            "utilisation": None,
        },
    ]
    assert [r["app"] for r in org.reports().apps("Wiki")] == ["Wiki"]
    with pytest.raises(NotFound):
        org.reports().apps("Nope")


def test_access_who_has_what_and_why(org):
    rows = org.reports().access()
    assert [(r["user"], r["app"], r["entitled"], r["via"], r["account"]) for r in rows] == [
        ("ada", "Slack", True, "direct;group:eng", "active"),
        ("bob", "Slack", False, "", "active"),
        ("bob", "Wiki", False, "", "task-open"),
        ("cy", "Slack", True, "group:eng", "failed"),
        ("dee", "Slack", False, "", "deactivated"),
        ("dee", "Wiki", True, "direct", "task-open"),
        ("eve", "Slack", False, "", "active"),
    ]
    assert [r["user"] for r in org.reports().access("Wiki")] == ["bob", "dee"]


def test_access_pivot_is_a_user_by_app_table(org):
    reports = org.reports()
    table = {r["user"]: r for r in reports.access(pivot=True)}
    assert reports.access_columns(pivot=True) == ["user", "user_state", "Slack", "Wiki"]
    assert list(table) == ["ada", "bob", "cy", "dee", "eve", "fay", "gus"]
    assert table["ada"] == {"user": "ada", "user_state": "active", "Slack": "active", "Wiki": ""}
    assert table["dee"] == {"user": "dee", "user_state": "active", "Slack": "deactivated", "Wiki": "task-open"}
    assert table["fay"] == {"user": "fay", "user_state": "deprovisioned", "Slack": "", "Wiki": ""}
    org.assign("Wiki", login="gus")  # entitled path, nothing downstream yet: queued
    assert {r["user"]: r for r in reports.access(pivot=True)}["gus"]["Wiki"] == "pending"
    assert list(reports.access("Slack", pivot=True)[0]) == ["user", "user_state", "Slack"]


def test_pending_deprovisions(org):
    rows = org.reports().pending()
    assert [(r["kind"], r["app"], r["user"], r["action"], r["state"]) for r in rows] == [
        ("task", "Wiki", "bob", "deprovision", "task-open"),  # the provision task (dee) is not a deprovision
        ("account", "Slack", "bob", "deactivate", "queued"),
        ("account", "Slack", "eve", "deactivate", "not queued"),
    ]
    assert rows[0]["task"] == "t1" and rows[0]["since"] == iso(3)
    assert [r["user"] for r in org.reports().pending("Wiki")] == ["bob"]


def test_failures(org):
    assert org.reports().failures() == [
        {"app": "Slack", "user": "cy", "last_error": "HTTP 503 from Slack", "attempts": 3, "last_sync": iso(1), "last_action": "create"}
    ]
    assert org.reports().failures("Wiki") == []


def test_orphans_from_app_import(org):
    assert org.reports().orphans() == []
    slack = org.directory.app("Slack")["id"]
    with org.store.transaction() as tx:
        tx.put(ORPHANS, "o1", {"app": slack, "remote_id": "x9", "userName": "zed", "email": "zed@example.com", "seen": iso(1)})
        tx.put(ORPHANS, "o2", {"app": slack, "remote_id": "x8", "userName": "amy", "email": None, "seen": iso(1)})
        tx.put(ORPHANS, "o3", {"app": org.directory.app("Wiki")["id"], "remote_id": "w1", "userName": "old", "email": None, "seen": iso(2)})
    rows = org.reports().orphans()
    assert [(r["app"], r["userName"], r["remote_id"]) for r in rows] == [
        ("Slack", "amy", "x8"),
        ("Slack", "zed", "x9"),
        ("Wiki", "old", "w1"),
    ]
    assert [r["userName"] for r in org.reports().orphans("Wiki")] == ["old"]


def test_stale(org):
    reports = org.reports()
    assert reports.stale(now=NOW) == [
        {"kind": "account", "app": "Slack", "user": "dee", "since": iso(200), "days": 200},
        {"kind": "user", "app": None, "user": "fay", "since": iso(120), "days": 120},
    ]
    assert [r["user"] for r in reports.stale(150, now=NOW)] == ["dee"]
    assert [r["user"] for r in reports.stale(5, now=NOW)] == ["dee", "fay", "gus"]
    assert reports.stale(app="Wiki", now=NOW) == []  # an app's report has no user rows
    with pytest.raises(InvalidInput) as error:
        reports.stale(-1)
    assert error.value.field == "--days"


def test_recent_changes_leave_out_downstream_calls(org):
    with org.store.transaction() as tx:
        tx.audit(
            {
                "actor": "provtui-engine",
                "action": "downstream.call",
                "target": "Slack",
                "before": None,
                "after": {"method": "PATCH", "path": "/Users/r-bob", "status": 200, "duration_ms": 3.0},
                "correlation": "c",
            }
        )
        tx.audit(
            {
                "actor": "provtui-engine",
                "action": "downstream.failed",
                "target": "Slack",
                "before": None,
                "after": {"error": "HTTP 503"},
                "correlation": "c",
            }
        )
    rows = org.reports().changes(3)
    assert [(r["action"], r["target"]) for r in rows] == [
        ("user.deactivate", "gus"),
        ("group.remove-member", "eng"),
        ("downstream.failed", "Slack"),
    ]
    assert "downstream.call" not in [r["action"] for r in org.reports().changes(None)]
    assert rows[-1]["action"] == "downstream.failed" and list(rows[-1]) == COLUMNS["changes"]
    assert org.reports().changes(0) == []
    assert len(org.reports().changes(None)) == len([e for e in org.audit() if e["action"] != "downstream.call"])


def test_run_limits_and_names(org):
    reports = org.reports()
    rows, _ = reports.run("access", limit=2)
    assert len(rows) == 2
    rows, columns = reports.run("access", pivot=True, app="Wiki")
    assert columns == ["user", "user_state", "Wiki"]
    with pytest.raises(InvalidInput):
        reports.run("nope")
    with pytest.raises(InvalidInput):
        reports.run("apps", limit=-1)
