"""Snapshots of every screen, at 80x24 (and 120x40 for the main ones), over fixture stores.

Deterministic: the clock is frozen, ids are never shown (and made sequential in the
provisioned store, so the engine's order is fixed), cursors do not blink, and every
worker has finished before the picture is taken.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input
from tui_helpers import FROZEN_TIME, demo, frozen_clock, lived_in_service, settle  # noqa: F401  (fixtures)

from provtui.tui.app import build_app

NARROW, WIDE = (80, 24), (120, 40)


@pytest.fixture(scope="module")
def lived(tmp_path_factory):
    """The demo after a provisioning run against fake apps: failures, a quarantine, tasks (read-only: shared)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROVTUI_FROZEN_TIME", FROZEN_TIME)
        yield lived_in_service(tmp_path_factory.mktemp("lived") / "store", patch)


def keys(*pressed: str, user: str | None = None, group: str | None = None, app: str | None = None):
    """A run_before: open a user, group or app page if asked (as enter on it would), then press keys
    ("=text" types the text), settling after each; then every cursor stops blinking."""
    async def run(pilot) -> None:
        await settle(pilot)
        if user:
            pilot.app.open_user(user)
        if group:
            pilot.app.open_group(group)
        if app:
            pilot.app.open_app(app)
        await settle(pilot)
        for key in pressed:
            if key.startswith("="):  # typed into the focused field at once
                pilot.app.focused.insert_text_at_cursor(key[1:])
            else:
                await pilot.press(key)
            await settle(pilot)
        for screen in pilot.app.screen_stack:
            for field in screen.query(Input):
                field.cursor_blink = False
        await settle(pilot)

    return run


def snap(snap_compare, service, size, *pressed: str, **page: str) -> bool:
    return snap_compare(build_app(service, label="demo"), terminal_size=size, run_before=keys(*pressed, **page))


# -- directory (the start screen) and help ------------------------------------------------------


def test_directory_80x24(snap_compare, demo):
    assert snap(snap_compare, demo, NARROW)


def test_directory_120x40(snap_compare, demo):
    assert snap(snap_compare, demo, WIDE)


def test_directory_search(snap_compare, demo):
    assert snap(snap_compare, demo, WIDE, "slash", "=hopper")


def test_help(snap_compare, demo):
    assert snap(snap_compare, demo, NARROW, "question_mark")


# -- dashboard -----------------------------------------------------------------------------------


def test_dashboard_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, "d")


def test_dashboard_120x40(snap_compare, lived):
    assert snap(snap_compare, lived, WIDE, "d")


# -- a user ----------------------------------------------------------------------------------------


def test_user_detail_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, user="alovelace")


def test_user_detail_120x40(snap_compare, lived):
    assert snap(snap_compare, lived, WIDE, user="alovelace")


def test_move_group_dialog(snap_compare, demo):
    assert snap(snap_compare, demo, NARROW, "m", "down", user="ghopper")


# -- groups, apps ------------------------------------------------------------------------------------


def test_groups_80x24(snap_compare, demo):
    assert snap(snap_compare, demo, NARROW, "g")


def test_group_detail_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, group="engineering")


def test_apps_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, "a")


def test_app_detail_quarantined_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, app="Slack")


def test_app_detail_payload_preview_120x40(snap_compare, lived):
    assert snap(snap_compare, lived, WIDE, "v", "=nwirth", "enter", "end", app="GitHub")


# -- activity, tasks, audit, reports --------------------------------------------------------------------


def test_activity_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, "y")


def test_tasks_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, "t")


def test_audit_80x24(snap_compare, demo):  # (not after an engine run: one commit's results come in any order)
    assert snap(snap_compare, demo, NARROW, "l")


def test_reports_80x24(snap_compare, lived):
    assert snap(snap_compare, lived, NARROW, "r")
