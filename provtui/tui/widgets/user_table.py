"""A virtual table of user summaries: renders only the visible rows, so 50,000+ users stay fast.

A stock DataTable builds every row up front (100,000 rows block the loop ~12 s);
this widget keeps the list it is given and draws the rows in view with the Line API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from provtui.domain.lifecycle import State


@dataclass(frozen=True)
class Column:
    key: str  # field of the user summary
    label: str
    min: int  # narrowest useful width
    max: int  # width it grows to before spare space goes to the last column


# Display order.  KEEP lists which columns survive as the width shrinks, most important first.
COLUMNS = (
    Column("login", "Login", 8, 12),
    Column("displayName", "Name", 10, 18),
    Column("state", "State", 13, 13),
    Column("department", "Department", 10, 12),
    Column("email", "Email", 14, 30),
)
KEEP = ("login", "state", "displayName", "email", "department")
GAP = 1  # spaces before each cell


@lru_cache(maxsize=16)
def layout(width: int) -> tuple[tuple[Column, int], ...]:
    """The columns that fit in ``width`` cells, each with its width."""
    by_key = {c.key: c for c in COLUMNS}
    chosen: set[str] = set()
    used = 0
    for key in KEEP:
        if used + GAP + by_key[key].min <= width or not chosen:
            chosen.add(key)
            used += GAP + by_key[key].min
    shown = [c for c in COLUMNS if c.key in chosen]
    # Spare width fills columns left to right up to their max; the last column takes what is left.
    spare = max(0, width - used)
    widths = []
    for column in shown:
        grow = min(spare, column.max - column.min)
        widths.append(column.min + grow)
        spare -= grow
    widths[-1] += spare
    return tuple(zip(shown, widths))


def fit(text: str, width: int) -> str:
    """``text`` padded or cut to ``width`` cells (not characters: names may be wide), with an ellipsis when cut."""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…" if width > 0 else ""


class UserTable(ScrollView, can_focus=True):
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

    COMPONENT_CLASSES = {
        "user-table--header",
        "user-table--cursor",
        "user-table--empty",
        *(f"user-table--state-{state}" for state in State),
    }

    DEFAULT_CSS = """
    UserTable {
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
        background: $surface;
        & > .user-table--header { text-style: bold; color: $foreground; background: $panel; }
        & > .user-table--cursor { background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground; }
        &:focus > .user-table--cursor {
            background: $block-cursor-background; color: $block-cursor-foreground; text-style: $block-cursor-text-style;
        }
        & > .user-table--empty { color: $text-muted; text-style: italic; }
        & > .user-table--state-active { color: $text-success; }
        & > .user-table--state-staged { color: $text-primary; }
        & > .user-table--state-suspended { color: $text-warning; }
        & > .user-table--state-deprovisioned { color: $text-error; }
        & > .user-table--state-deleted { color: $text-muted; text-style: strike; }
    }
    """

    class UserHighlighted(Message):
        """The cursor moved to another user."""

        def __init__(self, table: UserTable, login: str) -> None:
            super().__init__()
            self.table = table
            self.login = login

        @property
        def control(self) -> UserTable:
            return self.table

    class UserSelected(Message):
        """Enter was pressed on a user."""

        def __init__(self, table: UserTable, login: str) -> None:
            super().__init__()
            self.table = table
            self.login = login

        @property
        def control(self) -> UserTable:
            return self.table

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: Sequence[dict] = ()
        self.cursor = 0
        self._highlighted: str | None = None

    # -- data ------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def highlighted(self) -> str | None:
        """Login under the cursor, or None when there are no rows."""
        return self._rows[self.cursor]["login"] if self._rows else None

    def set_rows(self, rows: Sequence[dict]) -> None:
        """Show ``rows``; the cursor stays on the same user if it is still there."""
        current = self.highlighted
        self._rows = rows
        self.virtual_size = Size(0, len(rows) + 1)  # +1: the header line
        index = next((i for i, row in enumerate(rows) if row["login"] == current), None) if current else None
        self.move_cursor(index if index is not None else 0, center=index is not None)

    # -- cursor ----------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.size.height - 1)

    def move_cursor(self, row: int, *, center: bool = False) -> None:
        self.cursor = max(0, min(row, len(self._rows) - 1))
        top = round(self.scroll_y)
        if center and not top <= self.cursor < top + self._page:
            self.scroll_to(y=self.cursor - self._page // 2, animate=False)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + self._page:
            self.scroll_to(y=self.cursor - self._page + 1, animate=False)
        self.refresh()
        login = self.highlighted
        if login != self._highlighted:
            self._highlighted = login
            if login is not None:
                self.post_message(self.UserHighlighted(self, login))

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self._page)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_select(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.UserSelected(self, self.highlighted))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:  # outside the rows, or on the header
            return
        row = round(self.scroll_y) + offset.y - 1
        if row < len(self._rows):
            self.move_cursor(row)
            if event.chain == 2:
                self.action_select()

    # -- rendering -------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width  # size.width includes the scrollbar
        base = self.rich_style
        columns = layout(width)
        if y == 0:
            style = base + self.get_component_rich_style("user-table--header")
            return self._strip([(c.label, w, style) for c, w in columns], width, style)
        row = round(self.scroll_y) + y - 1
        if row >= len(self._rows):
            if row == 0:
                style = base + self.get_component_rich_style("user-table--empty")
                return self._strip([("No users match", width - GAP, style)], width, base)
            return Strip.blank(width, base)
        user = self._rows[row]
        style = base + self.get_component_rich_style("user-table--cursor") if row == self.cursor else base
        cells = []
        for column, cell_width in columns:
            cell_style = style
            if column.key == "state" and row != self.cursor:
                cell_style = style + self.get_component_rich_style(f"user-table--state-{user['state']}", default=Style())
            cells.append((str(user.get(column.key) or ""), cell_width, cell_style))
        return self._strip(cells, width, style)

    @staticmethod
    def _strip(cells: list[tuple[str, int, Style]], width: int, style: Style) -> Strip:
        segments = []
        for text, cell_width, cell_style in cells:
            segments.append(Segment(" " * GAP, style))
            segments.append(Segment(fit(text, cell_width), cell_style))
        return Strip(segments).adjust_cell_length(width, style)
