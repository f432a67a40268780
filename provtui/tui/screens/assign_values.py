"""Assigning an app with its values (``role=admin``) and, to a group, a priority: the app page's,
the group page's and the user page's shared flow, as ``provtui app assign --set KEY=VALUE --priority N``."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from provtui.domain.errors import InvalidInput
from provtui.domain.users import parse_assignments
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.modals import InputModal

if TYPE_CHECKING:
    from provtui.service import Service

VALUES_NOTE = "KEY=VALUE pairs, space-separated (quote a value with spaces); KEY= clears one. Empty: no values."
PRIORITY_NOTE = "Lower wins where several groups give a user this app. Empty: as it is (a new one: after those with one)."


def values_text(values: dict[str, Any]) -> str:
    """Values as the modal takes them back: ``role=admin 'team=Core Infra'``."""
    return " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(values.items()))


def parse_values(text: str) -> dict[str, str]:
    try:
        return parse_assignments(shlex.split(text))
    except ValueError as error:  # an unclosed quote
        raise InvalidInput("values", f"{error}: {text!r}") from None
    except InvalidInput as error:
        raise InvalidInput("values", error.message) from None


def parse_priority(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput("priority", f"{text!r} is not a whole number, 0 or more (lower wins)")
    return int(text)


def ask_and_assign(
    screen: BaseScreen, app: str, *, login: str | None = None, group: str | None = None, current: dict | None = None
) -> None:
    """Ask for the values (and a group's priority), then assign; ``current``: the assignment's values and
    priority to start from when it exists.  Typed text is checked by the service's worker call, which
    names the field at fault and writes nothing."""
    current = current or {}
    subject = login or group

    def assign(service: Service, values: str, priority: str) -> bool:
        return service.assign(app, login=login, group=group, values=parse_values(values), priority=parse_priority(priority))

    def run(values: str, priority: str = "") -> None:
        screen.act(
            assign,
            screen.app.service,
            values,
            priority,
            done=lambda changed: f"{app} assigned to {subject}" if changed else f"{app}: nothing changed",
        )

    def values_typed(values: str | None) -> None:
        if values is None:
            return
        if group is None:
            run(values)
            return
        priority = current.get("priority")
        screen.app.push_screen(
            InputModal(
                f"{app} for {group}: priority",
                value="" if priority is None else str(priority),
                placeholder="a whole number, e.g. 10",
                note=PRIORITY_NOTE,
            ),
            lambda typed: typed is not None and run(values, typed),
        )

    screen.app.push_screen(
        InputModal(
            f"{app} for {subject}: values",
            value=values_text(current.get("values") or {}),
            placeholder="role=admin region=eu",
            note=VALUES_NOTE,
        ),
        values_typed,
    )
