"""User lifecycle states and the transitions between them.

staged -> active <-> suspended; staged/active/suspended -> deprovisioned -> active
(reactivate); deprovisioned -> deleted.  An illegal transition is an error.
"""

from __future__ import annotations

from enum import StrEnum

from provtui.domain.errors import InvalidInput


class State(StrEnum):
    STAGED = "staged"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEPROVISIONED = "deprovisioned"
    DELETED = "deleted"


# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "activate": (frozenset({State.STAGED}), State.ACTIVE),
    "suspend": (frozenset({State.ACTIVE}), State.SUSPENDED),
    "unsuspend": (frozenset({State.SUSPENDED}), State.ACTIVE),
    "deactivate": (frozenset({State.STAGED, State.ACTIVE, State.SUSPENDED}), State.DEPROVISIONED),
    "reactivate": (frozenset({State.DEPROVISIONED}), State.ACTIVE),
    "delete": (frozenset({State.DEPROVISIONED}), State.DELETED),
}


def transition(current: str, action: str) -> State:
    """The state ``action`` leads to from ``current``; raises InvalidInput if illegal."""
    if action not in TRANSITIONS:
        raise InvalidInput("action", f"unknown lifecycle action {action!r}")
    sources, target = TRANSITIONS[action]
    if State(current) not in sources:
        allowed = ", ".join(sorted(s.value for s in sources))
        raise InvalidInput("state", f"cannot {action} a user who is {current} (only from: {allowed})")
    return target


def actions_from(current: str) -> list[str]:
    """Lifecycle actions allowed from ``current``, for menus and help."""
    return [a for a, (sources, _) in TRANSITIONS.items() if State(current) in sources]
