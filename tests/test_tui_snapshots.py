"""Snapshots of the directory screen over the seeded demo store (frozen clock, fixed size)."""

from __future__ import annotations

from textual.widgets import Input
from tui_helpers import demo, frozen_clock, settle  # noqa: F401  (fixtures)

from provtui.tui.app import build_app


async def _ready(pilot) -> None:
    for field in pilot.app.query(Input):
        field.cursor_blink = False
    await settle(pilot)


def test_directory_80x24(snap_compare, demo):
    assert snap_compare(build_app(demo, label="demo"), terminal_size=(80, 24), run_before=_ready)


def test_directory_120x40(snap_compare, demo):
    assert snap_compare(build_app(demo, label="demo"), terminal_size=(120, 40), run_before=_ready)


def test_directory_search(snap_compare, demo):
    async def search(pilot) -> None:
        await _ready(pilot)
        await pilot.press("slash", *"hopper")
        await settle(pilot)

    assert snap_compare(build_app(demo, label="demo"), terminal_size=(120, 40), run_before=search)


def test_help(snap_compare, demo):
    async def help(pilot) -> None:
        await _ready(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(build_app(demo, label="demo"), terminal_size=(80, 24), run_before=help)
