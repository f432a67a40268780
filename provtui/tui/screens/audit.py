"""The audit log: newest first, filtered by actor, action and what it is about, a page at a time.

A trail can hold 100,000 events: the screen keeps one page (``PAGE`` events) and
draws only the rows in view; ``]`` and ``[`` move to older and newer pages.
Downstream calls (one per HTTP request) are hidden unless asked for.  The third
filter is the service's ``about`` (the CLI's ``--about``): a person's login finds
the events that target them and those that name them (their groups' add-member and
remove-member events, assignments).  Re-entered, the screen shows no rows until it has
read the trail again: the rows it left may be missing the newest events.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.user_detail import short_time
from provtui.tui.text import shown
from provtui.tui.widgets.row_table import Col, RowTable
from provtui.tui.widgets.user_detail import HEADING, MUTED

if TYPE_CHECKING:
    from provtui.service import Service

PAGE = 1_000
FILTER_DEBOUNCE = 0.25
NO_MATCH = "No events match"


def _tone(row: dict) -> str | None:
    action = row.get("action") or ""
    if action.startswith("downstream.failed") or action.endswith("quarantine"):
        return "bad"
    if action in ("user.suspend", "user.deactivate", "user.delete", "group.remove-member", "app.unassign"):
        return "warn"
    if action.startswith("downstream."):
        return "muted"
    return None


def summarise(value: Any) -> str:
    if value in (None, {}, []):
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={summarise(v) if isinstance(v, (dict, list)) else v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value[:5])) + (f" +{len(value) - 5}" if len(value) > 5 else "")
    return str(value)


EVENT_COLUMNS = [
    Col("time", "Time", 16, 16, format=short_time),
    Col("actor", "Actor", 6, 10, priority=2),
    Col("action", "Action", 12, 18, tone=_tone),
    Col("target", "Target", 8, 14),
    Col("after", "Change", 10, 80, format=summarise, priority=1),
]


def audit_page(service: Service, filters: dict, page: int, calls: bool) -> dict:
    """One page of matching events, newest first, and whether older ones exist."""
    wanted = (page + 1) * PAGE + 1
    # Commits another process (the CLI) made since the console last looked: this page shows them at once,
    # not after the console's next poll.
    service.refresh()
    events = service.audit(wanted, calls=calls, **filters)
    newest_first = events[::-1]
    return {"events": newest_first[page * PAGE : (page + 1) * PAGE], "older": len(newest_first) > (page + 1) * PAGE}


def render_event(event: dict | None) -> Content:
    if event is None:
        return Content.styled("No event selected", MUTED)
    parts: list[Any] = [
        (shown(event.get("action") or ""), "bold"),
        "  ",
        shown(event.get("target") or ""),
        "  ",
        (f"by {shown(event.get('actor'))} at {event.get('time')} (commit {event.get('seq')})", MUTED),
        "\n",
    ]
    for side in ("before", "after"):
        if event.get(side) not in (None, {}):
            parts += [(side.title(), HEADING), " ", json.dumps(event[side], ensure_ascii=False, default=str), "\n"]
    return Content.assemble(*parts).rstrip()


class AuditScreen(BaseScreen):
    CSS_PATH = "audit.tcss"
    NAV = "audit"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("right_square_bracket", "page(1)", "Older", id="audit.older"),
        Binding("left_square_bracket", "page(-1)", "Newer", id="audit.newer"),
        Binding("c", "toggle_calls", "Calls", id="audit.calls"),
        Binding("v", "verify", "Verify chain", id="audit.verify"),
        Binding("escape", "back", "Clear/Back", id="audit.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page = 0
        self.calls = False
        self.return_to: str | None = None  # the event the cursor was on when the rows were cleared

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Input(placeholder="Actor", id="actor", compact=True)
            yield Input(placeholder="Action", id="action", compact=True)
            yield Input(placeholder="Target or person  (/)", id="search", compact=True)
        yield RowTable(EVENT_COLUMNS, row_key=lambda r: r.get("hash"), empty=NO_MATCH, id="events")
        with VerticalScroll(id="event"):
            yield Static(id="event-body")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    def _filters(self) -> dict:
        values = {
            "actor": self.query_one("#actor", Input).value.strip(),
            "action": self.query_one("#action", Input).value.strip(),
            "about": self.query_one("#search", Input).value.strip(),
        }
        return {k: v for k, v in values.items() if v}

    def params(self) -> dict:
        return {"filters": self._filters(), "page": self.page, "calls": self.calls}

    def read(self, service: Service, **params: Any) -> dict:
        return audit_page(service, params["filters"], params["page"], params["calls"])

    def on_screen_resume(self) -> None:
        # Back on this screen: no rows until the read lands, rather than rows that may lack the newest events.
        # (Not the table's ``loading``: a covered widget has no size, and the rows would land scrolled.)
        if self.data is not None:
            self._clear("Reading the audit trail…")
        super().on_screen_resume()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        if event.worker.group == "load" and event.state == WorkerState.ERROR:
            self._clear("The audit trail could not be read")  # why: App.report_worker_error's notification

    def _clear(self, why: str) -> None:
        table = self.query_one(RowTable)
        if table.highlighted_row is not None:  # the event being read: the cursor goes back to it (help, the palette)
            self.return_to = table.highlighted_row.get("hash")
        table.set_rows([], empty=why)
        self.query_one("#event-body", Static).update(render_event(None))
        self.query_one("#status", Static).update("")

    def show(self, data: dict) -> None:
        table = self.query_one(RowTable)
        table.set_rows(data["events"], empty=NO_MATCH)
        if self.return_to is not None:
            at = next((i for i, row in enumerate(data["events"]) if row.get("hash") == self.return_to), None)
            self.return_to = None
            if at is not None:
                table.move_cursor(at, center=True)
        self.query_one("#event-body", Static).update(render_event(table.highlighted))
        count = len(data["events"])
        first = self.page * PAGE + 1
        span = f"events {first:,}–{first + count - 1:,}" if count else "no events"
        more = " · ] older" if data["older"] else ""
        newer = " · [ newer" if self.page else ""
        calls = "" if self.calls else " · downstream calls hidden (c)"
        self.query_one("#status", Static).update(f"{span}, newest first{more}{newer}{calls}")
        self.allowed = {"page": True}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "page" and self.data is not None:
            step = parameters[0] if parameters else 0
            return (self.data["older"] if step == 1 else self.page > 0) or None
        return super().check_action(action, parameters)

    @on(Input.Changed)
    def _filters_changed(self) -> None:
        self.page = 0
        self._debounced_reload()

    @work(exclusive=True, group="filter", exit_on_error=False)
    async def _debounced_reload(self) -> None:
        await asyncio.sleep(FILTER_DEBOUNCE)
        self.reload()

    @on(Input.Submitted)
    def _to_list(self) -> None:
        self.query_one(RowTable).focus()

    @on(RowTable.RowHighlighted, "#events")
    def _event_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self.query_one("#event-body", Static).update(render_event(event.row))

    def action_page(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self.reload()

    def action_toggle_calls(self) -> None:
        self.calls = not self.calls
        self.page = 0
        self.reload()

    def action_back(self) -> None:
        fields = [f for f in self.query(Input) if f.value]
        if fields:
            for field in fields:
                field.value = ""
            self.query_one(RowTable).focus()
        else:
            super().action_back()

    def action_verify(self) -> None:
        async def verify() -> None:
            report = await self.app.call_service(self.app.service.audit_verify)
            self.notify(report.describe(), title="Audit chain", severity="information" if report.ok else "error", markup=False)

        self.run_worker(verify(), group="action", exit_on_error=False)
