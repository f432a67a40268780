"""What a run reports (:class:`SyncReport`) and what reconciling one key came to (:class:`Outcome`).

An outcome is decided with no store write: the run's results are written in batches (provtui.engine.results).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provtui.engine.notifier import DigestReport


@dataclass
class SyncReport:
    done: int = 0
    failed: list[dict] = field(default_factory=list)  # {"app","user","action","status","error"}
    deferred: list[dict] = field(default_factory=list)  # transient faults outlasted the run: still queued ("retry_at")
    calls: int = 0
    retries: int = 0
    quarantined: list[str] = field(default_factory=list)
    # apps paused because they refused our credentials (401/403): {"app","status","error","since","next_probe"}
    credentials_rejected: list[dict] = field(default_factory=list)
    digests: DigestReport | None = None  # manual apps' task emails sent at the end of the run

    @property
    def ok(self) -> bool:
        return (
            not self.failed
            and not self.deferred
            and not self.quarantined
            and not self.credentials_rejected
            and (self.digests is None or self.digests.ok)
        )

    def note_rejected(self, entry: dict) -> None:
        """One entry per app: the latest word on its credentials."""
        self.credentials_rejected = [e for e in self.credentials_rejected if e["app"] != entry["app"]] + [entry]


@dataclass
class Outcome:
    key: str
    token: str
    writes: list[tuple[str, str, dict | None]] = field(default_factory=list)  # (table, key, doc or None to delete)
    follow_up: list[tuple[str, dict]] = field(default_factory=list)  # more work this result implies
    failure: dict | None = None
    app_fault: bool = False  # the failure was app-wide: it counts towards quarantine
    skipped: bool = False  # not attempted (app quarantined meanwhile): leave it queued
    credentials: dict | None = None  # the app refused our credentials ({"status","error"}): skipped, the app paused
    not_before: str | None = None  # a transient fault outlasted this run: stay queued, try again after this
    # (table, key, doc as read): the writes are decisions made on these reads, with no call sent; if any changed
    # before the result is written (an admin closed the task meanwhile), they are dropped and the key re-planned
    expects: list[tuple[str, str, dict | None]] = field(default_factory=list)


def blank_account(app_id: str, user_id: str) -> dict:
    """The record of an account never made."""
    return {"app": app_id, "user": user_id, "remote_id": None, "active": False, "attributes": {}, "state": "none"}
