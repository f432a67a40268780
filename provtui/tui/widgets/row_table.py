"""A virtual table of dict rows: draws only the rows in view, so 100,000 rows cost nothing to show.

Used for users (``UserTable``), apps, accounts, audit events and report rows: columns are declared with a minimum and maximum width and
a priority (which columns survive a narrow terminal), cells may take a tone
(good, warn, bad, muted, accent) from the row, and the cursor stays on the same
row (by key) when the rows are replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from provtui.tui.text import shown

TONES = ("good", "warn", "bad", "muted", "accent", "info", "gone")
GAP = 1


def fit(text: str, width: int) -> str:
    """``text`` padded or cut to ``width`` cells (not characters: names may be wide), with an ellipsis when cut."""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…" if width > 0 else ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    min: int = 6
    max: int = 20
    priority: int = 0  # lower survives longer when the table narrows (0 = always kept first)
    format: Callable[[Any], str] = _text
    tone: Callable[[dict], str | None] | None = None  # the cell's tone, from the whole row
    right: bool = False  # numbers: right-aligned


def fit_columns(columns: Sequence[Col], width: int) -> list[tuple[Col, int]]:
    """The columns that fit in ``width`` cells (by priority), in display order, each with its width."""
    chosen: set[int] = set()
    used = 0
    for index in sorted(range(len(columns)), key=lambda i: (columns[i].priority, i)):
        column = columns[index]
        if used + GAP + column.min <= width or not chosen:
            chosen.add(index)
            used += GAP + column.min
    shown = [c for i, c in enumerate(columns) if i in chosen]
    if not shown:
        return []
    spare = max(0, width - used)
    widths = []
    for column in shown:
        grow = min(spare, column.max - column.min)
        widths.append(column.min + grow)
        spare -= grow
    widths[-1] += spare
    return list(zip(shown, widths, strict=False))


def tone_by(key: str, tones: dict[str, str]) -> Callable[[dict], str | None]:
    """A tone function: the tone named for the row's value of ``key``."""
    return lambda row: tones.get(str(row.get(key)))


class RowTable(ScrollView, can_focus=True):
    """Rows of dicts under a header line; ``row_key`` names a row across refreshes."""

    BINDINGS = [
        Binding("up", "cursor_up", "Previous", id="row_table.cursor_up", show=False),
        Binding("down", "cursor_down", "Next", id="row_table.cursor_down", show=False),
        Binding("pageup", "page_up", "Page up", id="row_table.page_up", show=False),
        Binding("pagedown", "page_down", "Page down", id="row_table.page_down", show=False),
        Binding("home", "first", "First", id="row_table.first", show=False),
        Binding("end", "last", "Last", id="row_table.last", show=False),
        Binding("enter", "select", "Open", id="row_table.select", show=False),
    ]

    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor", "row-table--empty", *(f"row-table--{tone}" for tone in TONES)}

    DEFAULT_CSS = """
    RowTable {
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
        background: $surface;
        height: 1fr;
        & > .row-table--header { text-style: bold; color: $foreground; background: $panel; }
        & > .row-table--cursor { background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground; }
        &:focus > .row-table--cursor {
            background: $block-cursor-background; color: $block-cursor-foreground; text-style: $block-cursor-text-style;
        }
        & > .row-table--empty { color: $text-muted; text-style: italic; }
        & > .row-table--good { color: $text-success; }
        & > .row-table--warn { color: $text-warning; }
        & > .row-table--bad { color: $text-error; }
        & > .row-table--muted { color: $text-muted; }
        & > .row-table--accent { color: $text-accent; }
        & > .row-table--info { color: $text-primary; }
        & > .row-table--gone { color: $text-muted; text-style: strike; }
    }
    """

    class _RowMessage(Message):
        def __init__(self, table: RowTable, row: dict) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> RowTable:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor moved to another row."""

    class RowSelected(_RowMessage):
        """Enter (or a double click) on a row."""

    def __init__(
        self,
        columns: Sequence[Col],
        *,
        row_key: Callable[[dict], Any] | None = None,
        empty: str = "Nothing to show",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.columns = list(columns)
        self.row_key = row_key or (lambda row: id_of(row))
        self.empty = empty
        self._rows: Sequence[dict] = ()
        self.cursor = 0
        self._highlighted: Any = None
        self._layout: tuple[int, list[tuple[Col, int]]] | None = None

    # -- data ------------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[dict]:
        return self._rows

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def highlighted_row(self) -> dict | None:
        return self._rows[self.cursor] if self._rows else None

    @property
    def highlighted(self) -> Any:
        """What the cursor is on (here the row; a subclass may answer with its key)."""
        return self.highlighted_row

    def _highlight_message(self, row: dict) -> Message:
        return self.RowHighlighted(self, row)

    def _select_message(self, row: dict) -> Message:
        return self.RowSelected(self, row)

    def set_rows(self, rows: Sequence[dict], *, empty: str | None = None) -> None:
        """Show ``rows``; the cursor stays on the same row (by ``row_key``) if it is still there."""
        current = self.highlighted_row
        current_key = self.row_key(current) if current is not None else None
        self._rows = rows
        if empty is not None:
            self.empty = empty
        self.virtual_size = Size(0, len(rows) + 1)
        index = None
        if current_key is not None:
            if self.cursor < len(rows) and self.row_key(rows[self.cursor]) == current_key:
                index = self.cursor  # where it was (a refresh, a search that keeps the top rows): no scan of 50,000 rows
            else:
                index = next((i for i, row in enumerate(rows) if self.row_key(row) == current_key), None)
        self._highlighted = current_key if index is not None else object()  # a fresh row is announced
        self.move_cursor(index if index is not None else 0, center=index is not None)
        self.refresh()

    def set_columns(self, columns: Sequence[Col]) -> None:
        self.columns = list(columns)
        self._layout = None
        self.refresh()

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
        row_now = self.highlighted_row
        key = self.row_key(row_now) if row_now is not None else None
        if row_now is not None and key != self._highlighted:
            self._highlighted = key
            self.post_message(self._highlight_message(row_now))

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
        if self.highlighted_row is not None:
            self.post_message(self._select_message(self.highlighted_row))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        row = round(self.scroll_y) + offset.y - 1
        if row < len(self._rows):
            self.move_cursor(row)
            if event.chain == 2:
                self.action_select()

    # -- rendering -------------------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[Col, int]]:
        if self._layout is None or self._layout[0] != width:
            self._layout = (width, fit_columns(self.columns, width))
        return self._layout[1]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        columns = self._columns(width)
        if y == 0:
            style = base + self.get_component_rich_style("row-table--header")
            return self._strip([(c.label, w, style, c.right) for c, w in columns], width, style)
        index = round(self.scroll_y) + y - 1
        if index >= len(self._rows):
            if index == 0:
                style = base + self.get_component_rich_style("row-table--empty")
                return self._strip([(self.empty, width - GAP, style, False)], width, base)
            return Strip.blank(width, base)
        row = self._rows[index]
        on_cursor = index == self.cursor
        style = base + self.get_component_rich_style("row-table--cursor") if on_cursor else base
        cells = []
        for column, cell_width in columns:
            cell_style = style
            if column.tone is not None and not on_cursor:
                tone = column.tone(row)
                if tone:
                    cell_style = style + self.get_component_rich_style(f"row-table--{tone}", default=Style())
            cells.append((column.format(row.get(column.key)), cell_width, cell_style, column.right))
        return self._strip(cells, width, style)

    @staticmethod
    def _strip(cells: list[tuple[str, int, Style, bool]], width: int, style: Style) -> Strip:
        segments = []
        for text, cell_width, cell_style, right in cells:
            segments.append(Segment(" " * GAP, style))
            text = shown(text)  # a value from outside may hold ESC or a newline: shown as \x1b, \n
            if right and len(text) < cell_width:
                text = text.rjust(cell_width)
            segments.append(Segment(fit(text, cell_width), cell_style))
        return Strip(segments).adjust_cell_length(width, style)


def id_of(row: dict | None) -> Any:
    if row is None:
        return None
    return tuple(sorted((k, str(v)) for k, v in row.items()))
