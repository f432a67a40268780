"""Mail each manual app's admins one digest of the tasks opened since the last one.

The reconciler opens tasks for manual apps (``TASKS``: provision/deprovision a
user by hand).  After a run, :func:`send_task_digests` finds the open tasks no
one has been told of yet, and sends each app's ``notify`` list one email listing
them; the tasks are then marked ``notified`` and the sending audited
(``task.notify``).  A failed send leaves its tasks un-notified, so the next call
tries again; nothing is sent, and nothing written, while SMTP is not configured.

It is synchronous (smtplib): call it from a thread, e.g.
``await asyncio.to_thread(send_task_digests, store, guard=lock)``.  Store access
happens under ``guard`` (the lock the console's threads share, as for the
reconciler), never across the network wait.

Two processes on one store (a console and a headless worker) may both call it:
tasks are claimed in the store with a short lease before mailing, so each batch
goes out once.  A process that dies between sending and marking leaves its claim
to expire, and the digest is sent again: at least once, never silently lost.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from provtui.clock import parse_iso, utc_now, utc_now_iso
from provtui.connectors.smtp import MailError, SmtpSettings, send_mail
from provtui.domain.digest import compose_digest
from provtui.model.schema import APPS, CONFIG, TASKS, USERS
from provtui.store import Store

ENGINE_ACTOR = "provtui-engine"  # as provtui.engine.reconciler (not imported: it may import us)
CLAIM_SECONDS = 300  # longer than a send can take (connect + each command time out after 30 s)
CLAIM_FIELD = "notify_claim"

SendMail = Callable[[SmtpSettings, list[str], str, str], object]


@dataclass
class DigestReport:
    sent: list[dict] = field(default_factory=list)  # {"app", "to", "tasks": [ids], "refused": [addresses]}
    failed: list[dict] = field(default_factory=list)  # {"app", "error", "retryable", "tasks": n}
    skipped_no_smtp: int = 0  # tasks awaiting notification while smtp.host is not configured
    no_recipients: list[str] = field(default_factory=list)  # apps with tasks waiting but nobody to notify

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, other: DigestReport) -> None:
        """Fold a later sending's report into this one (one run may send several times)."""
        self.sent += other.sent
        self.failed += other.failed
        self.skipped_no_smtp = other.skipped_no_smtp  # what still waits, as of the latest sending
        self.no_recipients = sorted(set(self.no_recipients) | set(other.no_recipients))


def send_task_digests(
    store: Store,
    *,
    guard: AbstractContextManager | None = None,
    send: SendMail = send_mail,
    apps: frozenset[str] | None = None,
    run_by: str | None = None,
    secrets: Callable[[str], str | None] | None = None,
) -> DigestReport:
    """Send one digest per manual app of its open, not yet notified tasks.

    ``guard`` is held around every store access (none by default), never across a send.
    ``apps``: only these apps' tasks (a run scoped to an app admin's apps); ``run_by``: who started the
    run, named in the audit events beside the engine; ``secrets``: a server's secrets (smtp.password-secret).
    ``send`` is injectable for tests (same signature as
    :func:`provtui.connectors.smtp.send_mail`; it raises MailError on failure and
    may return the recipients the server refused).
    """
    guard = nullcontext() if guard is None else guard
    report = DigestReport()
    with guard:
        store.refresh()
        config = {key: entry["value"] for key, entry in store.all(CONFIG).items()}
        waiting = _waiting(store, apps)
    if not waiting:
        return report
    try:
        settings = SmtpSettings.from_config(config, secrets)
    except MailError as error:  # configured, but not usably: say so for every app that waits
        for app_id, tasks in sorted(waiting.items()):
            report.failed.append(
                {"app": _app_name(store, app_id), "error": error.message, "retryable": error.retryable, "tasks": len(tasks)}
            )
        return report
    if settings is None:
        report.skipped_no_smtp = sum(len(tasks) for tasks in waiting.values())
        return report

    owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
    with guard, store.transaction() as tx:
        batches = _claim(store, tx, owner, report, apps)

    for batch in batches:
        subject, body = compose_digest(batch["app"], batch["tasks"])
        ids = [task["id"] for task in batch["tasks"]]
        try:
            refused = send(settings, batch["to"], subject, body) or {}
        except MailError as error:
            report.failed.append({"app": batch["app"], "error": error.message, "retryable": error.retryable, "tasks": len(ids)})
            with guard, store.transaction() as tx:
                _release(tx, ids, owner)
            continue
        after: dict = {"to": batch["to"], "tasks": ids}
        if refused:
            after["refused"] = sorted(refused)
        with guard, store.transaction() as tx:
            now = utc_now_iso()
            for task_id in ids:
                task = tx.get(TASKS, task_id)
                if task is not None:  # done or cancelled meanwhile: it was still mailed, so say so
                    tx.put(TASKS, task_id, {**_unclaimed(task), "notified": now})
            event = {
                "actor": ENGINE_ACTOR,
                "action": "task.notify",
                "target": batch["app"],
                "before": None,
                "after": after,
                "correlation": None,
            }
            tx.audit(event if run_by is None else {**event, "run_by": run_by})
        report.sent.append({"app": batch["app"], "to": batch["to"], "tasks": ids, "refused": sorted(refused)})
    return report


def _waiting(reader, apps: frozenset[str] | None = None) -> dict[str, list[dict]]:
    """App id -> its open tasks that have not been mailed (apps that still exist; of ``apps`` only, if given)."""
    waiting: dict[str, list[dict]] = {}
    for task in reader.all(TASKS).values():
        if (
            task.get("state") == "open"
            and not task.get("notified")
            and reader.get(APPS, task["app"]) is not None
            and (apps is None or task["app"] in apps)
        ):
            waiting.setdefault(task["app"], []).append(task)
    return waiting


def _claim(store: Store, tx, owner: str, report: DigestReport, apps: frozenset[str] | None = None) -> list[dict]:
    """Claim the waiting tasks not claimed by another live sender; one batch per app with recipients."""
    now = utc_now()
    until = (now + timedelta(seconds=CLAIM_SECONDS)).isoformat()
    batches = []
    waiting = _waiting(store, apps)  # the transaction has caught up with other processes: this is current
    for app_id, tasks in waiting.items():
        app = store.get(APPS, app_id)
        to = list(dict.fromkeys(app.get("notify") or []))
        if not to:
            report.no_recipients.append(app["name"])
            continue
        mine = []
        for task in sorted(tasks, key=lambda t: (t.get("created") or "", t["id"])):
            claim = task.get(CLAIM_FIELD)
            if claim and claim.get("owner") != owner and parse_iso(claim["until"]) > now:
                continue  # another process is mailing it right now
            tx.put(TASKS, task["id"], {**task, CLAIM_FIELD: {"owner": owner, "until": until}})
            mine.append(_task_view(store, task))
        if mine:
            batches.append({"app": app["name"], "to": to, "tasks": mine})
    report.no_recipients.sort()
    return sorted(batches, key=lambda b: b["app"])


def _release(tx, ids: list[str], owner: str) -> None:
    for task_id in ids:
        task = tx.get(TASKS, task_id)
        if task is not None and (task.get(CLAIM_FIELD) or {}).get("owner") == owner:
            tx.put(TASKS, task_id, _unclaimed(task))


def _unclaimed(task: dict) -> dict:
    return {k: v for k, v in task.items() if k != CLAIM_FIELD}


def _task_view(reader, task: dict) -> dict:
    """The task with the user's display details, as compose_digest wants it."""
    user = reader.get(USERS, task["user"])
    profile = (user or {}).get("profile") or {}
    name = profile.get("displayName") or " ".join(p for p in (profile.get("firstName"), profile.get("lastName")) if p)
    return {
        "id": task["id"],
        "action": task["action"],
        "created": task.get("created"),
        "login": user["login"] if user else task["user"],
        "name": name or None,
        "email": profile.get("email"),
    }


def _app_name(reader, app_id: str) -> str:
    app = reader.get(APPS, app_id)
    return app["name"] if app else app_id
