"""Reports: pick one, see its rows.

Reports are bounded by the directory's size, but at 50,000 users the access
report has a row per (user, app): the screen shows it a page (``PAGE`` rows) at
a time, drawing only the rows in view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Label, Select, Static

from provtui.service.reports import NAMES
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.user_detail import short_time
from provtui.tui.widgets.row_table import Col, RowTable

if TYPE_CHECKING:
    from provtui.service import Service

PAGE = 5_000
DESCRIPTIONS = {
    "apps": "Per app: users entitled, accounts active, deactivated and failed, against licenses",
    "access": "Who has what and why: one row per user and app",
    "pending": "Deprovisions not done yet (the dashboard's count): open deprovision tasks, and accounts still active",
    "failures": "Accounts whose last provisioning failed, with the server's message",
    "orphans": "Accounts found in apps that match nobody here",
    "stale": "Accounts deactivated, and users deprovisioned, more than 90 days ago",
    "changes": "The newest 50 changes (downstream calls left out)",
}
TIME_COLUMNS = {"since", "last_sync", "seen", "time"}
WIDTHS = {
    "user": (8, 14),
    "app": (6, 14),
    "last_error": (12, 60),
    "via": (8, 30),
    "email": (12, 30),
    "before": (8, 30),
    "after": (8, 40),
    "correlation": (12, 12),
}
TONES = {
    "failed": "bad",
    "active": "good",
    "pending": "info",
    "deactivated": "warn",
    "task-open": "warn",
    "queued": "info",
    "not queued": "warn",
    "suspended": "warn",
    "deprovisioned": "bad",
    "staged": "info",
}
HIDDEN = {"task", "correlation", "seq"}  # random ids and commit numbers: not for people


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        from provtui.tui.screens.audit import summarise

        return summarise(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _tone_of(key: str):
    return lambda row: TONES.get(str(row.get(key)))


def columns_for(names: list[str]) -> list[Col]:
    columns = []
    for index, key in enumerate(k for k in names if k not in HIDDEN):
        low, high = WIDTHS.get(key, (max(5, min(len(key), 12)), 16))
        fmt = short_time if key in TIME_COLUMNS else _cell
        columns.append(
            Col(
                key,
                key.replace("_", " "),
                max(low, min(len(key), 12)),
                max(high, len(key)),
                priority=min(index, 9),
                format=fmt,
                tone=_tone_of(key),
            )
        )
    return columns


class ReportsScreen(BaseScreen):
    CSS_PATH = "reports.tcss"
    NAV = "reports"
    BINDINGS = [
        Binding("right_square_bracket", "page(1)", "Next page", id="reports.next"),
        Binding("left_square_bracket", "page(-1)", "Previous page", id="reports.previous"),
        Binding("p", "pivot", "Pivot", id="reports.pivot"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page = 0
        self.pivot = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="bar"):
            yield Label("Report", id="report-label")
            yield Select([(name, name) for name in NAMES], value="apps", allow_blank=False, id="report", compact=True)
            yield Static(id="description")
        yield RowTable([], empty="No rows", id="rows")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    @property
    def report(self) -> str:
        return str(self.query_one("#report", Select).value)

    def params(self) -> dict:
        return {"name": self.report, "pivot": self.pivot and self.report == "access"}

    def read(self, service: Service, **params: Any) -> dict:
        rows, columns = service.reports().run(params["name"], pivot=params["pivot"])
        return {"name": params["name"], "rows": rows, "columns": columns}

    def show(self, data: dict) -> None:
        table = self.query_one(RowTable)
        rows = data["rows"]
        pages = max(1, -(-len(rows) // PAGE))
        self.page = min(self.page, pages - 1)
        table.set_columns(columns_for(data["columns"]))
        start = self.page * PAGE
        table.set_rows(rows[start : start + PAGE], empty="No rows: nothing to report")
        self.query_one("#description", Static).update(DESCRIPTIONS.get(data["name"], ""))
        shown = f"rows {start + 1:,}–{min(len(rows), start + PAGE):,} of {len(rows):,}" if len(rows) > PAGE else f"{len(rows):,} rows"
        keys = " · ] next page" if start + PAGE < len(rows) else ""
        keys += " · [ previous page" if self.page else ""
        keys += (" · p: per (user, app)" if self.pivot else " · p: user × app table") if data["name"] == "access" else ""
        self.query_one("#status", Static).update(f"{data['name']}: {shown}{keys}")
        self.allowed = {"pivot": True if data["name"] == "access" else None}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "page":
            if self.data is None:
                return None
            step = parameters[0] if parameters else 0
            more = (self.page + 1) * PAGE < len(self.data["rows"])
            return (more if step == 1 else self.page > 0) or None
        return super().check_action(action, parameters)

    @on(Select.Changed, "#report")
    def _report_changed(self) -> None:
        self.page = 0
        self.reload()

    def action_page(self, step: int) -> None:
        self.page = max(0, self.page + step)
        if self.data is not None:
            self.show(self.data)
            self.refresh_bindings()

    def action_pivot(self) -> None:
        self.pivot = not self.pivot
        self.reload()
