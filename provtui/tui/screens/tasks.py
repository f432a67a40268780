"""Pending work for people, each kind apart: manual apps' open provision tasks (mark done); every deprovision
not done yet, its manual deprovision tasks (mark done) and the accounts still to deactivate (open the person);
and the rule changes a safeguard held (approve or reject; held imports are not stored: they are re-run with
--confirm).  The counts are the dashboard's and `report pending`'s: all read the service's one definition."""

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

STATE_TONES = {"task-open": "warn", "failed": "bad", "queued": "info", "not queued": "warn"}
# what is left to do for a pending deprovision: an admin's hand (a manual task), or the engine's call
PENDING_DO = {"task": "disable by hand", "account": "deactivate"}
PROVISION_COLUMNS = [Col("app", "App", 8, 16), Col("user", "User", 8, 16), Col("created", "Since", 16, 16, format=short_time, priority=1)]
PENDING_COLUMNS = [  # at 80 columns every one fits, a login whole
    Col("app", "App", 8, 14),
    Col("user", "User", 12, 16),
    Col("kind", "Do", 15, 15, format=lambda kind: PENDING_DO.get(kind, kind)),
    Col("state", "State", 10, 10, format=lambda state: state.replace("-", " "), tone=tone_by("state", STATE_TONES)),
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
    if "mastered" in summary:  # an inbound SCIM client's deprovision (provtui.service.scim_safeguard)
        return f"deprovision: {summary['recent'] + 1} of the {summary['mastered']} it masters, in the window"
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

    def __init__(self) -> None:
        super().__init__()
        self.shown_once = False  # the first showing picks the list to start in

    def compose_body(self) -> ComposeResult:
        yield Label("Provision tasks", id="provision-title", classes="title")
        yield RowTable(PROVISION_COLUMNS, row_key=lambda r: r["id"], empty="None: every account asked for is made", id="provision")
        yield Label("Pending deprovisions", id="pending-title", classes="title")
        yield RowTable(PENDING_COLUMNS, row_key=lambda r: (r["app"], r["user"]), empty="None: every deprovision is done", id="pending")
        yield Label("Held changes", id="held-title", classes="title")
        yield RowTable(HELD_COLUMNS, row_key=lambda r: r.get("id"), empty="No changes held", id="held")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one("#provision", RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.tasks_page(service)

    def show(self, data: dict) -> None:
        provision, pending, held = data["provision"], data["pending"], data["held"]
        self.query_one("#provision", RowTable).set_rows(provision)
        self.query_one("#pending", RowTable).set_rows(pending)
        manual = sum(1 for p in pending if p["kind"] == "task")
        self.query_one("#provision-title", Label).update(f"Provision tasks ({len(provision)})")
        self.query_one("#pending-title", Label).update(
            f"Pending deprovisions ({len(pending)}: {_counted(manual, 'manual task')}, "
            f"{_counted(len(pending) - manual, 'account')} to deactivate)"
        )
        has_held = held is not None
        self.query_one("#held-title").display = has_held
        self.query_one("#held").display = bool(held)
        if has_held:
            self.query_one("#held", RowTable).set_rows(held)
            self.query_one("#held-title", Label).update(
                f"Held changes ({len(held)})" + (" · A approves, R rejects the highlighted one" if held else "")
            )
        self.query_one("#status", Static).update("x marks the highlighted task done · enter on an account opens the person")
        tasks = [*provision, *(p for p in pending if p["kind"] == "task")]
        may = set(data["may_complete"])
        may_decide = bool(data["may_approve"]) if held else None
        self.allowed = {"done": bool(may & {t["app"] for t in tasks}) if tasks else None, "decide": may_decide}
        if not self.shown_once and not provision and pending:
            self.query_one("#pending", RowTable).focus()  # nothing to make: start where the work is
        self.shown_once = True

    @on(RowTable.RowSelected, "#pending")
    def _pending_chosen(self, event: RowTable.RowSelected) -> None:
        if event.row["kind"] == "task":
            self._mark_done(_task(event.row))
        else:
            self.app.open_user(event.row["user"])

    @on(RowTable.RowSelected, "#provision")
    def _task_chosen(self, event: RowTable.RowSelected) -> None:
        self._mark_done(_task(event.row))

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
        """Mark the highlighted task of the list in focus done (the provision tasks' when neither list is)."""
        table = self.focused if self.focused is self.query_one("#pending") else self.query_one("#provision", RowTable)
        row = table.highlighted_row if isinstance(table, RowTable) else None
        if row is None:
            return
        if row.get("kind") == "account":
            self.notify(f"{row['user']}'s account in {row['app']} is the engine's to deactivate: no task to mark done", markup=False)
            return
        self._mark_done(_task(row))

    def _mark_done(self, task: dict) -> None:
        if task["app"] not in self.data["may_complete"]:
            self.notify(f"You may not complete {task['app']}'s tasks", severity="warning", markup=False)
            return
        what = "created (or re-enabled)" if task["action"] == "provision" else "disabled"
        self.confirm(
            "Mark task done",
            f"{task['user']}'s account in {task['app']} has been {what} by hand?\n\nprovtui records the account as it now is.",
            lambda: self.act(self.app.service.complete_task, task["id"], done=f"{task['app']} task for {task['user']} done"),
            confirm="Done",
            destructive=False,
        )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _task(row: dict) -> dict:
    """A manual task, from a row of either list: a provision task (task_list's) or a pending deprovision's task."""
    if row.get("kind") == "task":
        return {"id": row["task"], "app": row["app"], "user": row["user"], "action": row["action"]}
    return row
