"""The audit log re-entered after a change shows it at once (never the rows it left), and its filter by
person lists the person's group events (the service's ``about``, the CLI's ``--about``)."""

from __future__ import annotations

import threading

import pytest

from provtui.service import Service
from provtui.tui.app import build_app
from provtui.tui.screens import audit as audit_screen
from provtui.tui.screens.audit import AuditScreen
from provtui.tui.widgets.row_table import RowTable
from tests.helpers.console import NARROW, WIDE, press, screen_text, settle, snap


def _table(app) -> RowTable:
    return app.screen.query_one("#events", RowTable)


async def test_re_entered_after_a_change_it_shows_no_stale_rows_then_the_change(demo, monkeypatch):
    read_may_finish = threading.Event()
    page = audit_screen.audit_page

    def held_page(*args, **kwargs):  # as a read waiting behind the engine or a long scan would
        read_may_finish.wait(10)
        return page(*args, **kwargs)

    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "l")
        left_on = _table(app).rows[0]
        assert left_on["action"] == "app.assign" and left_on["action"] in screen_text(app)
        await press(pilot, "u")
        # another admin's CLI commits while this console shows the users (no poll has seen it yet)
        Service.open(demo.location, actor="admin").create_group("contractors")
        monkeypatch.setattr(audit_screen, "audit_page", held_page)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, AuditScreen) and not _table(app).rows
        shown = screen_text(app)
        assert "Reading the audit trail…" in shown and "app.assign" not in shown  # not the rows it left
        read_may_finish.set()
        await settle(pilot)
        assert (_table(app).rows[0]["action"], _table(app).rows[0]["target"]) == ("group.create", "contractors")
        assert "contractors" in screen_text(app)


async def test_re_entered_the_cursor_is_back_on_the_event_it_was_on(demo):
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "l", *["down"] * 20)
        before, reading = list(_table(app).rows), _table(app).highlighted_row
        await press(pilot, "g", "l")
        assert list(_table(app).rows) == before and _table(app).highlighted_row == reading
        await press(pilot, "question_mark", "escape")  # help over it, closed
        assert isinstance(app.screen, AuditScreen) and _table(app).highlighted_row == reading
        assert _table(app).highlighted_row["target"] in screen_text(app)


async def test_filter_by_person_lists_their_group_events(demo, monkeypatch):
    monkeypatch.setattr(audit_screen, "FILTER_DEBOUNCE", 0)
    app = build_app(demo, label="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "l", "slash", "=ghopper")
        shown = [(r["action"], r["target"]) for r in _table(app).rows]  # newest first
        assert shown == [("group.add-member", "finance"), ("group.add-member", "all-staff"), ("user.create", "ghopper")]
        assert "finance" in screen_text(app) and "events 1–3" in screen_text(app)
        demo.remove_members("finance", ["ghopper"])
        app.store_changed()
        await settle(pilot)
        assert [(r["action"], r["target"]) for r in _table(app).rows][0] == ("group.remove-member", "finance")


@pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])
def test_filtered_by_person_snapshot(snap_compare, demo, size):
    assert snap(snap_compare, demo, size, "l", "slash", "=ghopper")
