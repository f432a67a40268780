"""Pending work for people: manual apps' open tasks (mark done), deprovisions not done yet, and the rule
changes a safeguard held (approve or reject; held imports are not stored: they are re-run with --confirm)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label, Static

from provtui.tui import queries
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.user_detail import short_time
from provtui.tui.widgets.row_table import Col, RowTable, tone_by

if TYPE_CHECKING:
    from provtui.service import Service

ACTION_TONES = {"provision": "good", "deprovision": "warn"}
STATE_TONES = {"failed": "bad", "queued": "info", "not queued": "warn"}
TASK_COLUMNS = [
    Col("app", "App", 8, 16),
    Col("user", "User", 8, 16),
    Col("action", "Do", 11, 12, tone=tone_by("action", ACTION_TONES)),
    Col("created", "Since", 16, 16, format=short_time, priority=1),
]
PENDING_COLUMNS = [
    Col("app", "App", 8, 16),
    Col("user", "User", 8, 16),
    Col("state", "State", 10, 10, tone=tone_by("state", STATE_TONES)),
    Col("since", "Since", 16, 16, format=short_time, priority=2),
    Col("last_error", "Last error", 10, 60, priority=1, tone=lambda r: "bad"),
]
HELD_COLUMNS = [
    Col("name", "Rule", 8, 20),
    Col("created", "Held since", 16, 16, format=short_time),
    Col("by", "By", 6, 12, priority=1),
    Col("summary", "Would", 10, 60, format=lambda s: _summary(s), priority=2),
]


def _summary(summary: dict | None) -> str:
    if not summary:
        return ""
    parts = [f"{summary.get('joins', 0)} join", f"{summary.get('leaves', 0)} leave", f"{summary.get('losses', 0)} lose access"]
    return ", ".join(parts)


class TasksScreen(BaseScreen):
    CSS_PATH = "tasks.tcss"
    NAV = "tasks"
    BINDINGS = [
        Binding("x", "done", "Mark done", id="tasks.done"),
        Binding("A", "decide(True)", "Approve", id="tasks.approve"),
        Binding("R", "decide(False)", "Reject", id="tasks.reject"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Label("Manual tasks", id="tasks-title", classes="title")
        yield RowTable(TASK_COLUMNS, row_key=lambda r: r["id"], empty="No open tasks", id="tasks")
        yield Label("Deprovisions not done yet", id="pending-title", classes="title")
        yield RowTable(PENDING_COLUMNS, row_key=lambda r: (r["app"], r["user"]), empty="None: every deprovision is done", id="pending")
        yield Label("Held changes", id="held-title", classes="title")
        yield RowTable(HELD_COLUMNS, row_key=lambda r: r.get("id"), empty="No changes held", id="held")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one("#tasks", RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.tasks_page(service)

    def show(self, data: dict) -> None:
        tasks, pending, held = data["tasks"], data["pending"], data["held"]
        self.query_one("#tasks", RowTable).set_rows(tasks)
        self.query_one("#pending", RowTable).set_rows(pending)
        self.query_one("#tasks-title", Label).update(f"Manual tasks ({len(tasks)})")
        self.query_one("#pending-title", Label).update(f"Deprovisions not done yet ({len(pending)})")
        has_held = held is not None
        self.query_one("#held-title").display = has_held
        self.query_one("#held").display = bool(held)
        if has_held:
            self.query_one("#held", RowTable).set_rows(held)
            self.query_one("#held-title", Label).update(
                f"Held changes ({len(held)})" + (" · A approves, R rejects the highlighted one" if held else "")
            )
        deprovisions = sum(1 for t in tasks if t["action"] == "deprovision")
        self.query_one("#status", Static).update(
            f"{len(tasks)} open tasks ({deprovisions} deprovisions) · {len(pending)} accounts still to deactivate"
        )
        may = set(data["may_complete"])
        may_decide = bool(data["may_approve"]) if held else None
        self.allowed = {"done": bool(may & {t["app"] for t in tasks}) if tasks else None, "decide": may_decide}

    @on(RowTable.RowSelected, "#pending")
    def _open_user(self, event: RowTable.RowSelected) -> None:
        self.app.open_user(event.row["user"])

    @on(RowTable.RowSelected, "#tasks")
    def _task_chosen(self, event: RowTable.RowSelected) -> None:
        self.action_done()

    @on(RowTable.RowSelected, "#held")
    def _open_rule(self, event: RowTable.RowSelected) -> None:
        self.app.open_rule(event.row["name"])

    def action_decide(self, approve: bool) -> None:
        held = self.query_one("#held", RowTable).highlighted
        if held is None:
            return
        what = f"Rule {held['name']} (held {short_time(held['created'])}, by {held['by']}): {_summary(held['summary'])}."
        breaches = "\n".join(
            f"{b['app']}: {b['losing']:,} of {b['entitled']:,} entitled users lose access"
            for b in (held.get("summary") or {}).get("breaches", [])
        )
        if approve:
            body = f"{what}\n{breaches}\n\nApply it now, to the directory as it is now?"
        else:
            body = f"{what}\n\nReject it? The rule stays as it is."
        decide = self.app.service.rules().decide
        self.confirm(
            "Approve held change" if approve else "Reject held change",
            body,
            lambda: self.act(
                decide, held["id"], approve, done=f"{'approved' if approve else 'rejected'} the change to rule {held['name']}"
            ),
            confirm="Approve" if approve else "Reject",
            destructive=approve,
        )

    def action_done(self) -> None:
        task = self.query_one("#tasks", RowTable).highlighted
        if task is None:
            return
        if task["app"] not in self.data["may_complete"]:
            self.notify(f"You may not complete {task['app']}'s tasks", severity="warning")
            return
        what = "created (or re-enabled)" if task["action"] == "provision" else "disabled"
        self.confirm(
            "Mark task done",
            f"{task['user']}'s account in {task['app']} has been {what} by hand?\n\nprovtui records the account as it now is.",
            lambda: self.act(self.app.service.complete_task, task["id"], done=f"{task['app']} task for {task['user']} done"),
            confirm="Done",
            destructive=False,
        )
