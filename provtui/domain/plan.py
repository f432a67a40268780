"""The provisioning plan: what to do to one downstream account, right now.

Reconcile, don't replay: the plan compares the account the user should have with
the last known downstream state, so any number of edits between two syncs become
one call, and a suspend followed by an unsuspend becomes none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from provtui.domain.entitlement import is_entitled
from provtui.domain.mapping import changed_attributes


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DELETE = "delete"


# Read-only by convention, not frozen: a frozen dataclass costs ~4x as much to build (each field set through
# object.__setattr__), and planning builds a desired account and a change for every queued key.
@dataclass(slots=True)
class DesiredAccount:
    active: bool  # False: if an account exists it must be deactivated
    attributes: dict[str, Any]
    create_only: frozenset[str] = frozenset()  # attributes sent when the account is created, never updated


@dataclass(slots=True)
class KnownAccount:
    """What provtui last saw downstream (the engine's record)."""

    remote_id: str | None
    active: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    deactivated_at: datetime | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> KnownAccount | None:
        if doc is None or not doc.get("remote_id"):
            return None
        deactivated = doc.get("deactivated_at")
        return cls(
            doc["remote_id"],
            bool(doc.get("active")),
            doc.get("attributes") or {},
            datetime.fromisoformat(deactivated.replace("Z", "+00:00")) if deactivated else None,
        )


@dataclass(slots=True)
class AccountChange:
    action: Action
    attributes: dict[str, Any]  # create: all of them; otherwise only what changed
    active: bool


def desired_account(
    user_state: str | None, paths: list[str], attributes: dict[str, Any], create_only: frozenset[str] = frozenset()
) -> DesiredAccount:
    """Entitled and active: an active account.  Anything else: none, or a deactivated one."""
    return DesiredAccount(user_state is not None and is_entitled(user_state, paths), attributes, create_only)


@dataclass(frozen=True)
class DeletionPolicy:
    """Deactivate only (None), or delete the account N days after it was deactivated."""

    delete_after_days: int | None = None

    def due(self, known: KnownAccount, now: datetime) -> bool:
        if self.delete_after_days is None or known.active or known.deactivated_at is None:
            return False
        return now >= known.deactivated_at + timedelta(days=self.delete_after_days)


def plan_account(
    desired: DesiredAccount, known: KnownAccount | None, policy: DeletionPolicy = DeletionPolicy(), now: datetime | None = None
) -> AccountChange | None:
    if known is None:
        if desired.active:
            return AccountChange(Action.CREATE, dict(desired.attributes), True)
        return None
    if not desired.active:
        if known.active:
            return AccountChange(Action.DEACTIVATE, {}, False)
        if now is not None and policy.due(known, now):
            return AccountChange(Action.DELETE, {}, False)
        return None
    changed = changed_attributes(desired.attributes, known.attributes, desired.create_only)
    if not known.active:
        return AccountChange(Action.REACTIVATE, changed, True)
    if changed:
        return AccountChange(Action.UPDATE, changed, True)
    return None
