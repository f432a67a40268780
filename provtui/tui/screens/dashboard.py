"""The dashboard: people by state, apps with their accounts and health, and what needs attention."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from provtui.tui import queries
from provtui.tui.screens.apps import HEALTH_TONES
from provtui.tui.screens.base import BaseScreen
from provtui.tui.widgets.row_table import Col, RowTable, tone_by
from provtui.tui.widgets.user_detail import HEADING, MUTED, STATE_STYLE

if TYPE_CHECKING:
    from provtui.service import Service

BAR = 10  # cells of the widest bar


def _count(value: int) -> str:
    return f"{value:,}"


APP_COLUMNS = [
    Col("app", "App", 8, 18),
    Col("kind", "Kind", 6, 6, priority=3),
    Col("accounts", "Accounts", 8, 8, right=True, priority=1),
    Col("active", "Active", 6, 8, right=True, priority=2),
    Col("queued", "Queued", 6, 8, right=True, priority=1, tone=lambda r: "info" if r["queued"] else "muted"),
    Col("failed", "Failed", 6, 8, right=True, priority=1, tone=lambda r: "bad" if r["failed"] else "muted"),
    Col("health", "Health", 11, 14, tone=tone_by("health", HEALTH_TONES)),
    Col("quarantine_reason", "Why", 10, 60, priority=4, tone=lambda r: "bad"),
]


LIVE_TONES = {"live": "$text-success", "catching up": "$text-primary", "stopped": MUTED, "failed": "$text-error", "held": "$text-warning"}


def render_people(data: dict) -> Content:
    total = data["total"] or 1
    widest = max(data["states"].values(), default=0) or 1
    parts: list[Any] = [("People", HEADING), "  ", (f"{data['total']:,} in all", MUTED), "\n"]
    for state, count in data["states"].items():
        bar = "█" * max(1 if count else 0, round(BAR * count / widest))
        share = f"{100 * count / total:.0f}%" if count else ""
        parts += [state.ljust(14), _count(count).rjust(7), (share.rjust(5), MUTED), " ", (bar, STATE_STYLE.get(state, "")), "\n"]
    return Content.assemble(*parts).rstrip()


def render_attention(data: dict) -> Content:
    def line(label: str, value: int | None, tone: str, hint: str = "") -> list[Any]:
        if value is None:
            return [label.ljust(22), ("—".rjust(6), MUTED), "\n"]
        style = tone if value else MUTED
        return [label.ljust(22), (_count(value).rjust(6), style), (f"  ({hint})" if hint and value else "", MUTED), "\n"]

    parts: list[Any] = [("Needs attention", HEADING), "\n"]
    parts += line("Queued for sync", data["queued"], "$text-primary", "y")
    parts += line("In flight", data["in_flight"], "$text-primary")
    parts += line("Failed accounts", data["failed"], "$text-error", "y")
    # The Tasks screen's two lists, counted as it counts them: a deprovision task is a pending deprovision.
    parts += line("Provision tasks", data["provision_tasks"], "$text-warning", "t")
    parts += line("Pending deprovisions", data["pending_deprovisions"], "$text-warning", "t")
    parts += line("Held changes", data["held"], "$text-warning", "t" if data["held"] is not None else "")
    for source in data.get("live_sources") or ():  # a live directory's session, as `source status` shows it
        tone = LIVE_TONES.get(source["state"] or "", "$text-warning")
        lag = f"  ({source['lag_ms']:,.0f} ms lag)" if source["state"] == "live" and source["lag_ms"] is not None else ""
        parts += [f"Live {source['name']}"[:21].ljust(22), (str(source["state"] or "not started"), tone), (lag, MUTED), "\n"]
    if data["quarantined"]:
        parts += [("Quarantined: " + ", ".join(data["quarantined"]), "$text-error"), "\n"]
    if data.get("credentials_rejected"):
        parts += [("Credentials rejected: " + ", ".join(data["credentials_rejected"]), "$text-error"), "\n"]
    return Content.assemble(*parts).rstrip()


class DashboardScreen(BaseScreen):
    CSS_PATH = "dashboard.tcss"
    NAV = "dashboard"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [Binding("enter", "open_app", "Open app", id="dashboard.open_app", show=False)]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="panels"):
            yield Static(Content.styled("Loading…", MUTED), id="people", classes="panel")
            yield Static(id="attention", classes="panel")
        yield RowTable(APP_COLUMNS, row_key=lambda r: r["app"], empty="No apps yet", id="apps")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.dashboard(service)

    def show(self, data: dict) -> None:
        self.query_one("#people", Static).update(render_people(data))
        self.query_one("#attention", Static).update(render_attention(data))
        self.query_one(RowTable).set_rows(data["apps"])

    @on(RowTable.RowSelected, "#apps")
    def _app_chosen(self, event: RowTable.RowSelected) -> None:
        self.app.open_app(event.row["app"])

    def action_open_app(self) -> None:
        self.query_one(RowTable).action_select()
