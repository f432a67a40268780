"""The provisioning plan: what to do to one downstream account, right now.

Reconcile, don't replay: the plan compares the account the user should have with
the last known downstream state, so any number of edits between two syncs become
one call, and a suspend followed by an unsuspend becomes none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provtui.domain.entitlement import is_entitled
from provtui.domain.mapping import changed_attributes


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"


@dataclass(frozen=True)
class DesiredAccount:
    active: bool  # False: if an account exists it must be deactivated
    attributes: dict[str, Any]


@dataclass(frozen=True)
class KnownAccount:
    """What provtui last saw downstream (the engine's record)."""

    remote_id: str | None
    active: bool
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: dict | None) -> KnownAccount | None:
        if doc is None or not doc.get("remote_id"):
            return None
        return cls(doc["remote_id"], bool(doc.get("active")), doc.get("attributes") or {})


@dataclass(frozen=True)
class AccountChange:
    action: Action
    attributes: dict[str, Any]  # create: all of them; otherwise only what changed
    active: bool


def desired_account(user_state: str | None, paths: list[str], attributes: dict[str, Any]) -> DesiredAccount:
    """Entitled and active: an active account.  Anything else: none, or a deactivated one."""
    return DesiredAccount(active=user_state is not None and is_entitled(user_state, paths), attributes=attributes)


def plan_account(desired: DesiredAccount, known: KnownAccount | None) -> AccountChange | None:
    if known is None:
        if desired.active:
            return AccountChange(Action.CREATE, dict(desired.attributes), True)
        return None
    if not desired.active:
        return AccountChange(Action.DEACTIVATE, {}, False) if known.active else None
    changed = changed_attributes(desired.attributes, known.attributes)
    if not known.active:
        return AccountChange(Action.REACTIVATE, changed, True)
    if changed:
        return AccountChange(Action.UPDATE, changed, True)
    return None
