"""Pilot tests of the screens' key flows: navigation, the palette, lifecycle with confirmation, groups,
apps, activity, tasks, audit paging, reports, and greying out what the actor may not do."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select

from provtui.domain.errors import NotAllowed
from provtui.model.audit_trail import about_matches
from provtui.service import Service
from provtui.tui.app import build_app
from provtui.tui.screens import audit as audit_screen
from provtui.tui.screens import reports as reports_screen
from provtui.tui.screens.activity import ActivityScreen
from provtui.tui.screens.apps import AppDetailScreen, AppsScreen
from provtui.tui.screens.audit import AuditScreen
from provtui.tui.screens.dashboard import DashboardScreen
from provtui.tui.screens.directory import DirectoryScreen
from provtui.tui.screens.group_detail import GroupDetailScreen, GroupsScreen
from provtui.tui.screens.modals import ConfirmModal, InputModal, MoveGroupModal, PickModal, UserPickModal
from provtui.tui.screens.reports import ReportsScreen
from provtui.tui.screens.tasks import TasksScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from provtui.tui.widgets.row_table import RowTable
from tests.helpers.console import lived_in_service, press, screen_text, settle


@pytest.fixture
def lived(tmp_path, frozen_clock, monkeypatch) -> Service:
    return lived_in_service(tmp_path / "store", monkeypatch)


def table(app, selector: str = "RowTable") -> RowTable:
    return app.screen.query_one(selector, RowTable)


async def test_q_closes_a_page_then_quits_and_esc_clears_the_search_first(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "slash", "a", "q")  # typed: a letter in the search field is text
        assert app.screen.query_one("#search", Input).value == "aq" and app.is_running
        await press(pilot, "escape", "escape", "escape")  # the search cleared, then nowhere to go: still here
        assert isinstance(app.screen, DirectoryScreen) and app.is_running
        assert app.screen.query_one("#search", Input).value == ""
        app.open_group("finance")
        await settle(pilot)
        await press(pilot, "q")  # on a page: q closes it
        assert isinstance(app.screen, DirectoryScreen) and app.is_running
        await press(pilot, "q")  # on a top-level screen: q quits (ctrl+q still does, anywhere)
        assert not app.is_running


async def test_screens_by_key_escape_stays_and_letters_type_in_inputs(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        visited = []
        for key, screen in (
            ("d", DashboardScreen),
            ("g", GroupsScreen),
            ("a", AppsScreen),
            ("y", ActivityScreen),
            ("t", TasksScreen),
            ("l", AuditScreen),
            ("r", ReportsScreen),
            ("u", DirectoryScreen),
        ):
            await press(pilot, key)
            assert isinstance(app.screen, screen), key
            visited.append(screen)
            assert f" {key} " in screen_text(app).splitlines()[1]  # the key is shown in the line of screens
        await press(pilot, "r", "escape")  # on a top-level screen Esc goes nowhere (k9s, lazygit)
        assert isinstance(app.screen, ReportsScreen)
        await press(pilot, "u", "slash", "d", "g")  # in the search field, letters are text, not screens
        assert isinstance(app.screen, DirectoryScreen)
        assert app.screen.query_one("#search", Input).value == "dg"
        await press(pilot, "question_mark")  # typed too: help stays shut while typing
        assert app.screen.query_one("#search", Input).value == "dg?"

        # The mouse: a screen's name in the line of screens, then a double click on a row.
        await pilot.click("#nav-groups")
        await settle(pilot)
        assert isinstance(app.screen, GroupsScreen)
        await pilot.click("#groups", offset=(2, 3), times=2)  # line 0 is the header: the third group
        await settle(pilot)
        assert isinstance(app.screen, GroupDetailScreen) and app.screen.group == "finance"


async def test_palette_reaches_groups_apps_and_the_screen_actions(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+p", "=fina", "enter")
        assert isinstance(app.screen, GroupDetailScreen) and app.screen.group == "finance"
        assert "7 members" in screen_text(app)
        await press(pilot, "escape")
        assert isinstance(app.screen, DirectoryScreen)
        await press(pilot, "ctrl+p", "=susp", "enter")  # an action on someone, from anywhere
        assert isinstance(app.screen, UserPickModal)
        await press(pilot, "=turi", "enter")  # their page opens and the action starts: confirm
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "y")
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == "aturing"
        assert demo.user_view("aturing")["state"] == "suspended"
        await press(pilot, "ctrl+p", "=unsu", "enter")  # the page's own action, by name
        assert demo.user_view("aturing")["state"] == "active"
        await press(pilot, "ctrl+p", "=audit", "enter")
        assert isinstance(app.screen, AuditScreen)


async def test_lifecycle_is_confirmed_and_the_footer_follows_the_state(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_user("alovelace")
        await settle(pilot)
        assert "s Suspend" in screen_text(app)
        await press(pilot, "s")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "escape")  # cancelled: nothing changes
        assert demo.user_view("alovelace")["state"] == "active"
        await press(pilot, "s", "y")
        assert demo.user_view("alovelace")["state"] == "suspended"
        text = screen_text(app)
        assert "suspended" in text.splitlines()[2] and "s Unsuspend" in text
        await press(pilot, "s")  # unsuspending gives access back: no confirmation
        assert demo.user_view("alovelace")["state"] == "active"
        await press(pilot, "c")  # every action the state allows, destructive ones confirmed
        assert isinstance(app.screen, PickModal)
        await press(pilot, "=deprov", "enter")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "enter")
        assert demo.user_view("alovelace")["state"] == "deprovisioned"
        assert "deactivated  admin" in screen_text(app)  # the history shows it


async def test_edit_join_leave_and_assign_from_the_user_page(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("ghopper")
        await settle(pilot)
        await press(pilot, "e", "=tit", "enter")
        assert isinstance(app.screen, InputModal)
        await press(pilot, "ctrl+u", "=CTO", "enter")
        assert demo.user_view("ghopper")["profile"]["title"] == "CTO"
        await press(pilot, "plus", "=sal", "enter")
        assert "sales" in demo.user_view("ghopper")["groups"]
        await press(pilot, "minus", "=sal", "enter")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "y")
        assert "sales" not in demo.user_view("ghopper")["groups"]
        await press(pilot, "n", "=git", "enter")
        github = next(a for a in demo.user_view("ghopper")["apps"] if a["app"] == "GitHub")
        assert github["via"] == ["direct"]
        assert "GitHub   pending  direct" in screen_text(app)
        await press(pilot, "n", "=git", "enter", "y")  # directly assigned: enter unassigns, confirmed
        assert "GitHub" not in {a["app"] for a in demo.user_view("ghopper")["apps"]}


async def test_a_helpdesk_admin_sees_what_they_may_not_do_greyed(demo):
    demo.grant("desk", "helpdesk", groups=["support", "sales"])
    service = Service.open(demo.location, actor="desk")
    app = build_app(service, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("aturing")  # in sales
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("move", ()) is True
        assert screen.check_action("edit", ()) is None  # greyed: only a super-admin edits profiles
        assert screen.check_action("assign", ()) is None
        await press(pilot, "e")
        assert app.screen is screen  # nothing opens
        await press(pilot, "m")
        assert isinstance(app.screen, MoveGroupModal)
        leave = {o.id: o.disabled for o in app.screen.query_one("#leave").options}
        assert leave == {"all-staff": True, "sales": False}  # all-staff is outside the desk's groups
        await press(pilot, "tab", "=sup", "enter", "enter")
        assert service.user_view("aturing")["groups"] == ["all-staff", "support"]
        await press(pilot, "c")  # the lifecycle menu: suspend only
        options = app.screen.query_one("OptionList").options
        assert [(str(o.prompt).split(":")[0], o.disabled) for o in options] == [("Suspend", False), ("Deactivate (deprovision)", True)]


async def test_group_page_members_apps_and_push(demo):
    demo.update_app("GitHub", push_groups=True)
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "g")
        await press(pilot, "slash", "=ops", "enter")
        assert [r["name"] for r in table(app).rows] == ["people-ops"]
        await press(pilot, "enter")
        assert isinstance(app.screen, GroupDetailScreen) and app.screen.group == "people-ops"
        await press(pilot, "plus")
        assert isinstance(app.screen, UserPickModal)
        await press(pilot, "=hopp", "enter")
        assert "ghopper" in [r["login"] for r in table(app).rows]
        await press(pilot, "minus", "y")  # the highlighted member (the first, by login)
        assert len(table(app).rows) == 7
        await press(pilot, "n", "=sl", "enter")
        assert "Apps Slack" in screen_text(app)
        await press(pilot, "p", "enter")  # GitHub pushes groups
        assert "GitHub pushed" in screen_text(app)
        await press(pilot, "p", "enter", "down", "enter", "y")  # stop, and delete it there
        assert "GitHub unpushed (deleted there)" in screen_text(app)


async def test_app_page_resume_retry_preview_and_settings(lived):
    app = build_app(lived, label="lived")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_app("Slack")
        await settle(pilot)
        assert "Quarantined: invalid bearer token" in screen_text(app)
        await press(pilot, "R")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "y")
        assert not lived.app_status("Slack")[0]["quarantined"]
        await press(pilot, "ctrl+r")
        assert lived.app_status("Slack")[0]["failed"] == 33 and lived.app_status("Slack")[0]["queued"] >= 33
        await press(pilot, "e", "=lic", "enter", "=40", "enter")
        assert lived.list_apps()[2]["settings"]["licenses"] == 40
        await press(pilot, "v", "=nwir", "enter")
        text = screen_text(app)
        assert '"userName": "nwirth"' in text and "provtui's user id" in text
        await press(pilot, "n", "down", "enter", "=hopp", "enter")  # to a user
        assert ("Slack", "direct") in {(a["app"], a["via"][0]) for a in lived.user_view("ghopper")["apps"] if a["via"]}
        await press(pilot, "x", "=hopp", "enter", "y")
        assert "direct" not in {v for a in lived.user_view("ghopper")["apps"] for v in a["via"]}


async def test_activity_shows_the_server_message_and_retries(lived):
    app = build_app(lived, label="lived")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "y")
        assert "alovelace in GitHub: userName 'alovelace' is reserved for an organisation" in screen_text(app)
        await press(pilot, "ctrl+r")
        assert lived.user_view("alovelace")["apps"][0]["account"]["queued"]
        await press(pilot, "enter")
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == "alovelace"


async def test_tasks_are_marked_done_after_confirmation(lived):
    app = build_app(lived, label="lived")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "t")
        assert "Provision tasks (7)" in screen_text(app)
        # his GitHub account still to deactivate
        assert "Pending deprovisions (1: 0 manual tasks, 1 account to deactivate)" in screen_text(app)
        assert "kthompson" in screen_text(app)
        await press(pilot, "x")
        assert isinstance(app.screen, ConfirmModal)
        await press(pilot, "escape")
        assert len(lived.task_list(open_only=True)) == 7
        await press(pilot, "x", "y")
        assert len(lived.task_list(open_only=True)) == 6
        assert "Provision tasks (6)" in screen_text(app)
        assert "aeasley" not in [t["user"] for t in lived.task_list(open_only=True)]


async def test_audit_filters_and_pages(lived, monkeypatch):
    monkeypatch.setattr(audit_screen, "PAGE", 10)
    monkeypatch.setattr(audit_screen, "FILTER_DEBOUNCE", 0)
    app = build_app(lived, label="lived")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        assert len(table(app).rows) == 10
        assert "events 1–10, newest first · ] older" in screen_text(app)
        await press(pilot, "right_square_bracket")
        assert "events 11–20" in screen_text(app)
        await press(pilot, "left_square_bracket")
        await press(pilot, "slash", "=ghopper")
        # her events, and the groups' events that name her (the service's `about`)
        assert all(about_matches("ghopper", r) for r in table(app).rows) and "ghopper" in {r["target"] for r in table(app).rows}
        app.screen.query_one("#search", Input).value = ""
        app.screen.query_one("#action", Input).value = "group.create"
        await settle(pilot)
        assert [r["action"] for r in table(app).rows] == ["group.create"] * 6
        await press(pilot, "c")  # downstream calls shown: none matched this filter anyway
        await press(pilot, "escape")
        assert app.screen.query_one("#action", Input).value == ""


async def test_reports_switch_page_and_pivot(lived, monkeypatch):
    monkeypatch.setattr(reports_screen, "PAGE", 20)
    app = build_app(lived, label="lived")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "r")
        assert [r["app"] for r in table(app).rows] == ["GitHub", "Payroll", "Slack"]
        app.screen.query_one("#report", Select).value = "access"
        await settle(pilot)
        total = len(lived.reports().run("access")[0])
        assert len(table(app).rows) == 20 and f"rows 1–20 of {total}" in screen_text(app)
        await press(pilot, "right_square_bracket")
        assert f"rows 21–40 of {total}" in screen_text(app)
        await press(pilot, "p")
        assert "Slack" in [c.key for c in table(app).columns]
        app.screen.query_one("#report", Select).value = "failures"
        await settle(pilot)
        assert "last error" in screen_text(app)


async def test_dashboard_counts_and_opens_an_app(lived):
    app = build_app(lived, label="lived")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "d")
        data = app.screen.data
        assert data["states"]["active"] == 32 and data["failed"] == 34 and data["quarantined"] == ["Slack"]
        assert data["provision_tasks"] == 7 and data["pending_deprovisions"] == 1
        await press(pilot, "end", "enter")
        assert isinstance(app.screen, AppDetailScreen) and app.screen.app_name == "Slack"


def test_move_preview_counts_only_paths_that_go_away(demo):
    demo.assign("GitHub", group="finance")
    preview = demo.move_preview("ghopper", "finance", "engineering")
    assert preview == {"gains": [], "losses": ["Payroll"], "active": True}  # GitHub stays: engineering has it too


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def luminance(rgb: tuple[int, int, int]) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        r, g, b_ = (channel(c / 255) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _faintest_text(app) -> list[tuple[float, str]]:
    """Text on screen whose colours contrast less than 3:1 (WCAG's floor for large text and UI)."""
    faint = set()
    for strip in app.screen._compositor.render_strips():
        for segment in strip:
            style, text = segment.style, segment.text.strip()
            if not text or style is None or style.color is None or style.bgcolor is None or style.dim:
                continue
            if set(text) <= set("▔▁▏▕▊▎▂▃▄▅▆▇█"):  # borders and scrollbars
                continue
            ratio = _contrast(tuple(style.color.get_truecolor()), tuple(style.bgcolor.get_truecolor()))
            if ratio < 3.0:
                faint.add((round(ratio, 2), text))
    return sorted(faint)


async def test_text_reads_on_dark_and_light_themes(lived):
    app = build_app(lived, label="lived")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.open_app("Slack")
        await settle(pilot)
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await settle(pilot)
            assert _faintest_text(app) == [], (theme, "app")
            for key in ("d", "y", "t"):  # (screens with inputs: placeholders are meant to be faint)
                await press(pilot, key)
                assert _faintest_text(app) == [], (theme, key)


def test_a_refused_move_changes_nothing(demo):
    demo.grant("desk", "helpdesk", groups=["sales"])  # may join sales, may not leave finance
    desk = Service.open(demo.location, actor="desk")
    with pytest.raises(NotAllowed):
        desk.move_member("ghopper", "finance", "sales")
    assert demo.user_view("ghopper")["groups"] == ["all-staff", "finance"]


async def test_the_directory_filters_by_group_app_and_source(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "f")
        assert isinstance(app.screen, PickModal)
        await press(pilot, "=group", "enter", "=engin", "enter")
        engineering = [u["login"] for u in demo.list_users(group="engineering")[1]]
        assert [r["login"] for r in table(app).rows] == engineering
        assert "· group engineering" in screen_text(app)
        await press(pilot, "f", "=app", "enter", "=git", "enter")  # and GitHub, which engineering is given
        assert [r["login"] for r in table(app).rows] == [u["login"] for u in demo.list_users(group="engineering", app="GitHub")[1]]
        assert "· group engineering · app GitHub" in screen_text(app)
        await press(pilot, "f", "=source", "enter", "=provtui", "enter")
        assert len(table(app).rows) == len(engineering)
        await press(pilot, "escape")  # clears the filters: everyone again
        assert len(table(app).rows) == demo.user_count() and "· group" not in screen_text(app)
        assert isinstance(app.screen, DirectoryScreen)


async def test_every_screen_through_a_server_shows_its_data_and_no_error(demo, monkeypatch):
    import shutil
    import tempfile
    from pathlib import Path

    import provtui.service.facade
    from provtui.client.remote import RemoteService
    from provtui.compose import build_console
    from provtui.server.peer import Peer
    from tests.helpers.server import thread_server

    monkeypatch.setattr(provtui.service.facade, "current_os_user", lambda: demo.actor)  # the server runs as the demo's admin
    monkeypatch.setattr(Peer, "user", property(lambda peer: demo.actor))  # and so does its client, here
    run = Path(tempfile.mkdtemp(prefix="pvt-"))
    try:
        with thread_server(demo.location, run / "s.sock"):
            remote = RemoteService.connect(run / "s.sock")
            app = build_console(remote)
            async with app.run_test(size=(80, 24)) as pilot:
                await settle(pilot)
                assert "aborg" in screen_text(app)  # the directory's first page, from the server
                for key, shown in (("d", "Dashboard"), ("g", "sales"), ("o", "Rule"), ("a", "GitHub"), ("y", "Activity"),
                                   ("t", "Tasks"), ("l", "Audit"), ("r", "Reports"), ("u", "aborg")):  # fmt: skip
                    await pilot.press(key)
                    await settle(pilot)
                    assert shown in screen_text(app), key
                errors = [n for n in app._notifications if n.severity == "error"]
                assert errors == [], [n.message for n in errors]
            remote.close()
    finally:
        shutil.rmtree(run, ignore_errors=True)


async def test_a_screenshot_is_saved_in_the_current_directory_and_says_where(demo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # over SSH there is often no ~/Downloads: Textual's default
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.action_screenshot()
        await settle(pilot)
        [saved] = list(tmp_path.glob("*.svg"))
        assert saved.read_text().startswith("<svg")
        assert any(str(saved) in str(n.message) for n in app._notifications)


async def test_slash_from_a_persons_page_searches_the_directory_and_u_is_the_list(demo):
    from provtui.tui.screens.user_detail import UserDetailScreen

    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("ghopper")
        await settle(pilot)
        assert isinstance(app.screen, UserDetailScreen)
        await press(pilot, "slash", "t", "u", "r")  # typed at once: the directory's search, no screen switches
        assert isinstance(app.screen, DirectoryScreen)
        assert app.screen.query_one("#search", Input).value == "tur"
        app.open_user("aturing")
        await settle(pilot)
        await press(pilot, "g", "u")  # u: the list, not the page last opened over it
        assert isinstance(app.screen, DirectoryScreen)
