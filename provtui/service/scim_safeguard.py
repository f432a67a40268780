"""The mass-deprovisioning safeguard for inbound SCIM clients (#20), as the import safeguard is for a run.

A client's deprovisions (``active: false``, DELETE) are counted over a sliding window
(``scim.safeguard.window`` seconds, default an hour).  Once the client masters at least
``scim.safeguard.minimum`` people (default 100: a test directory or a conformance suite creating and deleting
its own few is never held), a deprovision that takes the window's count past the safeguard's threshold
(``safeguard.threshold``, the imports' 20%) of the people it masters is held: kept in the held changes (kind
``scim``) for `provtui held approve` / `reject`, nothing of it applied, and answered 503 with Retry-After, so
the client retries.  A retry while it is held is the same held change; once approved (the approval applies
it) the retry finds it done; once rejected, the retry is refused (403) — the admin decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now, utc_now_iso
from provtui.domain.errors import NotAllowed
from provtui.domain.import_actions import ImportPlan
from provtui.domain.scim_clients import SOURCE_PREFIX
from provtui.ids import new_id
from provtui.model.schema import HELD, SCIM_CLIENTS, USERS
from provtui.service.settings import setting

if TYPE_CHECKING:
    from provtui.service.change import Change
    from provtui.service.imports.common import ImportBase

DEFAULT_MINIMUM = 100
DEFAULT_WINDOW = 3600
RETRY_AFTER = 300  # seconds: what the 503 asks the client to wait before trying again


@dataclass(frozen=True)
class Held:
    """A request the safeguard holds: the held change's id, and why."""

    id: str
    message: str
    retry_after: int = RETRY_AFTER


def hold_if_over(part: ImportBase, tx: Change, plan: ImportPlan, *, operation: str) -> Held | None:
    """None if ``plan`` (one person, pushed by the client ``part`` acts for) may apply now (its deprovision then
    counted); else the Held it is, recorded in ``tx``.  A rejected one: NotAllowed."""
    action = next((a for a in plan.actions if "deactivated" in a.outcomes), None)
    if action is None or action.user_id is None:
        return None
    source = plan.source
    earlier = _held_of(tx, source, action.user_id, operation)
    if earlier is not None and earlier["state"] == "held":
        return Held(earlier["id"], _message(earlier))
    if earlier is not None and earlier["state"] == "rejected":
        raise NotAllowed(f"an admin rejected deprovisioning {action.login} (held change {earlier['id']}): {source} may not")
    client_name = source.removeprefix(SOURCE_PREFIX)
    client = tx.get(SCIM_CLIENTS, client_name) or {}
    now = utc_now()
    since = now - timedelta(seconds=setting(tx, "scim.safeguard.window", DEFAULT_WINDOW))
    recent = [t for t in client.get("deprovisions", ()) if datetime.fromisoformat(t) >= since]
    mastered = sum(1 for u in part.store.all(USERS).values() if u.get("source") == source and u["state"] != "deleted")
    threshold = part.threshold()
    if mastered >= setting(tx, "scim.safeguard.minimum", DEFAULT_MINIMUM) and len(recent) + 1 > threshold * mastered:
        held: dict[str, Any] = {
            "id": new_id()[:8],
            "kind": "scim",
            "source": source,
            "user": action.user_id,
            "name": action.login,
            "operation": operation,
            "summary": {"recent": len(recent), "mastered": mastered, "threshold": threshold},
            "state": "held",
            "created": utc_now_iso(),
            "by": tx.actor,
        }
        tx.put(HELD, held["id"], held)
        tx.audit("scim.held", action.login, None, {"held": held["id"], "operation": operation, **held["summary"]})
        return Held(held["id"], _message(held))
    if client:
        tx.put(SCIM_CLIENTS, client_name, {**client, "deprovisions": [*recent, now.isoformat()]})
    return None


def _held_of(tx: Change, source: str, user_id: str, operation: str) -> dict[str, Any] | None:
    """The newest held change of this client deprovisioning this person, still held or decided."""
    keys = tx.lookup(HELD, "state", "held") | tx.lookup(HELD, "state", "rejected")
    found = [
        h
        for h in (tx.get(HELD, key) for key in keys)
        if h and h.get("kind") == "scim" and h["source"] == source and h["user"] == user_id and h["operation"] == operation
    ]
    return max(found, key=lambda h: h["created"]) if found else None


def _message(held: dict[str, Any]) -> str:
    summary = held["summary"]
    return (
        f"held ({held['id']}): {held['source']} deprovisioning {held['name']} would make {summary['recent'] + 1} of the "
        f"{summary['mastered']} people it masters in the safeguard's window (over {summary['threshold']:.0%}); "
        f"an admin decides (`provtui held approve {held['id']}`); retry after {RETRY_AFTER} s"
    )
