"""The email digest of a manual app's open tasks: pure text, no I/O.

A manual app has no API, so provtui opens tasks ("deprovision ada from Payroll")
for its admins and mails them one digest per batch.  The engine passes the tasks
with the user's display details already resolved: each a dict with ``id``,
``action`` ("provision" | "deprovision"), ``created`` (ISO time), ``login`` and,
when known, ``name`` and ``email``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Deprovisions first: removing access that should be gone is the urgent half.
ACTION_ORDER = ("deprovision", "provision")
_HEADINGS = {"deprovision": "To deprovision", "provision": "To provision"}
_VERBS = {"deprovision": ("Deprovision", "from"), "provision": ("Provision", "in")}


def compose_digest(app_name: str, tasks: list[dict[str, Any]]) -> tuple[str, str]:
    """(subject, body) of one digest listing ``tasks`` for the admins of ``app_name``."""
    app_name = _one_line(app_name)
    count = len(tasks)
    noun = "task" if count == 1 else "tasks"
    subject = f"provtui: {count} {noun} for {app_name}"

    groups: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        groups.setdefault(str(task.get("action") or "other"), []).append(task)
    order = [a for a in ACTION_ORDER if a in groups] + sorted(a for a in groups if a not in ACTION_ORDER)

    waiting = "is" if count == 1 else "are"
    lines = [
        f"{count} {noun} {waiting} waiting in {app_name}, an app provtui cannot change by itself.",
        "Please make these changes in the app, then mark each task done.",
    ]
    for action in order:
        items = sorted(groups[action], key=lambda t: (str(t.get("created") or ""), str(t.get("id"))))
        lines += ["", f"{_HEADINGS.get(action, action.capitalize())} ({len(items)}):"]
        lines += [f"  - {describe_task(app_name, task)}" for task in items]
    ids = [
        str(task.get("id"))
        for action in order
        for task in sorted(groups[action], key=lambda t: (str(t.get("created") or ""), str(t.get("id"))))
    ]
    lines += [
        "",
        "When they are done, mark them done (an admin's action, audited):",
        "",
        f"  provtui tasks done {' '.join(ids)}" if ids else "  provtui tasks done ID...",
        "",
        "or on the pending-deprovisions screen of the console.",
        "",
        "-- ",
        "Sent by provtui. Each task is mailed once; open tasks are listed by `provtui tasks`.",
    ]
    return subject, "\n".join(lines) + "\n"


def describe_task(app_name: str, task: dict[str, Any]) -> str:
    """'Deprovision ada (Ada Lovelace, ada@example.com) from Payroll — task 1a2b3c4d, opened 2026-01-02 09:30 UTC'."""
    action = str(task.get("action") or "")
    verb, preposition = _VERBS.get(action, (action.capitalize() or "Handle", "in"))
    who = _one_line(str(task.get("login") or task.get("user") or "unknown user"))
    details = [_one_line(str(task[k])) for k in ("name", "email") if task.get(k)]
    if details:
        who += f" ({', '.join(details)})"
    text = f"{verb} {who} {preposition} {_one_line(app_name)} — task {task.get('id')}"
    opened = format_time(task.get("created"))
    return f"{text}, opened {opened}" if opened else text


def format_time(value: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM UTC'; anything unparseable is shown as given."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))  # 3.11+ reads a trailing Z
    except ValueError:
        return _one_line(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
