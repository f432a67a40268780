"""The console shows values from outside escaped (issue #14): an escape sequence in a first name from an
LDAP or SCIM app never reaches the terminal, and a newline in it never draws a line that is not there.

Read from the screen as drawn: the text a person would read (``screen_text``) and the bytes the
terminal would be sent (the compositor's full update, as Textual's driver writes it).
"""

from __future__ import annotations

import pytest
from textual.app import App
from textual.content import Content
from textual.widgets import Static

from provtui.model.schema import GROUPS, USERS
from provtui.service import Service
from provtui.tui.app import build_app
from provtui.tui.screens.group_detail import GroupDetailScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from provtui.tui.text import ControlFilter
from tests.helpers.console import screen_text, settle

CLEAR = "\x1b[2J"  # clears the screen
TITLE = "\x1b]0;pwned\x07"  # retitles the terminal
CSI = "\x9b"  # C1: a one-character CSI


def terminal_bytes(app: App) -> str:
    """What the terminal would be sent to draw the whole screen now."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    return "".join(update.render_segments(app.console))


def assert_harmless(app: App) -> str:
    sent = terminal_bytes(app)
    assert CLEAR not in sent and "\x1b]0;" not in sent and "\x07" not in sent and CSI not in sent
    assert "\x85" not in sent and "\x7f" not in sent
    text = screen_text(app)
    assert not any(line.strip(" │┃▏▕|").startswith(("groups: admins", "fake: row")) for line in text.splitlines()), text
    return text


@pytest.fixture
def hostile(tmp_path) -> Service:
    service = Service.init(tmp_path / "store", actor="admin")
    now = "2026-01-01T00:00:00+00:00"
    with service.store.transaction() as tx:  # as an LDAP import or an app writes them: kept as they came
        profile = {
            "login": "ada",
            "email": "ada@example.com",
            "firstName": f"Ada{CLEAR}",
            "lastName": "Lovelace\ngroups: admins",
            "displayName": f"Ada{CLEAR}{TITLE} Lovelace\ngroups: admins",
            "title": f"T{CSI}31m",
            "department": "R&D\x85",
        }
        tx.put(
            USERS,
            "u-ada",
            {
                "id": "u-ada",
                "login": "ada",
                "state": "active",
                "source": "provtui",
                "profile": profile,
                "created": now,
                "state_changed": now,
            },
        )
        tx.put(
            GROUPS,
            "g-staff",
            {"id": "g-staff", "name": "staff", "description": f"staff{CLEAR}\nfake: row", "kind": "provtui", "created": now},
        )
    return service


async def test_the_directory_and_the_user_page_show_them_escaped(hostile):
    app = build_app(hostile, label="hostile")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = assert_harmless(app)
        assert "Ada\\x1b[2J" in text  # the table and the detail pane: escaped, as the CLI shows them
        assert "Lovelace\\ngroups: admins" in text and "T\\x9b31m" in text
        app.open_user("ada")
        await settle(pilot)
        assert isinstance(app.screen, UserDetailScreen)
        text = assert_harmless(app)
        assert "Ada\\x1b[2J\\x1b]0;pwned\\x07 Lovelace\\ngroups: admins" in text and "R&D\\x85" in text


async def test_a_group_description_is_shown_escaped(hostile):
    app = build_app(hostile, label="hostile")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        app.open_group("staff")
        await settle(pilot)
        assert isinstance(app.screen, GroupDetailScreen)
        assert "staff\\x1b[2J\\nfake: row" in assert_harmless(app)


async def test_a_value_a_screen_forgot_to_escape_still_never_reaches_the_terminal(hostile):
    """The line filter behind ``shown``: a control character left in a rendered line is dropped."""
    app = build_app(hostile, label="hostile")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await app.screen.mount(Static(Content(f"raw{CLEAR}{TITLE}{CSI}1m end")))
        await settle(pilot)
        sent = terminal_bytes(app)
        assert "raw[2J]0;pwned1m end" in sent  # what is left of the sequences is plain text, harmless
        assert CLEAR not in sent and "\x1b]0;" not in sent and CSI not in sent


def test_the_filter_keeps_widths():
    from rich.segment import Segment
    from textual.color import Color

    segments = [Segment("ab\x1b[2Jc"), Segment(" ", None), Segment("\x9bd")]
    filtered = ControlFilter().apply(segments, Color(0, 0, 0))
    assert [s.text for s in filtered] == ["ab[2Jc", " ", "d"]
    assert sum(s.cell_length for s in filtered) == sum(s.cell_length for s in segments)
    plain = [Segment("plain")]
    assert ControlFilter().apply(plain, Color(0, 0, 0)) is plain
