"""Activity: per app, what is queued, in flight and failed; the failed accounts with the server's message; retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Label, Static

from provtui.tui import queries
from provtui.tui.screens.apps import HEALTH_TONES, confirm_resume
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.user_detail import short_time
from provtui.tui.text import shown
from provtui.tui.widgets.row_table import Col, RowTable, tone_by

if TYPE_CHECKING:
    from provtui.service import Service

APP_COLUMNS = [
    Col("app", "App", 8, 18),
    Col("queued", "Queued", 6, 8, right=True, tone=lambda r: "info" if r["queued"] else "muted"),
    Col("in_flight", "In flight", 9, 9, right=True, tone=lambda r: "info" if r["in_flight"] else "muted"),
    Col("failed", "Failed", 6, 8, right=True, tone=lambda r: "bad" if r["failed"] else "muted"),
    Col("health", "Health", 11, 12, tone=tone_by("health", HEALTH_TONES)),
    Col("last_success", "Last success", 16, 16, format=short_time, priority=2),
    Col("quarantine_reason", "Quarantined because", 10, 60, priority=3, tone=lambda r: "bad"),
]
FAILURE_COLUMNS = [
    Col("app", "App", 6, 12),
    Col("user", "User", 8, 14),
    Col("last_error", "Server said", 20, 80, tone=lambda r: "bad"),
    Col("attempts", "Tries", 5, 5, right=True, priority=2),
    Col("last_sync", "When", 16, 16, format=short_time, priority=3),
]


class ActivityScreen(BaseScreen):
    CSS_PATH = "activity.tcss"
    NAV = "activity"
    BINDINGS = [
        Binding("ctrl+r", "retry", "Retry", id="activity.retry"),
        Binding("f", "retry_all", "Retry all failed", id="activity.retry_all"),
        Binding("R", "resume", "Resume app", id="activity.resume"),
    ]

    def compose_body(self) -> ComposeResult:
        yield RowTable(APP_COLUMNS, row_key=lambda r: r["app"], empty="No apps", id="apps")
        yield Label("Failed accounts", id="failures-title")
        yield RowTable(FAILURE_COLUMNS, row_key=lambda r: (r["app"], r["user"]), empty="No failures", id="failures")
        yield Static(id="failure")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one("#failures", RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.activity_page(service)

    def show(self, data: dict) -> None:
        apps, failures = data["apps"], data["failures"]
        self.query_one("#apps", RowTable).set_rows(apps)
        self.query_one("#failures", RowTable).set_rows(failures)
        self._show_failure(self._failure)
        self.query_one("#failures-title", Label).update(f"Failed accounts ({len(failures):,})")
        in_flight = sum(a["in_flight"] for a in apps)
        self.query_one("#status", Static).update(
            f"{data['queued']:,} queued · {in_flight:,} in flight · {len(failures):,} failed · enter opens the user"
        )
        may = set(data["may_retry"])
        quarantined = {a["app"] for a in apps if a["quarantined"]}
        self.allowed = {
            "retry": bool(may) if failures else None,
            "retry_all": (len(may) == len(apps)) if failures else None,
            "resume": bool(quarantined & may) if quarantined else None,
        }

    @property
    def _failure(self) -> dict | None:
        return self.query_one("#failures", RowTable).highlighted

    @on(RowTable.RowHighlighted, "#failures")
    def _failure_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self._show_failure(event.row)

    def _show_failure(self, failure: dict | None) -> None:
        """The highlighted failure in full: the table cuts the server's message to fit."""
        widget = self.query_one("#failure", Static)
        widget.display = failure is not None
        if failure is not None:
            tries = f"{failure['attempts']} tr{'y' if failure['attempts'] == 1 else 'ies'}"
            widget.update(
                Content.assemble(
                    (f"{failure['user']} in {failure['app']}", "bold"),
                    ": ",
                    (shown(failure["last_error"] or "no message"), "$text-error"),
                    (f"  ({failure['last_action'] or 'sync'}, {tries})", "$text-muted"),
                )
            )

    @on(RowTable.RowSelected, "#failures")
    def _open_user(self, event: RowTable.RowSelected) -> None:
        self.app.open_user(event.row["user"])

    @on(RowTable.RowSelected, "#apps")
    def _open_app(self, event: RowTable.RowSelected) -> None:
        self.app.open_app(event.row["app"])

    def action_retry(self) -> None:
        """The highlighted failure (or, from the apps table, the app's failures)."""
        if self.focused is self.query_one("#apps", RowTable):
            row = self.query_one("#apps", RowTable).highlighted
            if row is not None:
                self.act(self.app.service.retry, app_name=row["app"], done=lambda n: f"{n} {row['app']} account(s) queued again")
            return
        failure = self._failure
        if failure is not None:
            self.act(
                self.app.service.retry,
                app_name=failure["app"],
                login=failure["user"],
                done=f"{failure['user']} in {failure['app']} queued again",
            )

    def action_retry_all(self) -> None:
        self.act(self.app.service.retry, done=lambda n: f"{n} failed account(s) queued again")

    def action_resume(self) -> None:
        quarantined = [a for a in self.data["apps"] if a["quarantined"]]
        row = self.query_one("#apps", RowTable).highlighted
        app = row if row is not None and row["quarantined"] else quarantined[0]
        confirm_resume(self, app["app"], app["quarantine_reason"])
