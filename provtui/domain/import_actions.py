"""What an import plan holds (provtui.domain.import_plan decides it): one ``UserAction`` per user it changes, the
``ImportPlan`` of them with its counts, and the share of the organisation it would deactivate.  Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provtui.domain.import_rows import Rejection

OUTCOMES = ("created", "updated", "unchanged", "suspended", "deactivated", "reactivated")


@dataclass(slots=True)
class UserAction:
    """What to do to one user.  Apply: create the user (source = the import's, state staged) or
    update its profile, then run ``lifecycle`` in order; the result is ``state_after``."""

    line: int | None  # the CSV line; None: a user missing from the file (full import)
    user_id: str | None  # None: a new user
    login: str  # the login after the import
    state_before: str | None  # None: a new user
    state_after: str
    lifecycle: tuple[str, ...]  # lifecycle actions, in order (a new user starts staged)
    changes: dict[str, tuple[Any, Any]]  # attribute -> (before, after); after None: removed.  Empty for a new user.
    profile: dict[str, Any]  # the whole validated profile after the import
    outcomes: tuple[str, ...]  # the summary counts this action adds to
    adopt: bool = False  # a provtui user the import now masters (its source becomes the import's)
    attribute_sources: dict[str, str] | None = None  # when not None: the user's new per-attribute provenance
    reason: str = ""  # why, for the dry run ("active in HR", "on leave in HR", "missing from the file"...)

    @property
    def created(self) -> bool:
        return self.user_id is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "login": self.login,
            "outcomes": list(self.outcomes),
            "lifecycle": list(self.lifecycle),
            "state": [self.state_before, self.state_after],
            "changes": {k: [b, a] for k, (b, a) in self.changes.items()},
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ImportPlan:
    """The import, decided but not applied.  Apply every action in one transaction.

    Counts are of changes, so one user may count twice: "updated" (its attributes changed, it was
    adopted, or a staged user was activated) and one of suspended / deactivated / reactivated
    (which includes unsuspended).  "unchanged": accepted rows with nothing to do.
    """

    source: str
    full: bool
    actions: tuple[UserAction, ...]
    unchanged: int  # rows with nothing to do (terminated rows for unknown users included)
    rejected: tuple[Rejection, ...]  # sorted by line
    people: int = 0  # valid persons: accepted rows that are not terminated / disabled
    rows: int = 0  # rows (entries) read that were not rejected
    refused: str | None = None  # why this run must change nothing (it yields no valid person); None: it may apply
    withheld: tuple[UserAction, ...] = ()  # a refused plan: the actions it would have taken (never applied)

    def count(self, outcome: str) -> int:
        if outcome == "unchanged":
            return self.unchanged
        return sum(1 for a in self.actions if outcome in a.outcomes)

    def summary(self) -> dict[str, Any]:
        """The CLI's JSON: counts, and the rejected rows as a list."""
        counts = {outcome: 0 for outcome in OUTCOMES}
        for action in self.actions:
            for outcome in action.outcomes:
                counts[outcome] += 1
        counts["unchanged"] = self.unchanged
        return {**counts, "rejected": [r.as_dict() for r in self.rejected]}

    @property
    def deactivations(self) -> int:
        return sum(1 for a in self.actions if "deactivated" in a.outcomes)

    @property
    def would_deactivate(self) -> list[str]:
        """The logins this plan deactivates, or (refused) would have deactivated."""
        return [a.login for a in (self.withheld if self.refused else self.actions) if "deactivated" in a.outcomes]

    def details(self) -> list[dict[str, Any]]:
        """Every action as JSON-ready dicts, in file order (missing users last), for the dry run."""
        return [a.as_dict() for a in self.actions]


def deprovision_ratio(plan: ImportPlan, active_count: int) -> float:
    """The fraction of the org's ``active_count`` active users this plan deactivates (for the 20% hold)."""
    deactivations = plan.deactivations
    if deactivations == 0:
        return 0.0
    if active_count <= 0:
        return 1.0
    return deactivations / active_count
