"""Derived entitlement: who should have an account in which app, and why.

Entitlement is never stored as truth.  A user is entitled to an app iff the user
is active and there is at least one path: a direct assignment, or membership of
a group assigned to the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from provtui.domain.lifecycle import State


def direct_path() -> str:
    return "direct"


def group_path(group_name: str) -> str:
    return f"group:{group_name}"


def entitlement_paths(
    direct_apps: Iterable[str], groups: Mapping[str, str], group_apps: Mapping[str, Iterable[str]]
) -> dict[str, list[str]]:
    """App id -> the paths that grant it.

    ``direct_apps``: apps assigned to the user directly; ``groups``: the user's
    groups, id -> name; ``group_apps``: group id -> apps assigned to that group.
    """
    paths: dict[str, list[str]] = {}
    for app in direct_apps:
        paths.setdefault(app, []).append(direct_path())
    for group_id, name in sorted(groups.items(), key=lambda item: item[1]):
        for app in group_apps.get(group_id, ()):
            paths.setdefault(app, []).append(group_path(name))
    return paths


_ACTIVE = State.ACTIVE.value  # (an enum member's lookup costs more than the comparison; this runs for every planned key)


def is_entitled(user_state: str, paths: list[str]) -> bool:
    return user_state == _ACTIVE and bool(paths)
