"""The footer at 80 columns (#18): a binding with ``show=True`` is a priority action, and every one a screen
can show is in the footer, whole, within 80 columns; the rest (``show=False``) are behind ``?`` and the
palette.  Checked on the rendered footer (Textual's FooterKey widgets and their regions) of every screen,
and, for the keys that depend on the state (Suspend or Unsuspend, Retry, Resume...), on each screen's worst
case: all its priority actions at once."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from provtui.tui.app import SCREENS, ProvtuiApp, build_app, screen_class
from provtui.tui.screens.apps import AppDetailScreen
from provtui.tui.screens.group_detail import GroupDetailScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from tests.helpers.console import FROZEN_TIME, keys, lived_in_service

WIDTH = 80

# name -> (keys, page to open): every screen, and the states that show the most keys
STATES = {
    "directory": ((), {}),
    "directory, searching": (("slash",), {}),
    "dashboard": (("d",), {}),
    "person: a direct app, a failed account": ((), {"user": "mhamilton"}),
    "person: suspended": ((), {"user": "kthompson"}),
    "groups": (("g",), {}),
    "group": ((), {"group": "engineering"}),
    "apps": (("a",), {}),
    "app: quarantined, failed accounts": ((), {"app": "Slack"}),
    "activity": (("y",), {}),
    "tasks": (("t",), {}),
    "audit": (("l",), {}),
    "reports": (("r",), {}),
    "rules": (("o",), {}),
}  # dialogs (help, confirmations) have no footer: their keys are on their buttons and borders
# What the helpdesk uses most on a person's page: all of it in the footer at once
PERSON_PRIORITY = {"move", "assign", "unassign", "lifecycle('suspend')", "retry", "choose_lifecycle"}


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """The demo after a provisioning run: failures, a quarantined app, a suspended person (read-only: shared)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROVTUI_FROZEN_TIME", FROZEN_TIME)
        yield lived_in_service(tmp_path_factory.mktemp("lived") / "store", patch)


def footer_keys(app) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


def visible(key: FooterKey) -> bool:
    """Drawn whole within the terminal's 80 columns."""
    return key.region.width > 0 and key.region.x >= 0 and key.region.right <= WIDTH


@pytest.mark.parametrize("state", STATES)
async def test_every_priority_action_a_screen_shows_fits_80_columns(lived, state):
    pressed, page = STATES[state]
    app = build_app(lived, label="demo")
    async with app.run_test(size=(WIDTH, 24)) as pilot:
        await keys(*pressed, **page)(pilot)
        priority = {binding.action for _, binding, _, _ in app.screen.active_bindings.values() if binding.show}
        shown = {key.action for key in footer_keys(app) if visible(key)}
        assert priority, f"{state}: no action in the footer"
        assert priority <= shown, f"{state}: {sorted(priority - shown)} cut off at {WIDTH} columns"
        if page.get("user") == "mhamilton" and not pressed:
            assert PERSON_PRIORITY <= shown


def worst_case_width(app: ProvtuiApp, screen: type, padding: int) -> int:
    """The footer's width with every priority action of ``screen`` (one a key: the widest) and of the app."""
    widest: dict[str, int] = {}
    for binding in [*ProvtuiApp.BINDINGS, *screen.BINDINGS]:
        if isinstance(binding, tuple) or not binding.show:
            continue
        cost = len(app.get_key_display(binding)) + len(binding.description) + padding
        widest[binding.key] = max(widest.get(binding.key, 0), cost)
    return sum(widest.values())


async def test_no_screen_has_more_priority_actions_than_80_columns_hold(lived):
    app = build_app(lived, label="demo")
    async with app.run_test(size=(WIDTH, 24)) as pilot:
        await keys(user="mhamilton")(pilot)
        sample = footer_keys(app)[0]
        padding = sample.region.width - len(sample.key_display) - len(sample.description)  # what the stylesheet adds a key
        screens = {*(screen_class(mode) for mode in SCREENS), UserDetailScreen, GroupDetailScreen, AppDetailScreen}
        too_wide = {s.__name__: w for s in screens if (w := worst_case_width(app, s, padding)) > WIDTH}
        assert not too_wide, f"footers wider than {WIDTH} columns with all their priority actions: {too_wide}"
