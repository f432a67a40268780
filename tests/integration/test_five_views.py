"""One truth on every screen (#18): the dashboard, the Tasks screen, `report pending`, `report apps` and
`app status` (and `provtui tasks`) agree on active accounts, open provision tasks and pending deprovisions,
state by state: a provision task open, done, cancelled; a deprovision task open, done, cancelled; a SCIM
account active, deactivated, and still active for someone no longer entitled (a pending deprovision the
engine has not reached yet).

The store is changed through the service and a real engine (a manual app, Payroll, and a SCIM app,
Slack, on an in-memory downstream); the console runs over the same store the whole time and is told of
each change as a screen would be; the CLI runs in-process, embedded and through a provtui server.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re

from provtui.compose import build_engine
from provtui.service import Service
from provtui.tui import queries
from provtui.tui.app import build_app
from provtui.tui.screens.tasks import TasksScreen
from tests.helpers.console import FakeConnector, screen_text, settle

APPS = ("Payroll", "Slack")


def cli_json(cli, *args: str):
    # the running console captures what is printed (as Textual does): the command's output is read here
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli(*args, "--json")[0]
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def tasks_screen_figures(app) -> dict:
    """What the Tasks screen says, read off the screen as a person would, and the rows it lists."""
    assert isinstance(app.screen, TasksScreen)
    text = screen_text(app)
    provision = re.search(r"Provision tasks \((\d+)\)", text)
    pending = re.search(r"Pending deprovisions \((\d+): (\d+) manual tasks?, (\d+) accounts? to deactivate\)", text)
    assert provision and pending, text
    rows = app.screen.query_one("#pending").rows
    return {
        "provision_tasks": int(provision[1]),
        "pending_deprovisions": int(pending[1]),
        "deprovision_tasks": int(pending[2]),
        "pending": sorted((r["kind"], r["app"], r["user"]) for r in rows),
        "provision": sorted((r["app"], r["user"]) for r in app.screen.query_one("#provision").rows),
    }


def every_view(service: Service, cli, console) -> dict[str, dict]:
    """Each view's figures, as each shows them (a view shows only some of them)."""
    dashboard = queries.dashboard(service)
    page = queries.tasks_page(service)
    report_pending = cli_json(cli, "report", "pending")
    all_tasks = cli_json(cli, "tasks")
    return {
        "dashboard": {
            "active": {a["app"]: a["active"] for a in dashboard["apps"]},
            "provision_tasks": dashboard["provision_tasks"],
            "pending_deprovisions": dashboard["pending_deprovisions"],
        },
        "tasks query": {
            "provision_tasks": len(page["provision"]),
            "pending_deprovisions": len(page["pending"]),
            "deprovision_tasks": sum(1 for p in page["pending"] if p["kind"] == "task"),
            "pending": sorted((p["kind"], p["app"], p["user"]) for p in page["pending"]),
            "provision": sorted((t["app"], t["user"]) for t in page["provision"]),
        },
        "tasks screen": tasks_screen_figures(console),
        "report pending": {
            "pending_deprovisions": len(report_pending),
            "deprovision_tasks": sum(1 for r in report_pending if r["kind"] == "task"),
            "pending": sorted((r["kind"], r["app"], r["user"]) for r in report_pending),
        },
        "report apps": {"active": {r["app"]: r["active"] for r in cli_json(cli, "report", "apps")}},
        "app status": {"active": {s["app"]: s["active"] for s in cli_json(cli, "app", "status")}},
        "tasks cli": {
            "provision_tasks": sum(1 for t in all_tasks if t["state"] == "open" and t["action"] == "provision"),
            "deprovision_tasks": sum(1 for t in all_tasks if t["state"] == "open" and t["action"] == "deprovision"),
            "provision": sorted((t["app"], t["user"]) for t in all_tasks if t["state"] == "open" and t["action"] == "provision"),
        },
    }


class Locked:
    """The service, each call under the console's lock: on PostgreSQL the console's threads and the test share
    one connection, and the console reads (a commit's notice wakes it) whenever it likes."""

    def __init__(self, service: Service, lock) -> None:
        self._service, self._lock = service, lock

    def __getattr__(self, name: str):
        attribute = getattr(self._service, name)
        if not callable(attribute):
            return attribute

        def locked(*args, **kwargs):
            with self._lock:
                return attribute(*args, **kwargs)

        return locked


async def test_every_view_agrees_in_every_state(cli, tmp_path):
    service = Service.open(os.environ["PROVTUI_STORE"])  # the store the CLI made (its admin: this OS user)
    for login in ("alice", "bob", "carol"):
        service.create_user(login, f"{login}@example.com", login.title(), "Five", activate=True)
    service.create_app("Payroll", manual=True, notify=["it@example.com"])
    service.create_app("Slack", scim_url="http://127.0.0.1:9/v2", token_env="PROVTUI_FIVE_VIEWS_TOKEN")
    slack = FakeConnector("Slack")

    async def sync() -> None:
        # the console's lock, as compose builds them: its reads (threads) and the engine's writes share one connection
        engine = build_engine(service, notify=False, connector_factory=lambda app: slack, guard=console.service_lock)
        try:
            assert (await engine.run_until_idle()).ok
        finally:
            await engine.aclose()

    def open_task(login: str, action: str) -> str:
        [task] = [t for t in admin.task_list(open_only=True) if t["user"] == login and t["action"] == action]
        return task["id"]

    console = build_app(service, label="five views")
    admin = Locked(service, console.service_lock)
    async with console.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")

        async def check(state: str, *, active: dict[str, int], provision: list, pending: list) -> None:
            console.store_changed()  # as a screen that changed the store says
            await settle(pilot)
            expected = {
                "active": dict(zip(APPS, (active.get(a, 0) for a in APPS), strict=True)),
                "provision_tasks": len(provision),
                "provision": sorted(provision),
                "pending_deprovisions": len(pending),
                "deprovision_tasks": sum(1 for kind, _, _ in pending if kind == "task"),
                "pending": sorted(pending),
            }
            for view, figures in every_view(admin, cli, console).items():
                assert figures == {k: expected[k] for k in figures}, f"{state}: {view} disagrees"

        check_nothing = {"active": {}, "provision": [], "pending": []}
        await check("nothing assigned", **check_nothing)

        admin.assign("Payroll", login="alice")
        admin.assign("Slack", login="alice")
        await sync()
        await check("provision task open, SCIM account active", active={"Slack": 1}, provision=[("Payroll", "alice")], pending=[])

        admin.complete_task(open_task("alice", "provision"))
        await sync()
        await check("provision task done", active={"Payroll": 1, "Slack": 1}, provision=[], pending=[])

        admin.change_state("alice", "deactivate")
        await check(
            "deactivated, the engine not run yet: both accounts still active, both pending",
            active={"Payroll": 1, "Slack": 1},
            provision=[],
            pending=[("account", "Payroll", "alice"), ("account", "Slack", "alice")],
        )
        await sync()
        await check(
            "deprovision task open (an active account), SCIM account deactivated",
            active={"Payroll": 1},
            provision=[],
            pending=[("task", "Payroll", "alice")],
        )

        admin.complete_task(open_task("alice", "deprovision"))
        await sync()
        await check("deprovision task done", **check_nothing)

        admin.assign("Payroll", login="bob")
        await sync()
        await check("bob's provision task open", active={}, provision=[("Payroll", "bob")], pending=[])
        admin.unassign("Payroll", login="bob")
        await sync()
        await check("provision task cancelled", **check_nothing)

        admin.assign("Payroll", login="carol")
        admin.assign("Slack", login="carol")
        await sync()
        admin.complete_task(open_task("carol", "provision"))
        await sync()
        admin.change_state("carol", "deactivate")
        await sync()
        await check("carol's deprovision task open", active={"Payroll": 1}, provision=[], pending=[("task", "Payroll", "carol")])
        admin.change_state("carol", "reactivate")
        await sync()
        await check("deprovision task cancelled, SCIM account reactivated", active={"Payroll": 1, "Slack": 1}, provision=[], pending=[])

    states = {(t["user"], t["action"], t["state"]) for t in cli_json(cli, "tasks")}
    assert {
        ("alice", "provision", "done"),
        ("alice", "deprovision", "done"),
        ("bob", "provision", "cancelled"),
        ("carol", "deprovision", "cancelled"),
    } <= states  # every state was built
