"""Key flows of the console end to end, with the engine running inside it against a real scim2-server.

Deactivating someone with a manual app: the console confirms, the engine turns the deprovision
into a task for an admin, the task appears on the Tasks screen, and marking it done there
deactivates the account in provtui's records.
"""

from __future__ import annotations

from provtui.compose import build_console
from provtui.tui.app import build_app
from provtui.tui.screens.modals import ConfirmModal, PickModal
from provtui.tui.screens.tasks import TasksScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from tests.helpers.console import screen_text, settle, wait_for


def account(service, login: str, app: str) -> dict:
    return next(a["account"] for a in service.user_view(login)["apps"] if a["app"] == app)


async def test_deactivating_a_user_of_a_manual_app_opens_a_task_that_is_marked_done(live):
    # Grace's Payroll account was made by hand: her provisioning task is done.
    created = next(t for t in live.task_list(open_only=True) if t["user"] == "ghopper" and t["app"] == "Payroll")
    live.complete_task(created["id"])
    assert account(live, "ghopper", "Payroll")["state"] == "active"

    app = build_console(live, engine={"notify": False}, label="live")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("ghopper")
        await settle(pilot)
        assert isinstance(app.screen, UserDetailScreen)
        await pilot.press("c")  # every lifecycle action her state allows
        await settle(pilot)
        assert isinstance(app.screen, PickModal)
        field = app.focused
        field.insert_text_at_cursor("deprov")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)  # destructive: confirmed first
        await pilot.press("enter")
        await settle(pilot)
        assert live.user_view("ghopper")["state"] == "deprovisioned"

        # The engine in the console deactivates her Slack account and opens a Payroll task.
        await wait_for(pilot, lambda: any(t["user"] == "ghopper" and t["action"] == "deprovision" for t in live.task_list(open_only=True)))
        await wait_for(pilot, lambda: account(live, "ghopper", "Slack")["state"] == "deactivated")

        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        await wait_for(pilot, lambda: "ghopper" in screen_text(app))
        tasks = app.screen.query_one("#pending")  # a deprovision task: among the pending deprovisions
        await pilot.press("tab")  # from the provision tasks to the pending deprovisions
        assert app.focused is tasks
        for _ in range(tasks.row_count):  # down the list to her task (the clock is frozen: by app, then user)
            if tasks.highlighted_row["user"] == "ghopper":
                break
            await pilot.press("down")
        assert tasks.highlighted_row["user"] == "ghopper"
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert "ghopper" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert not [t for t in live.task_list(open_only=True) if t["user"] == "ghopper"]
        assert account(live, "ghopper", "Payroll")["state"] == "deactivated"
        await wait_for(pilot, lambda: "ghopper" not in screen_text(app))


async def test_the_user_history_says_what_each_call_made_for_them_did(live):
    from provtui.tui.screens.user_detail import CALL_PATH_WIDTH, describe_event

    lines = [describe_event(event) for event in live.user_history("ghopper")]
    # The server is shared by the session: her account is created, or found (an earlier test made it) and linked.
    calls = [line for line in lines if line.startswith("Slack ")]
    # found (409): the engine asks the app how it filters (/ServiceProviderConfig) before it looks her up
    assert calls and all((" /Users" in line or " /ServiceProviderConfig" in line) and line.rsplit("→ ", 1)[1].isdigit() for line in calls)
    assert calls[-1] in ("Slack POST /Users → 201", "Slack POST /Users → 409")
    assert lines[len(calls) :] == ["joined finance", "joined all-staff", "created"]
    dn = "uid=ghopper,ou=people,ou=engineering,dc=example,dc=org"
    ldap = describe_event(
        {"action": "downstream.call", "target": "Corp LDAP", "after": {"method": "MODIFY", "path": dn, "status": None, "user": "ghopper"}}
    )
    assert ldap == f"Corp LDAP MODIFY {dn[: CALL_PATH_WIDTH - 1]}… → no reply"


async def test_damage_found_while_the_console_runs_stops_it_with_exit_5(tmp_path):
    from provtui.service import Service

    service = Service.init(tmp_path / "s", actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "L")
    app = build_app(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        [journal] = (tmp_path / "s").glob("journal-*.jsonl")
        with open(journal, "ab") as f:
            f.write(b'00000000 {"seq": 99}\n')  # a record another process "committed", damaged
        await pilot.pause()
        app._refresh_store()
        await wait_for(pilot, lambda: app.return_code == 5)
    assert app.return_code == 5
