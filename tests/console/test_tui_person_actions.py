"""The person page's access changes (#18): unassigning a direct app with `x`, the confirmations of unassign,
suspend and deactivate listing the apps whose accounts will be deactivated (the service's preview), and the
banner that says what the last change did until the next action or the page is left.  Snapshots of the
page with a direct assignment and of the new confirmations, at 80x24 and 120x40."""

from __future__ import annotations

import pytest

from provtui.tui.app import build_app
from provtui.tui.screens.help import HelpScreen
from provtui.tui.screens.modals import ConfirmModal, PickModal
from provtui.tui.screens.user_detail import UserDetailScreen
from tests.helpers.console import FROZEN_TIME, NARROW, WIDE, lived_in_service, press, screen_text, settle, snap


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """The demo after a provisioning run (read-only: shared): mhamilton has GitHub directly, and only so."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROVTUI_FROZEN_TIME", FROZEN_TIME)
        yield lived_in_service(tmp_path_factory.mktemp("lived") / "store", patch)


def apps_of(service, login: str) -> dict[str, list[str]]:
    return {a["app"]: a["via"] for a in service.user_view(login)["apps"] if a["via"]}


def dialog_text(app) -> str:
    """The open confirmation's question, its lines joined (at 80 columns it wraps)."""
    assert isinstance(app.screen, ConfirmModal), app.screen
    return " ".join(str(app.screen.query_one("#body").render()).split())


def banner_text(app) -> str | None:
    banner = app.screen.query_one("#banner")
    return str(banner.render()) if banner.display else None


# -- unassign ---------------------------------------------------------------------------------------------


async def test_x_unassigns_the_only_direct_app_after_saying_its_account_is_deactivated(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("mhamilton")  # GitHub directly, and through no group
        await settle(pilot)
        assert "x Unassign" in screen_text(app)
        await press(pilot, "x")  # her one direct assignment: no list to choose from
        assert dialog_text(app) == "Remove the direct assignment of GitHub from mhamilton? Accounts deactivated: GitHub"
        await press(pilot, "escape")  # cancelled: nothing changes
        assert "GitHub" in apps_of(demo, "mhamilton")
        await press(pilot, "x", "y")
        assert "GitHub" not in apps_of(demo, "mhamilton")
        assert isinstance(app.screen, UserDetailScreen)
        assert banner_text(app) == "Unassigned GitHub · − GitHub — provisioning below"
        assert "x Unassign" not in screen_text(app)  # no direct assignment left: the key goes


async def test_unassigning_an_app_a_group_also_gives_says_the_account_stays_and_which_group(demo):
    demo.assign("Slack", login="alovelace")  # she has Slack through all-staff too
    demo.assign("GitHub", login="ghopper")
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("alovelace")
        await settle(pilot)
        await press(pilot, "x")
        assert dialog_text(app) == (
            "Remove the direct assignment of Slack from alovelace? The Slack account stays: alovelace also gets it through group all-staff."
        )
        await press(pilot, "y")
        assert apps_of(demo, "alovelace")["Slack"] == ["group:all-staff"]
        assert banner_text(app) == "Unassigned Slack — provisioning below"  # nothing lost


async def test_with_several_direct_apps_x_asks_which(demo):
    for name in ("GitHub", "Slack"):
        demo.assign(name, login="ghopper")
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("ghopper")
        await settle(pilot)
        await press(pilot, "x")
        assert isinstance(app.screen, PickModal)
        await press(pilot, "=git", "enter")
        assert dialog_text(app).endswith("Accounts deactivated: GitHub")
        await press(pilot, "y")
        assert "GitHub" not in apps_of(demo, "ghopper") and apps_of(demo, "ghopper")["Slack"] == ["direct", "group:all-staff"]


async def test_unassign_is_hidden_without_a_direct_app_and_greyed_where_the_actor_may_not(demo):
    demo.assign("GitHub", login="aturing")
    demo.grant("desk", "helpdesk", groups=["sales"])  # may move people between groups, not assign apps
    service = type(demo).open(demo.location, actor="desk")
    app = build_app(service, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("aturing")
        await settle(pilot)
        assert app.screen.check_action("unassign", ()) is None  # greyed
        await press(pilot, "x")
        assert isinstance(app.screen, UserDetailScreen)  # nothing opens
        app.pop_screen()
        app.open_user("alovelace")  # no direct assignment
        await settle(pilot)
        assert app.screen.check_action("unassign", ()) is False


# -- lifecycle confirmations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "title", "state"),
    [(("s",), "Suspend alovelace", "suspended"), (("c", "=deprov", "enter"), "Deactivate alovelace", "deprovisioned")],
    ids=["suspend", "deactivate"],
)
async def test_suspend_and_deactivate_list_the_accounts_they_deactivate(demo, keys, title, state):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("alovelace")
        await settle(pilot)
        await press(pilot, *keys)
        assert title in screen_text(app) and dialog_text(app).endswith("Accounts deactivated: GitHub, Slack")
        await press(pilot, "y")
        assert demo.user_view("alovelace")["state"] == state
        assert banner_text(app) == f"alovelace {state.replace('deprovisioned', 'deactivated')} · − GitHub, Slack — provisioning below"


async def test_a_confirmation_says_when_no_account_is_deactivated(demo):
    demo.create_user("newbie", "newbie@example.com", "New", "Bie")  # staged: no account anywhere
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_user("newbie")
        await settle(pilot)
        await press(pilot, "c", "=deprov", "enter")
        assert dialog_text(app).endswith("No account is deactivated: newbie is staged.")


# -- the banner -------------------------------------------------------------------------------------------


async def move_ghopper(pilot, app) -> None:
    app.open_user("ghopper")
    await settle(pilot)
    await press(pilot, "m", "tab", "=eng", "enter", "y")  # leave finance (offered first), join engineering
    assert banner_text(app).startswith("Moved from finance to engineering")


async def test_the_banner_goes_at_the_next_action_and_stays_over_help_and_the_palette(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await move_ghopper(pilot, app)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await press(pilot, "escape")
        await press(pilot, "ctrl+p")
        await press(pilot, "escape")
        assert banner_text(app) is not None  # looking is not acting
        await press(pilot, "n")  # the next action: its dialog opens, the banner goes
        assert isinstance(app.screen, PickModal)
        await press(pilot, "escape")
        assert isinstance(app.screen, UserDetailScreen) and banner_text(app) is None


async def test_the_banner_goes_with_a_change_made_without_a_dialog(demo):
    demo.change_state("ghopper", "suspend")
    demo.change_state("ghopper", "unsuspend")
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await move_ghopper(pilot, app)
        await press(pilot, "s", "y")  # suspended: a change of its own, with its own banner
        assert banner_text(app).startswith("ghopper suspended")
        await press(pilot, "s")  # unsuspend: no dialog, and the banner about the suspension goes
        assert demo.user_view("ghopper")["state"] == "active"
        assert banner_text(app) is None


async def test_the_banner_goes_when_the_page_is_left(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await move_ghopper(pilot, app)
        app.open_group("engineering")  # the palette's way to a group, over the page
        await settle(pilot)
        await press(pilot, "escape")
        assert isinstance(app.screen, UserDetailScreen) and banner_text(app) is None


# -- snapshots --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_person_page_with_a_direct_app(snap_compare, lived, size):
    assert snap(snap_compare, lived, size, user="mhamilton")  # x Unassign in the footer


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_unassign_confirmation(snap_compare, lived, size):
    assert snap(snap_compare, lived, size, "x", user="mhamilton")


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_deactivate_confirmation(snap_compare, lived, size):
    assert snap(snap_compare, lived, size, "c", "=deprov", "enter", user="ghopper")
