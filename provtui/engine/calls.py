"""The audit of downstream calls: one ``downstream.call`` event per wire call a connector reports.

The reconciler writes its calls' events with its results; :class:`CallLog` is for a connector used
outside a run (an import reading one app's accounts or groups): its events are written in one commit.
"""

from __future__ import annotations

from contextvars import ContextVar

from provtui.connectors.base import OnCall
from provtui.store import Store

ENGINE_ACTOR = "provtui-engine"

# The correlation of the key a reconciler's call is made for, and the login it is made for: named in the call's
# audit event, so the user's history shows every call made for them (creates and LDAP operations too, whose paths
# name no account id).
call_correlation: ContextVar[str | None] = ContextVar("call_correlation", default=None)
call_user: ContextVar[str | None] = ContextVar("call_user", default=None)


def engine_event(event: dict, run_by: str | None) -> dict:
    """An engine audit event, naming who started the run (when known) beside the engine."""
    return event if run_by is None else {**event, "run_by": run_by}


def call_event(
    app_name: str,
    method: str,
    path: str,
    status: int | None,
    duration_ms: float,
    *,
    user: str | None = None,
    correlation: str | None = None,
    run_by: str | None = None,
) -> dict:
    """The audit event of one call to ``app_name`` (method, path, status, duration; never a body)."""
    after: dict = {"method": method, "path": path, "status": status, "duration_ms": round(duration_ms, 1)}
    if user is not None:
        after["user"] = user
    event = {
        "actor": ENGINE_ACTOR,
        "action": "downstream.call",
        "target": app_name,
        "before": None,
        "after": after,
        "correlation": correlation,
    }
    return engine_event(event, run_by)


class CallLog:
    """The calls of connectors built outside a reconciler run, audited by :meth:`write`."""

    def __init__(self, run_by: str | None = None) -> None:
        self.run_by = run_by
        self.events: list[dict] = []

    def hook(self, app_name: str) -> OnCall:
        """The ``on_call`` to hand a connector of ``app_name``."""

        def on_call(method: str, path: str, status: int | None, duration_ms: float) -> None:
            self.events.append(call_event(app_name, method, path, status, duration_ms, run_by=self.run_by))

        return on_call

    def write(self, store: Store) -> None:
        """Audit the calls gathered so far, in one commit (none: no commit)."""
        events, self.events = self.events, []
        if events:
            with store.transaction() as tx:
                for event in events:
                    tx.audit(event)
