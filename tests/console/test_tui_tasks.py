"""The Tasks screen keeps provision tasks and pending deprovisions apart (#18): a manual deprovision task is
a pending deprovision, listed with the accounts the engine still has to deactivate, and counted as the
dashboard and `report pending` count them; x marks a task of either list done, enter on an account opens
the person."""

from __future__ import annotations

import asyncio

import pytest

from provtui.compose import build_engine
from provtui.service import Service
from provtui.tui import queries
from provtui.tui.app import build_app
from provtui.tui.screens.modals import ConfirmModal
from provtui.tui.screens.tasks import TasksScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from tests.helpers.console import NARROW, WIDE, FakeConnector, lived_in_service, press, screen_text, settle, snap


@pytest.fixture
def every_kind(tmp_path, frozen_clock, monkeypatch) -> Service:
    """The lived-in demo with one of each: Payroll provision tasks, a Payroll deprovision task (ghopper's account
    was made by hand, then she left), and GitHub accounts the engine has still to deactivate (kthompson's
    deactivation failed: GitHub was down; bstroustrup was suspended after the run: queued)."""
    service = lived_in_service(tmp_path / "store", monkeypatch)
    [made] = [t for t in service.task_list(open_only=True) if t["user"] == "ghopper"]
    service.complete_task(made["id"])
    service.change_state("ghopper", "deactivate")

    async def provision_payroll() -> None:
        github = FakeConnector("GitHub", down=True)  # kthompson's deactivation fails: still pending
        engine = build_engine(service, notify=False, connector_factory=lambda app: {"GitHub": github}.get(app["name"]))
        await engine.run_until_idle()
        await engine.aclose()

    asyncio.run(provision_payroll())
    service.change_state("bstroustrup", "suspend")
    return service


def test_tasks_with_every_kind_of_work_80x24(snap_compare, every_kind):
    assert snap(snap_compare, every_kind, NARROW, "t")


def test_tasks_with_every_kind_of_work_120x40(snap_compare, every_kind):
    assert snap(snap_compare, every_kind, WIDE, "t")


async def test_deprovision_tasks_are_pending_deprovisions_marked_done_from_that_list(every_kind):
    pending = queries.pending_deprovisions(every_kind)
    assert [(p["kind"], p["app"], p["user"]) for p in pending if p["kind"] == "task"] == [("task", "Payroll", "ghopper")]
    accounts = [p["user"] for p in pending if p["kind"] == "account"]
    assert {"kthompson", "bstroustrup"} <= set(accounts)
    app = build_app(every_kind, label="demo")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await press(pilot, "t")
        assert isinstance(app.screen, TasksScreen)
        text = screen_text(app)
        assert "Provision tasks (6)" in text
        assert f"Pending deprovisions ({len(pending)}: 1 manual task, {len(accounts)} accounts to deactivate)" in text
        assert queries.dashboard(every_kind)["pending_deprovisions"] == len(pending)

        await press(pilot, "tab")  # to the pending deprovisions: ghopper's task comes first (tasks, then accounts)
        table = app.screen.query_one("#pending")
        assert app.focused is table and table.highlighted_row["user"] == "ghopper"
        await press(pilot, "x")
        assert isinstance(app.screen, ConfirmModal) and "ghopper's account in Payroll has been disabled by hand?" in screen_text(app)
        await press(pilot, "y")
        assert not [t for t in every_kind.task_list(open_only=True) if t["user"] == "ghopper"]
        assert f"Pending deprovisions ({len(pending) - 1}: 0 manual tasks" in screen_text(app)

        assert table.highlighted_row["kind"] == "account"
        await press(pilot, "x")  # an account is the engine's to deactivate: nothing to confirm
        assert isinstance(app.screen, TasksScreen)
        await press(pilot, "enter")
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == table.highlighted_row["user"]
