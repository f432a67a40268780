"""The rules screen's parts that hold no screen state: the page read, the editor's fields and checks, the
preview's columns and the caret under an expression's error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Input, Label, Static

from provtui.domain.errors import HeldForConfirmation
from provtui.domain.expressions.errors import ExpressionError
from provtui.domain.roles import Action, Scope
from provtui.tui.widgets.user_detail import MUTED

if TYPE_CHECKING:
    from provtui.service import Service

PREVIEW_NAMES = 200  # names listed per preview column; the count says how many in all
PREVIEW_PANES = (("joins", "Join"), ("leaves", "Leave"), ("gains", "Gain access"), ("losses", "Lose access"))


def rules_page(service: Service) -> dict:
    """The rules, and what the actor may change: one locked read."""
    group_ids = {g["name"]: g["id"] for g in service.list_groups()}

    def may(names: list[str]) -> bool:
        return service.may(Action.MANAGE_RULES, Scope(groups=frozenset(group_ids[n] for n in names if n in group_ids)))

    rules = [{**rule, "may": may(rule["groups"])} for rule in service.rules().list()]
    return {"rules": rules, "may_create": any(may([name]) for name in group_ids)}


def expression_error(service: Service, text: str) -> ExpressionError | None:
    """Why ``text`` is not a rule's expression, or None."""
    try:
        service.rules().compiled(text, field="expression")
    except ExpressionError as error:
        return error
    return None


def names(text: str) -> list[str]:
    """A comma-separated field's entries."""
    return [part.strip() for part in text.split(",") if part.strip()]


def saved_fields(rule: dict) -> dict[str, Any]:
    """What the editor holds when it holds ``rule`` unchanged, as ``RulesScreen.draft`` compares it."""
    return {"expr": rule["expr"], "groups": sorted(rule["groups"]), "exclude": sorted(rule["exclude"])}


def preview_columns(preview: dict, limit: int = PREVIEW_NAMES) -> list[tuple[str, Content]]:
    """A preview's four lists (joins, leaves, gains, losses) as (heading with its count, names) columns."""
    columns = []
    for key, label in PREVIEW_PANES:
        items = preview[key]
        lines = [c if isinstance(c, str) else f"{c['user']} {c['app']}" for c in items[:limit]]
        if len(items) > limit:
            lines.append(f"… {len(items) - limit:,} more")
        columns.append((f"{label} ({len(items):,})", Content("\n".join(lines)) if lines else Content.styled("nobody", MUTED)))
    return columns


def preview_counts(preview: dict) -> str:
    return " · ".join(f"{len(preview[key]):,} {label.lower()}" for key, label in PREVIEW_PANES)


def say(widget: Static, content: Content | None) -> None:
    """Show ``content`` in a line that takes no room when there is nothing to say."""
    widget.display = content is not None
    widget.update(content or "")


def held_or_result(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, answering with the HeldForConfirmation instead of raising it: a held change is an outcome."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HeldForConfirmation as held:
            return held

    return call


def caret_line(error: ExpressionError, value: str, scrolled: int, width: int) -> Content:
    """The caret under the error's column of the field (as it is scrolled), then why; the error's own excerpt
    when that column is out of view or the text has several lines."""
    pad = cell_len(value[: error.offset]) - scrolled
    if "\n" in value or not 0 <= pad < width:
        return Content.assemble((error.caret(), "$text-error"), "\n", (error.message, "$text-error"))
    return Content.assemble((" " * pad + "^", "bold $text-error"), "\n", (error.message, "$text-error"))


def field_row(label: str, input_id: str, placeholder: str, *, row_id: str | None = None) -> Horizontal:
    """A labelled one-line field of the editor."""
    return Horizontal(
        Label(label, classes="field-label"), Input(placeholder=placeholder, id=input_id, compact=True), id=row_id, classes="field"
    )
