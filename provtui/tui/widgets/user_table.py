"""The users table: a RowTable of user summaries, keyed by login, coloured by state, with a selection.

Like every RowTable it renders only the visible rows, so 50,000+ users stay fast
(a stock DataTable builds every row up front: 100,000 rows block the loop ~12 s).
The selection (for bulk changes) is a set of logins, so it outlives scrolling and a new search; a selected
row is marked in the table's left margin, where nothing moves when the first person is selected.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from rich.segment import Segment
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from provtui.domain.lifecycle import State
from provtui.tui.widgets.row_table import Col, RowTable, fit_columns, tone_by

MARK = "✓"  # in the margin left of a selected row
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
        self.selected: dict[str, None] = {}  # logins, in the order chosen (a dict: ordered, each once)

    # -- the selection ---------------------------------------------------------------

    def toggle_selected(self, login: str) -> None:
        if self.selected.pop(login, ...) is ...:
            self.selected[login] = None
        self.refresh()

    def select_logins(self, logins: Iterable[str]) -> None:
        self.selected.update(dict.fromkeys(logins))
        self.refresh()

    def unselect(self, logins: Iterable[str] | None = None) -> None:
        """Unselect ``logins``; everyone when None."""
        if logins is None:
            self.selected.clear()
        else:
            for login in logins:
                self.selected.pop(login, None)
        self.refresh()

    def selected_shown(self) -> int:
        """How many of the rows shown are selected (the rest of the selection is hidden by the search)."""
        if not self.selected:
            return 0
        return sum(1 for row in self.rows if row["login"] in self.selected)

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        index = round(self.scroll_y) + y - 1
        if y == 0 or not self.selected or index >= self.row_count or self.rows[index]["login"] not in self.selected:
            return strip
        tone = "row-table--cursor" if index == self.cursor else "row-table--accent"  # the cursor's colours on its row
        return Strip([Segment(MARK, self.rich_style + self.get_component_rich_style(tone)), *strip.crop(1)], strip.cell_length)

    @property
    def highlighted(self) -> str | None:
        """Login under the cursor, or None when there are no rows."""
        row = self.highlighted_row
        return row["login"] if row is not None else None

    def _highlight_message(self, row: dict) -> Message:
        return self.UserHighlighted(self, row["login"])

    def _select_message(self, row: dict) -> Message:
        return self.UserSelected(self, row["login"])
