"""Group rules: the list, and an editor that checks the expression and previews the change as you type.

The expression is compiled in a worker a moment after each keystroke and its error
shown under the field, a caret under the offending column.  The preview (who joins,
who leaves, which app access people gain and lose) is the service's own, run in a
worker too, for what the editor holds: for an active rule, what saving would change;
for an inactive one, what activating would.  Save, Activate and Deactivate send
what the editor holds; a change the safeguard holds is reported with where to
approve it, not as a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Label, Static

from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.expressions import ExpressionError
from provtui.domain.roles import Action, Scope
from provtui.domain.rules import RuleState
from provtui.service import Service
from provtui.tui.screens.base import BaseScreen
from provtui.tui.widgets.row_table import Col, RowTable, tone_by
from provtui.tui.widgets.user_detail import MUTED

CHECK_DEBOUNCE = 0.15  # seconds of quiet typing before the expression is compiled
PREVIEW_DEBOUNCE = 0.3  # a preview evaluates the rule over everyone: wait a little longer
PREVIEW_NAMES = 200  # names listed per preview column; the count says how many in all
STATE_TONES = {"active": "good", "inactive": "muted"}
RULE_COLUMNS = [
    Col("name", "Rule", 8, 20),
    Col("state", "State", 8, 8, tone=tone_by("state", STATE_TONES)),
    Col("groups", "Groups", 8, 24, priority=1),
    Col("members", "Members", 7, 7, right=True, priority=2),
    Col("expr", "Expression", 12, 80, priority=3),
]
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


def _field(label: str, input_id: str, placeholder: str, *, row_id: str | None = None) -> Horizontal:
    """A labelled one-line field of the editor."""
    return Horizontal(Label(label, classes="field-label"), Input(placeholder=placeholder, id=input_id, compact=True),
                      id=row_id, classes="field")


class RulesScreen(BaseScreen):
    CSS_PATH = "rules.tcss"
    NAV = "rules"
    BINDINGS = [
        Binding("e", "edit", "Edit", id="rules.edit"),
        Binding("ctrl+s", "save", "Save", id="rules.save"),
        Binding("ctrl+t", "set_state('active')", "Activate", id="rules.activate"),
        Binding("ctrl+t", "set_state('inactive')", "Deactivate", id="rules.deactivate"),
        Binding("n", "create", "New rule", id="rules.create"),
        Binding("x", "delete", "Delete", id="rules.delete"),
        Binding("escape", "back", "Back", id="rules.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.editing: str | None = None  # the rule in the editor; None: a new one (or none at all)
        self.drafting = False  # the editor holds a rule not created yet
        self.wanted: str | None = None  # a rule to select once the list has loaded (from the palette)
        self.expression_problem: ExpressionError | None = None
        self.notice: Content | None = None  # said in the status line until the next change (a held change)

    def compose_body(self) -> ComposeResult:
        yield RowTable(RULE_COLUMNS, row_key=lambda r: r["name"], empty="No rules yet: n makes one", id="rules")
        with Vertical(id="editor"):
            yield Label(id="editor-title", classes="title")
            yield _field("Name", "name", "the new rule's name", row_id="name-row")
            yield _field("Expr", "expr", 'e.g. user.department == "Sales"')
            yield Static(id="expr-error", classes="under-field")
            yield _field("Groups", "groups", "target groups, comma-separated")
            yield _field("Exclude", "exclude", "logins never matched, comma-separated")
            yield Static(id="problem", classes="under-field")
        yield Label(id="preview-title", classes="title")
        with Horizontal(id="preview"):
            for key, _ in PREVIEW_PANES:
                with VerticalScroll(id=f"pane-{key}", classes="pane"):
                    yield Static(id=f"preview-{key}")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one("#rules", RowTable).focus()
        self._show_editor(None)

    # -- loading -----------------------------------------------------------------------

    def read(self, service: Service) -> dict:
        return rules_page(service)

    def show(self, data: dict) -> None:
        table = self.query_one("#rules", RowTable)
        table.set_rows(data["rules"])
        if self.wanted is not None:
            self.select_rule(self.wanted)
        active = sum(1 for r in data["rules"] if r["state"] == RuleState.ACTIVE)
        count = len(data["rules"])
        self.query_one("#status", Static).update(self.notice or Content(
            f"{count} rule{'' if count == 1 else 's'} ({active} active) · e edits · held changes wait in Tasks (t)"))
        rule = self.rule
        if rule is not None:
            self._title(rule)
            self.run_preview(debounce=0)  # the directory, or the rule, changed under the preview
        elif self.editing is not None and not self.drafting:  # deleted (here or elsewhere)
            self._show_editor(table.highlighted_row)
        self._permissions()

    def select_rule(self, name: str) -> None:
        """Put the cursor (and the editor) on ``name``; remembered until the list has loaded."""
        table = self.query_one("#rules", RowTable)
        index = next((i for i, r in enumerate(table.rows) if r["name"] == name), None)
        if index is None:
            self.wanted = name if self.data is None else None
            return
        self.wanted = None
        table.move_cursor(index, center=True)
        self._show_editor(table.rows[index])

    @property
    def rule(self) -> dict | None:
        """The rule in the editor, as last read."""
        if self.editing is None or self.data is None:
            return None
        return next((r for r in self.data["rules"] if r["name"] == self.editing), None)

    def _permissions(self) -> None:
        rule = self.rule
        on_rule = None if rule is None else rule["may"]
        self.allowed = {
            "create": bool(self.data and self.data["may_create"]),
            "save": (self.data is not None and self.data["may_create"]) if self.drafting else on_rule,
            "edit": None if rule is None and not self.drafting else True,
            "delete": on_rule,
        }
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.focused, Input)
        if action in ("create", "delete", "edit") and typing:
            return False  # the letter goes into the field
        if action == "set_state":
            rule = self.rule
            if rule is None or self.drafting or parameters[:1] == (rule["state"],):
                return False
            return True if rule["may"] else None
        return super().check_action(action, parameters)

    # -- the editor --------------------------------------------------------------------

    @on(RowTable.RowHighlighted, "#rules")
    def _rule_highlighted(self, event: RowTable.RowHighlighted) -> None:
        if not self.drafting:
            self._show_editor(event.row)

    @on(RowTable.RowSelected, "#rules")
    def _rule_selected(self, event: RowTable.RowSelected) -> None:
        self._show_editor(event.row)
        self.action_edit()

    def _show_editor(self, rule: dict | None) -> None:
        """Fill the editor with ``rule`` (None: empty, for a new rule)."""
        self.editing = None if rule is None else rule["name"]
        self.query_one("#name-row").display = self.drafting
        self.query_one("#name", Input).value = ""
        self.query_one("#expr", Input).value = "" if rule is None else rule["expr"]
        self.query_one("#groups", Input).value = "" if rule is None else ", ".join(rule["groups"])
        self.query_one("#exclude", Input).value = "" if rule is None else ", ".join(rule["exclude"])
        say(self.query_one("#problem", Static), None)
        self._title(rule)
        self.check_expression(debounce=0)
        self.run_preview(debounce=0)
        if self.data is not None:
            self._permissions()

    def _title(self, rule: dict | None) -> None:
        if self.drafting:
            text = Content.assemble(("New rule", "bold"), ("  ctrl+s creates it, inactive: preview, then activate", MUTED))
        elif rule is None:
            text = Content.styled("No rule chosen", MUTED)
        else:
            tone = "$text-success" if rule["state"] == RuleState.ACTIVE else MUTED
            text = Content.assemble(("Rule ", MUTED), (rule["name"], "bold"), "  ", (rule["state"], tone),
                                    (f"  {rule['members']:,} members", MUTED))
        self.query_one("#editor-title", Label).update(text)

    def _fields(self) -> dict[str, Any]:
        return {"expr": self.query_one("#expr", Input).value, "groups": names(self.query_one("#groups", Input).value),
                "exclude": names(self.query_one("#exclude", Input).value)}

    @on(Input.Changed, "#expr")
    def _expression_typed(self) -> None:
        self.check_expression()
        self.run_preview()

    @on(Input.Changed, "#groups, #exclude")
    def _targets_typed(self) -> None:
        self.run_preview()

    @on(Input.Submitted, "#name, #expr, #groups, #exclude")
    def _next_field(self) -> None:
        self.focus_next()

    @work(exclusive=True, group="check", exit_on_error=False)
    async def check_expression(self, debounce: float = CHECK_DEBOUNCE) -> None:
        # exclusive: a newer keystroke cancels this check while it waits or runs.
        await asyncio.sleep(debounce)
        field = self.query_one("#expr", Input)
        text = field.value
        error = await self.app.call_service(expression_error, self.app.service, text) if text.strip() else None
        self.expression_problem = error
        say(self.query_one("#expr-error", Static),
            None if error is None else caret_line(error, text, round(field.scroll_x), field.content_region.width))

    @work(exclusive=True, group="preview", exit_on_error=False)
    async def run_preview(self, debounce: float = PREVIEW_DEBOUNCE) -> None:
        await asyncio.sleep(debounce)
        problem = self.query_one("#problem", Static)
        rule = self.rule
        if rule is None:
            self._show_preview(None, "Save the new rule to preview it" if self.drafting else "")
            return
        fields = self._fields()
        try:
            preview = await self.app.call_service(self.app.service.rules().preview, rule["name"], expr=fields["expr"],
                                                  groups=fields["groups"] or None, exclude=fields["exclude"])
        except ExpressionError:
            say(problem, None)
            self._show_preview(None, "Preview: fix the expression first")
            return
        except InvalidInput as error:  # a group or login that does not exist
            say(problem, Content.styled(str(error), "$text-error"))
            self._show_preview(None, "Preview: fix the groups or exclusions first")
            return
        say(problem, None)
        when = "If saved" if rule["state"] == RuleState.ACTIVE else "If activated"
        self._show_preview(preview, when)

    def _show_preview(self, preview: dict | None, heading: str) -> None:
        if preview is None:
            self.query_one("#preview-title", Label).update(Content.styled(heading, MUTED))
            for key, _ in PREVIEW_PANES:
                self.query_one(f"#preview-{key}", Static).update("")
            return
        counts = [f"{len(preview[key]):,} {label.lower()}" for key, label in PREVIEW_PANES]
        self.query_one("#preview-title", Label).update(
            Content.assemble((f"{heading}: ", "bold"), " · ".join(counts)))
        for key, label in PREVIEW_PANES:
            items = preview[key]
            lines = [c if isinstance(c, str) else f"{c['user']} {c['app']}" for c in items[:PREVIEW_NAMES]]
            if len(items) > PREVIEW_NAMES:
                lines.append(f"… {len(items) - PREVIEW_NAMES:,} more")
            body = Content.assemble((f"{label} ({len(items):,})", "bold"), "\n",
                                    "\n".join(lines) if lines else Content.styled("nobody", MUTED))
            self.query_one(f"#preview-{key}", Static).update(body)

    # -- actions ---------------------------------------------------------------------------

    def action_edit(self) -> None:
        self.query_one("#name" if self.drafting else "#expr", Input).focus()

    def action_back(self) -> None:
        """escape: from a field back to the list (dropping a new rule not saved), else the previous screen."""
        table = self.query_one("#rules", RowTable)
        if self.drafting:
            self.drafting = False
            self._show_editor(table.highlighted_row)
            table.focus()
        elif isinstance(self.focused, Input):
            table.focus()
        else:
            super().action_back()

    def action_create(self) -> None:
        self.drafting = True
        self._show_editor(None)
        self.query_one("#name", Input).focus()

    def action_save(self) -> None:
        fields = self._fields()
        rules = self.app.service.rules()
        if self.drafting:
            name = self.query_one("#name", Input).value.strip()
            self.act(rules.create, name, groups=fields["groups"], expr=fields["expr"], exclude=fields["exclude"],
                     done=f"rule {name} created, inactive: ctrl+t activates it", then=self._created)
        elif self.editing is not None:
            self._change(f"rule {self.editing} saved", **fields)

    def action_set_state(self, state: str) -> None:
        if self.editing is None:
            return
        verb = "activated" if state == RuleState.ACTIVE else "deactivated"
        self._change(f"rule {self.editing} {verb}", state=RuleState(state), **self._fields())

    def _change(self, done: str, **change: Any) -> None:
        """A change to the rule in the editor, as the editor holds it (a held change is reported, not failed)."""
        assert self.editing is not None
        self.notice = None
        change["groups"] = change["groups"] or None  # no groups typed: keep the rule's
        self.act(held_or_result(self.app.service.rules().change), self.editing, then=self._changed(done), **change)

    def _changed(self, done: str) -> Callable[[Any], None]:
        def then(result: Any) -> None:
            if isinstance(result, HeldForConfirmation):
                self.notify(f"{result}\n\nApprove or reject it on the Tasks screen (t).", title="Held for approval",
                            severity="warning", markup=False, timeout=15)
                self.notice = Content.styled(
                    f"Held ({result.details.get('held')}): {result.details.get('losses', 0):,} would lose access"
                    " · approve or reject it on the Tasks screen (t)", "$text-warning")
                self.query_one("#status", Static).update(self.notice)
                return
            preview = result["preview"]
            self.notify(f"{done}: {len(preview['joins']):,} joined, {len(preview['leaves']):,} left", markup=False)

        return then

    def _created(self, rule: dict) -> None:
        self.drafting = False
        self.wanted = rule["name"]  # selected when the list has re-read (act refreshes every screen)
        self.query_one("#rules", RowTable).focus()

    def action_delete(self) -> None:
        rule = self.rule
        if rule is None:
            return
        leaving = f"Its {rule['members']:,} members leave {', '.join(rule['groups'])}" if rule["members"] else "It has no members"
        self.confirm("Delete rule", f"Delete rule {rule['name']}?\n\n{leaving}, and lose what those groups give them.",
                     lambda: self.act(self.app.service.rules().delete, rule["name"], done=f"rule {rule['name']} deleted"),
                     confirm="Delete")
