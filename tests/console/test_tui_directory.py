"""Pilot tests of the directory screen: search, filter, detail pane, keys, and a 50,000-user store."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual import events
from textual.widgets import Input, Select, Static

from provtui.service import Service
from provtui.tui.app import build_app
from provtui.tui.screens.directory import DirectoryScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from provtui.tui.widgets.user_detail import UserDetail
from provtui.tui.widgets.user_table import UserTable, layout
from tests.helpers.console import settle


def table(app) -> UserTable:
    return app.screen.query_one(UserTable)


def logins(app) -> list[str]:
    return [row["login"] for row in table(app)._rows]


def detail_text(app) -> str:
    return str(app.screen.query_one(UserDetail).query_one(Static).render())


def status_text(app) -> str:
    return str(app.screen.query_one("#status", Static).render())


async def test_slash_focuses_search(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        assert isinstance(app.focused, UserTable)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#search", Input)


async def test_keys_typed_right_after_slash_go_to_the_search_not_the_shortcuts(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        # One burst, as a paste or a fast typist over SSH arrives: all queued before any is handled.
        for key, character in [("slash", "/"), *((c, c) for c in "lovel")]:  # "l" is also the Audit screen's key
            app.post_message(events.Key(key, character))
        await settle(pilot)
        assert isinstance(app.screen, DirectoryScreen)
        assert app.screen.query_one("#search", Input).value == "lovel"
        await pilot.press("slash")  # in a field, "/" is typed
        assert app.screen.query_one("#search", Input).value == "lovel/"


async def test_typing_filters_and_detail_shows_entitlement_paths(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        assert table(app).row_count == 36
        await pilot.press("slash", *"hopper")
        await settle(pilot)
        assert logins(app) == ["ghopper"]
        assert status_text(app).startswith("1 of 36 users")
        text = detail_text(app)
        assert "Grace Hopper" in text
        assert "Payroll" in text and "group:finance" in text
        assert "Slack" in text and "group:all-staff" in text
        assert "GitHub" not in text


async def test_direct_and_group_paths_are_both_listed(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await pilot.press("slash", *"mhamilton")  # first in Support: the demo assigns GitHub to her directly
        await settle(pilot)
        text = detail_text(app)
        assert "GitHub" in text and "direct" in text
        assert "pending" in text


async def test_state_filter(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        app.screen.query_one("#state", Select).value = "staged"
        await settle(pilot)
        rows = table(app)._rows
        assert len(rows) == 2 and {r["state"] for r in rows} == {"staged"}
        await pilot.press("ctrl+t")  # staged -> suspended
        await settle(pilot)
        assert [r["state"] for r in table(app)._rows] == ["suspended"]
        assert "suspended" in status_text(app)
        for _ in range(2):  # -> deprovisioned -> all
            await pilot.press("ctrl+t")
        await settle(pilot)
        assert table(app).row_count == 36


async def test_enter_opens_the_user_page_and_escape_returns(demo):
    app = build_app(demo, label="demo")
    selected: dict[int, str] = {}

    def record(message) -> None:  # sees the message at each node it bubbles through
        if isinstance(message, UserTable.UserSelected):
            selected[id(message)] = message.login

    async with app.run_test(message_hook=record) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        chosen = list(selected.values())
        assert len(chosen) == 1
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == chosen[0]
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.focused, UserTable)
        assert table(app).highlighted == chosen[0]


async def test_enter_in_search_moves_to_the_list_and_opens_a_single_hit(demo):
    from provtui.tui.screens.user_detail import UserDetailScreen

    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await pilot.press("slash", "a", "enter")  # several hits: to the list
        await settle(pilot)
        assert isinstance(app.focused, UserTable) and table(app).row_count > 1
        await pilot.press("slash", "ctrl+u", *"lovelace", "enter")  # exactly one: her page opens
        await settle(pilot)
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == "alovelace"
        await pilot.press("escape")
        await settle(pilot)
        assert table(app).highlighted == "alovelace"


async def test_escape_clears_search(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await pilot.press("slash", *"hopper")
        await settle(pilot)
        assert table(app).row_count == 1
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one("#search", Input).value == ""
        assert table(app).row_count == 36
        assert isinstance(app.focused, UserTable)


async def test_no_match(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await pilot.press("slash", *"[nobody]")  # not markup, not a match
        await settle(pilot)
        assert table(app).row_count == 0 and table(app).highlighted is None
        assert "No users match" in detail_text(app)
        assert status_text(app).startswith("0 of 36 users matching “[nobody]”")


async def test_cursor_keys_and_click(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        all_logins = logins(app)
        await pilot.press("end")
        assert table(app).highlighted == all_logins[-1]
        await pilot.press("home", "pagedown")
        assert table(app).cursor == table(app).size.height - 1
        await pilot.press("pageup", "down", "up", "down")
        assert table(app).highlighted == all_logins[1]
        await pilot.click(UserTable, offset=(3, 4))  # line 0 is the header: line 4 is the fourth row
        assert table(app).highlighted == all_logins[3]
        await settle(pilot)
        assert all_logins[3] in detail_text(app)


async def test_help_lists_bindings_and_closes(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = str(app.screen.query_one("#help-body Static", Static).render())
        for description in ("Quit", "Help", "Search", "State filter", "Next user"):
            assert description in text
        keys = [line.split()[0] for line in text.splitlines() if line.strip()]
        assert len(keys) == len(set(keys)), keys  # each key once: the one that runs here (esc: the screen's, not Back)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, UserTable)


async def test_ctrl_q_quits(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.return_code == 0
        assert not app.is_running


async def test_commits_from_another_process_appear(demo):
    app = build_app(demo, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        cli = Service.open(demo.store.path, actor="admin")  # as the CLI would, in its own process
        cli.create_user("zuse", "zuse@example.com", "Konrad", "Zuse")
        app._poll_store()  # the 1 s timer, without waiting for it
        await settle(pilot)
        assert "zuse" in logins(app)
        assert status_text(app).startswith("37 of 37 users")


class FakeEngine:
    def __init__(self, service: Service, fail: bool = False) -> None:
        self.service = service
        self.fail = fail
        self.runs = 0

    async def run_until_idle(self) -> None:
        self.runs += 1
        if self.fail:
            raise RuntimeError("connector exploded")
        if self.runs == 1:  # stands in for provisioning work that changes what the screen shows
            self.service.create_user("zuse", "zuse@example.com", "Konrad", "Zuse")


async def test_engine_runs_and_screen_follows(demo):
    engine = FakeEngine(demo)
    app = build_app(demo, engine=engine, label="demo")
    async with app.run_test() as pilot:
        for _ in range(50):
            await pilot.pause(0.02)
            if "zuse" in logins(app):
                break
        assert engine.runs >= 1
        assert "zuse" in logins(app)


async def test_engine_failure_is_reported_not_fatal(demo):
    engine = FakeEngine(demo, fail=True)
    app = build_app(demo, engine=engine, label="demo")
    async with app.run_test() as pilot:
        await settle(pilot)
        assert app.is_running
        assert any("connector exploded" in str(n.message) for n in app._notifications)
        assert table(app).row_count == 36
        assert not app.service_lock.locked()


@pytest.mark.parametrize(
    "width, expected",
    [(30, ["login", "state"]), (40, ["login", "displayName", "state"]), (80, ["login", "displayName", "state", "department", "email"])],
)
def test_columns_fit_the_width(width, expected):
    columns = layout(width)
    assert [c.key for c, _ in columns] == expected
    assert sum(1 + w for _, w in columns) <= width


async def test_50k_users_mount_and_show_rows(big):
    started = time.perf_counter()
    app = build_app(big, label="big")
    async with app.run_test(size=(120, 40)) as pilot:
        mounted = time.perf_counter()
        while table(app).row_count == 0:
            await asyncio.sleep(0.005)
        first_rows = time.perf_counter()
        await settle(pilot)
        assert table(app).row_count == 50_000
        assert status_text(app).startswith("50,000 of 50,000 users")
        assert table(app).highlighted == "user000000"
        await pilot.press("end")
        assert table(app).highlighted == "user049999"
        await pilot.press("slash", *"user04999")
        typed = time.perf_counter()
        await settle(pilot)
        searched = time.perf_counter()
        assert table(app).row_count == 10  # user049990 .. user049999
    print(
        f"\n50k users: app mounted in {mounted - started:.3f}s, first rows after {first_rows - started:.3f}s, "
        f"search shown {searched - typed:.3f}s after the last keystroke (debounce included)"
    )


async def test_50k_users_palette_dashboard_and_user_page(big):
    app = build_app(big, label="big")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        started = time.perf_counter()
        await pilot.press("ctrl+p", *"user04999")
        await settle(pilot)
        palette = time.perf_counter()
        hits = [str(option.prompt) for option in app.screen.query_one("CommandList").options]
        assert hits[0].startswith("user ") and "user049990" in hits[0]
        assert any("more users" in hit for hit in hits)  # a page of people, not 10 (or 50,000) rows
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == "user049990"
        await pilot.press("d")
        await settle(pilot)
        dashboard = time.perf_counter()
        assert app.screen.data["total"] == 50_000 and app.screen.data["states"]["active"] == 28_572
    print(f"\n50k users: palette hits {palette - started:.3f}s after typing began; user page and dashboard {dashboard - palette:.3f}s")
