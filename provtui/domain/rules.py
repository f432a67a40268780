"""Group rules: who a rule puts in its groups, and what that does to their access.

Pure: the service hands in profiles, memberships and assignments; these
functions say who joins and leaves, which app entitlements each gains or
loses, and whether a change is big enough for the safeguard to hold it.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from provtui.domain.lifecycle import State


class RuleState(StrEnum):
    INACTIVE = "inactive"
    ACTIVE = "active"


def rule_via(rule_id: str) -> str:
    """How a membership granted by a rule is marked, apart from manual membership."""
    return f"rule:{rule_id}"


def matches(result: object, user_id: str, excluded: Collection[str], state: str) -> bool:
    """A rule's verdict on one user: the condition held, they are not excluded, and not deleted."""
    return result is True and user_id not in excluded and state != State.DELETED


@dataclass(frozen=True)
class AccessChange:
    user: str  # user id
    app: str  # app id


@dataclass
class RulePreview:
    joins: list[str] = field(default_factory=list)  # user ids
    leaves: list[str] = field(default_factory=list)
    gains: list[AccessChange] = field(default_factory=list)
    losses: list[AccessChange] = field(default_factory=list)


def membership_diff(current: set[str], wanted: set[str]) -> tuple[list[str], list[str]]:
    """(joins, leaves), sorted, between who the rule has placed and who it should place."""
    return sorted(wanted - current), sorted(current - wanted)


def entitled_apps(state: str, direct_apps: Iterable[str], groups: Iterable[str], group_apps: Mapping[str, Collection[str]]) -> set[str]:
    """The apps a user is entitled to with these groups (active users only)."""
    if state != State.ACTIVE:
        return set()
    apps = set(direct_apps)
    for group in groups:
        apps.update(group_apps.get(group, ()))
    return apps


def access_delta(
    state: str, direct_apps: Iterable[str], groups_before: set[str], groups_after: set[str], group_apps: Mapping[str, Collection[str]]
) -> tuple[set[str], set[str]]:
    """(apps gained, apps lost) by one user whose groups change; another path keeps access."""
    direct = set(direct_apps)
    before = entitled_apps(state, direct, groups_before, group_apps)
    after = entitled_apps(state, direct, groups_after, group_apps)
    return after - before, before - after


@dataclass(frozen=True)
class Breach:
    app: str
    losing: int
    entitled: int

    @property
    def ratio(self) -> float:
        return self.losing / self.entitled if self.entitled else 1.0


def safeguard_breaches(losses: Iterable[AccessChange], entitled_per_app: Mapping[str, int], threshold: float) -> list[Breach]:
    """Apps that would lose access for more than ``threshold`` of their entitled users."""
    losing: dict[str, int] = {}
    for change in losses:
        losing[change.app] = losing.get(change.app, 0) + 1
    breaches = [Breach(app, n, entitled_per_app.get(app, 0)) for app, n in losing.items()]
    return sorted((b for b in breaches if b.ratio > threshold), key=lambda b: b.app)


def attribute_warnings(read: Collection[str], known: Collection[str]) -> list[str]:
    """What an expression reads of ``user.`` that no profile has and the schema does not declare: most likely a
    typo, which would quietly match nobody (``user.departmnt == "Sales"`` empties a group)."""
    known = sorted(set(known))
    warnings = []
    for name in sorted(set(read) - set(known)):
        close = difflib.get_close_matches(name, known, n=1)
        warnings.append(f"no profile has attribute {name}" + (f"; did you mean {close[0]}?" if close else ""))
    return warnings
