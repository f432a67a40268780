"""The users table: a RowTable of user summaries, keyed by login, coloured by state.

Like every RowTable it renders only the visible rows, so 50,000+ users stay fast
(a stock DataTable builds every row up front: 100,000 rows block the loop ~12 s).
"""

from __future__ import annotations

from functools import lru_cache

from textual.binding import Binding
from textual.message import Message

from provtui.domain.lifecycle import State
from provtui.tui.widgets.row_table import Col, RowTable, fit_columns, tone_by

STATE_TONES = {State.ACTIVE: "good", State.STAGED: "info", State.SUSPENDED: "warn", State.DEPROVISIONED: "bad", State.DELETED: "gone"}

# Display order; priority says which columns survive as the width shrinks (lowest last to go).
COLUMNS = (
    Col("login", "Login", 8, 12, priority=0),
    Col("displayName", "Name", 10, 18, priority=2),
    Col("state", "State", 13, 13, priority=1, tone=tone_by("state", {s.value: t for s, t in STATE_TONES.items()})),
    Col("department", "Department", 10, 12, priority=4),
    Col("email", "Email", 14, 30, priority=3),
)


@lru_cache(maxsize=16)
def layout(width: int) -> tuple[tuple[Col, int], ...]:
    """The user columns that fit in ``width`` cells, each with its width."""
    return tuple(fit_columns(COLUMNS, width))


class UserTable(RowTable):
    """Rows of user summaries (dicts with login, displayName, state, department, email)."""

    BINDINGS = [
        Binding("up", "cursor_up", "Previous user", id="user_table.cursor_up", show=False),
        Binding("down", "cursor_down", "Next user", id="user_table.cursor_down", show=False),
        Binding("pageup", "page_up", "Page up", id="user_table.page_up", show=False),
        Binding("pagedown", "page_down", "Page down", id="user_table.page_down", show=False),
        Binding("home", "first", "First user", id="user_table.first", show=False),
        Binding("end", "last", "Last user", id="user_table.last", show=False),
        Binding("enter", "select", "Open", id="user_table.select"),
    ]

    class _UserMessage(Message):
        def __init__(self, table: UserTable, login: str) -> None:
            super().__init__()
            self.table = table
            self.login = login

        @property
        def control(self) -> UserTable:
            return self.table

    class UserHighlighted(_UserMessage):
        """The cursor moved to another user."""

    class UserSelected(_UserMessage):
        """Enter was pressed on a user."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(COLUMNS, row_key=lambda row: row["login"], empty="No users match", name=name, id=id, classes=classes)

    @property
    def highlighted(self) -> str | None:
        """Login under the cursor, or None when there are no rows."""
        row = self.highlighted_row
        return row["login"] if row is not None else None

    def _highlight_message(self, row: dict) -> Message:
        return self.UserHighlighted(self, row["login"])

    def _select_message(self, row: dict) -> Message:
        return self.UserSelected(self, row["login"])
