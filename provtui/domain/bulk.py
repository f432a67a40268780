"""Bulk changes as a request: which action, over whom (named, or a filter), with which groups or app.

The request is checked on its own here, each fault naming the option an admin typed; the names it gives
are looked up, and the change planned and made, by the service (provtui.service.bulk).
"""

from __future__ import annotations

from dataclasses import dataclass

from provtui.domain.errors import InvalidInput
from provtui.domain.text import MAX_LOGIN, MAX_NAME, check_text

ACTIONS = ("move", "assign", "unassign", "suspend", "deactivate")
# Why a person is skipped: nothing to do, a lifecycle step their state does not allow, the admin's role, or
# another refusal of the step (a membership a rule holds, say).
UNCHANGED, LIFECYCLE, NOT_ALLOWED, REFUSED = "unchanged", "lifecycle", "not-allowed", "refused"
# Which options each action takes (CLI names: the service's errors name what the admin typed).
_OPTIONS = {"move": ("--group", "--to-group"), "assign": ("--app",), "unassign": ("--app",), "suspend": (), "deactivate": ()}


@dataclass(frozen=True)
class BulkRequest:
    action: str
    logins: tuple[str, ...]  # the people named (empty: the filter chooses)
    where: str | None  # a condition in the rules' expression language
    group: str | None  # move: the group they leave
    to_group: str | None  # move: the group they join
    app: str | None  # assign, unassign


def bulk_request(
    action: str, users: list[str] | None, where: str | None, group: str | None, to_group: str | None, app: str | None
) -> BulkRequest:
    """The request checked on its own (the names it gives are looked up in the change): each fault names its option."""
    if action not in ACTIONS:
        raise InvalidInput("ACTION", f"unknown bulk action {action!r} (actions: {', '.join(ACTIONS)})")
    if (users is None) == (where is None):
        raise InvalidInput("--users", "choose the people with --users LOGIN,... or --filter EXPR (one of the two)")
    logins = tuple(check_text("--users", login, MAX_LOGIN).strip() for login in users or () if login.strip())
    if users is not None and not logins:
        raise InvalidInput("--users", "name at least one user")
    given = {"--group": group, "--to-group": to_group, "--app": app}
    for option, value in given.items():
        check_text(option, value or "", MAX_NAME)
        if option in _OPTIONS[action] and not value:
            raise InvalidInput(option, f"bulk {action} needs {option}")
        if option not in _OPTIONS[action] and value is not None:
            takes = [a for a, options in _OPTIONS.items() if option in options]
            raise InvalidInput(option, f"is for bulk {' and '.join(takes)}, not {action}")
    if action == "move" and group == to_group:
        raise InvalidInput("--to-group", f"{to_group} is the group they leave: choose another")
    return BulkRequest(action, logins, where, group, to_group, app)
