"""Group push: the plan for one provtui group in one app.

Downstream, a pushed group has the group's name and, as members, the accounts
its members hold in that app.  Like accounts, groups are reconciled, not
replayed: the plan is the difference between that and the last known state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class GroupAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # rename and/or member changes
    DELETE = "delete"  # unpushed with deletion
    FORGET = "forget"  # unpushed, the group left downstream as it is


@dataclass(frozen=True)
class DesiredGroup:
    pushed: bool
    display_name: str
    members: frozenset[str]  # remote user ids
    delete_on_unpush: bool = False


@dataclass(frozen=True)
class KnownGroup:
    remote_id: str
    display_name: str
    members: frozenset[str]

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> KnownGroup | None:
        if doc is None or not doc.get("remote_id"):
            return None
        return cls(doc["remote_id"], doc.get("display_name", ""), frozenset(doc.get("members", ())))


@dataclass(frozen=True)
class GroupChange:
    action: GroupAction
    rename: str | None = None
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


def plan_group(desired: DesiredGroup, known: KnownGroup | None) -> GroupChange | None:
    if not desired.pushed:
        if known is None:
            return None
        return GroupChange(GroupAction.DELETE if desired.delete_on_unpush else GroupAction.FORGET)
    if known is None:
        return GroupChange(GroupAction.CREATE, add=desired.members)
    rename = desired.display_name if desired.display_name != known.display_name else None
    add, remove = desired.members - known.members, known.members - desired.members
    if rename is None and not add and not remove:
        return None
    return GroupChange(GroupAction.UPDATE, rename, frozenset(add), frozenset(remove))
