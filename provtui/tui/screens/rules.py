"""Group rules: the list, and an editor that checks the expression and previews the change as you type.

The expression is compiled in a worker a moment after each keystroke and its error
shown under the field, a caret under the offending column.  The preview (who joins,
who leaves, which app access people gain and lose) is the service's own, run in a
worker too, for what the editor holds: for an active rule, what saving would change;
for an inactive one, what saving and activating would.

Only Save (ctrl+s) writes what the editor holds.  Escape with unsaved edits asks,
then puts the saved rule back in the editor.  Activate and Deactivate (ctrl+t) act
on the saved rule, never the draft, and ask first: the dialog shows the service's
check of that very change (``GroupRules.check_change``, the steps ``change`` runs),
who joins and leaves, who gains and loses which app, and whether the safeguard
will hold it.  A held change is reported with where to approve it, not as a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Label, Static
from textual.worker import get_current_worker

from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.expressions.errors import ExpressionError
from provtui.domain.rules import RuleState
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.modals import ChangeModal
from provtui.tui.screens.rule_parts import (
    PREVIEW_PANES,
    caret_line,
    expression_error,
    field_row,
    held_or_result,
    names,
    preview_columns,
    preview_counts,
    rules_page,
    saved_fields,
    say,
)
from provtui.tui.widgets.row_table import Col, RowTable, tone_by
from provtui.tui.widgets.user_detail import MUTED

if TYPE_CHECKING:
    from provtui.service import Service

CHECK_DEBOUNCE = 0.15  # seconds of quiet typing before the expression is compiled
PREVIEW_DEBOUNCE = 0.3  # a preview evaluates the rule over everyone: wait a little longer
STATE_TONES = {"active": "good", "inactive": "muted"}
RULE_COLUMNS = [
    Col("name", "Rule", 8, 20),
    Col("state", "State", 8, 8, tone=tone_by("state", STATE_TONES)),
    Col("groups", "Groups", 8, 24, priority=1),
    Col("members", "Members", 7, 7, right=True, priority=2),
    Col("expr", "Expression", 12, 80, priority=3),
]


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
        self.shown: dict[str, Any] | None = None  # saved_fields() of the rule as last put in the editor

    def compose_body(self) -> ComposeResult:
        yield RowTable(RULE_COLUMNS, row_key=lambda r: r["name"], empty="No rules yet: n makes one", id="rules")
        with Vertical(id="editor"):
            yield Label(id="editor-title", classes="title")
            yield field_row("Name", "name", "the new rule's name", row_id="name-row")
            yield field_row("Expr", "expr", 'e.g. user.department == "Sales"')
            yield Static(id="expr-error", classes="under-field")
            yield field_row("Groups", "groups", "target groups, comma-separated")
            yield field_row("Exclude", "exclude", "logins never matched, comma-separated")
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
        self.query_one("#status", Static).update(self.notice or self._status_text())
        rule = self.rule
        if rule is not None and not self.drafting and saved_fields(rule) != self.shown and self.draft() in (self.shown, saved_fields(rule)):
            self._show_editor(rule)  # changed (here, or elsewhere) under an editor without edits: show it as it is now
        elif rule is not None:
            self._title(rule)
            self.run_preview(debounce=0)  # the directory, or the rule, changed under the preview
        elif self.editing is not None and not self.drafting:  # deleted (here or elsewhere)
            self._show_editor(table.highlighted_row)
        self._permissions()

    def _status_text(self) -> Content:
        rules = self.data["rules"] if self.data else []
        active = sum(1 for r in rules if r["state"] == RuleState.ACTIVE)
        return Content(f"{len(rules)} rule{'' if len(rules) == 1 else 's'} ({active} active) · e edits · held changes wait in Tasks (t)")

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
        if event.row["name"] != self.editing or not self.dirty:  # enter on the rule being edited keeps the edits
            self._show_editor(event.row)
        self.action_edit()

    def _show_editor(self, rule: dict | None) -> None:
        """Fill the editor with ``rule`` (None: empty, for a new rule)."""
        self.editing = None if rule is None else rule["name"]
        self.shown = None if rule is None else saved_fields(rule)
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
            text = Content.assemble(
                ("Rule ", MUTED), (rule["name"], "bold"), "  ", (rule["state"], tone), (f"  {rule['members']:,} members", MUTED)
            )
            if self.dirty:
                text = Content.assemble(text, ("  edited: ctrl+s saves, esc reverts", "$text-warning"))
        self.query_one("#editor-title", Label).update(text)

    def _fields(self) -> dict[str, Any]:
        return {
            "expr": self.query_one("#expr", Input).value,
            "groups": names(self.query_one("#groups", Input).value),
            "exclude": names(self.query_one("#exclude", Input).value),
        }

    def draft(self) -> dict[str, Any]:
        """What the editor holds, comparable with ``saved_fields``."""
        fields = self._fields()
        return {"expr": fields["expr"], "groups": sorted(set(fields["groups"])), "exclude": sorted(set(fields["exclude"]))}

    @property
    def dirty(self) -> bool:
        """The editor holds what is not saved: a new rule with anything typed, or edits to the rule."""
        if self.drafting:
            return any(self.query_one(f"#{field}", Input).value.strip() for field in ("name", "expr", "groups", "exclude"))
        rule = self.rule
        return rule is not None and self.draft() != saved_fields(rule)

    @on(Input.Changed, "#expr")
    def _expression_typed(self) -> None:
        self.check_expression()
        self.run_preview()
        self._title(self.rule)

    @on(Input.Changed, "#groups, #exclude")
    def _targets_typed(self) -> None:
        self.run_preview()
        self._title(self.rule)

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
        say(
            self.query_one("#expr-error", Static),
            None if error is None else caret_line(error, text, round(field.scroll_x), field.content_region.width),
        )

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
            preview = await self.app.call_service(
                self.app.service.rules().preview,
                rule["name"],
                expr=fields["expr"],
                groups=fields["groups"] or None,
                exclude=fields["exclude"],
            )
        except ExpressionError:
            say(problem, None)
            self._show_preview(None, "Preview: fix the expression first")
            return
        except InvalidInput as error:  # a group or login that does not exist
            say(problem, Content.styled(str(error), "$text-error"))
            self._show_preview(None, "Preview: fix the groups or exclusions first")
            return
        warnings = preview.get("warnings") or ()  # a typo in an attribute: it would quietly match nobody
        say(problem, Content.styled("warning: " + "; ".join(warnings), "$text-warning") if warnings else None)
        if rule["state"] == RuleState.ACTIVE:
            when = "If saved"
        else:
            when = "If saved and activated" if self.dirty else "If activated"
        self._show_preview(preview, when)

    def _show_preview(self, preview: dict | None, heading: str) -> None:
        if preview is None:
            self.query_one("#preview-title", Label).update(Content.styled(heading, MUTED))
            for key, _ in PREVIEW_PANES:
                self.query_one(f"#preview-{key}", Static).update("")
            return
        self.query_one("#preview-title", Label).update(Content.assemble((f"{heading}: ", "bold"), preview_counts(preview)))
        for (key, _), (heading_, names_) in zip(PREVIEW_PANES, preview_columns(preview), strict=False):
            self.query_one(f"#preview-{key}", Static).update(Content.assemble((heading_, "bold"), "\n", names_))

    # -- actions ---------------------------------------------------------------------------

    def action_edit(self) -> None:
        self.query_one("#name" if self.drafting else "#expr", Input).focus()

    def action_back(self) -> None:
        """escape: unsaved edits are dropped (asking first) and the saved rule put back, then from a field back
        to the list (a top-level screen: Esc goes no further)."""
        if self.dirty:
            self._ask_discard()
        elif self.drafting:
            self._revert()
        elif isinstance(self.focused, Input):
            self.query_one("#rules", RowTable).focus()
        else:
            super().action_back()

    def _ask_discard(self) -> None:
        rule = self.rule
        if self.drafting or rule is None:
            self.confirm("Discard the new rule", "Discard the new rule? It has not been created.", self._revert, confirm="Discard")
            return

        def text(value: str | list[str]) -> str:
            return value if isinstance(value, str) else ", ".join(value) or "(none)"

        draft, saved = self.draft(), saved_fields(rule)
        lines = [Content.assemble("Rule ", (rule["name"], "bold"), " has edits not saved:")]
        for key, label in (("expr", "Expression"), ("groups", "Groups"), ("exclude", "Exclude")):
            if draft[key] != saved[key]:
                lines += [
                    Content(""),
                    Content.assemble((f"{label} saved: ", MUTED), text(saved[key])),
                    Content.assemble((f"{label} edited: ", MUTED), text(draft[key])),
                ]
        lines += [Content(""), Content("Discard the edits and put the saved rule back in the editor?")]
        self.confirm("Discard edits", Content("\n").join(lines), self._revert, confirm="Discard")

    def _revert(self) -> None:
        """The editor shows the saved rule (a new rule not created is dropped); the list has the focus."""
        table = self.query_one("#rules", RowTable)
        self.drafting = False
        self._show_editor(self.rule or table.highlighted_row)
        table.focus()

    def action_create(self) -> None:
        self.drafting = True
        self._show_editor(None)
        self.query_one("#name", Input).focus()

    def action_save(self) -> None:
        fields = self._fields()
        rules = self.app.service.rules()
        if self.drafting:
            name = self.query_one("#name", Input).value.strip()
            self.act(
                rules.create,
                name,
                groups=fields["groups"],
                expr=fields["expr"],
                exclude=fields["exclude"],
                done=f"rule {name} created, inactive: ctrl+t activates it",
                then=self._created,
            )
        elif self.editing is not None:
            if not self.dirty:
                self.notify("Nothing to save: the editor holds the saved rule", markup=False)
                return
            # no groups typed: keep the rule's
            self._change(
                f"rule {self.editing} saved", self.editing, expr=fields["expr"], groups=fields["groups"] or None, exclude=fields["exclude"]
            )

    def action_set_state(self, state: str) -> None:
        rule = self.rule
        if rule is None or self.drafting:
            return
        self.ask_state(rule["name"], RuleState(state))

    @work(exclusive=True, group="ask", exit_on_error=False)
    async def ask_state(self, name: str, state: RuleState) -> None:
        """Ask before (de)activating the saved rule ``name``, showing the service's check of that change."""
        self.query_one("#status", Static).update(Content.styled(f"Working out what this changes for {name}…", MUTED))
        try:
            check = await self.app.call_service(self.app.service.rules().check_change, name, state=state)
        finally:
            if not get_current_worker().is_cancelled:
                self.query_one("#status", Static).update(self.notice or self._status_text())
        preview = check["preview"]
        verb = "activate" if state == RuleState.ACTIVE else "deactivate"
        groups = ", ".join(check["rule"]["groups"])
        effect = f" puts who matches it in {groups}:" if state == RuleState.ACTIVE else f"'s members leave {groups}:"
        body = [Content.assemble(f"If {verb}d, rule ", (name, "bold"), effect), Content(preview_counts(preview))]
        if self.dirty and self.editing == name:
            body.append(Content.styled("Your unsaved edits are not part of this: cancel, then ctrl+s saves them.", "$text-warning"))
        warning = None
        if check["held"]:
            over = "; ".join(f"{b['app']}: {b['losing']:,} of {b['entitled']:,} entitled users" for b in check["held"])
            warning = Content.assemble(
                ("Above the safeguard: ", "bold"),
                f"more than {check['threshold']:.0%} of an app's users would lose access ({over}). "
                "Confirming holds the change for approval on the Tasks screen (t); nothing changes until it is approved.",
            )
        modal = ChangeModal(
            f"{verb.title()} rule {name}",
            Content("\n").join(body),
            preview_columns(preview, 50),
            warning=warning,
            confirm="Hold for approval" if check["held"] else verb.title(),
            destructive=bool(preview["leaves"] or preview["losses"]),
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._change(f"rule {name} {verb}d", name, shown=preview, state=state)

        self.app.push_screen(modal, answered)

    def _change(self, done: str, name: str, *, shown: dict | None = None, **change: Any) -> None:
        """Change rule ``name`` (a held change is reported, not failed); ``shown``: the preview the admin confirmed."""
        self.notice = None
        self.act(held_or_result(self.app.service.rules().change), name, then=self._changed(done, shown), **change)

    def _changed(self, done: str, shown: dict | None = None) -> Callable[[Any], None]:
        def then(result: Any) -> None:
            if isinstance(result, HeldForConfirmation):
                self._held(result)
                return
            preview = result["preview"]
            if shown is not None and preview != shown:  # the directory changed between the dialog and the change
                self.notify(
                    f"{done}, but the directory had changed since the preview: {preview_counts(preview)}",
                    severity="warning",
                    markup=False,
                    timeout=15,
                )
                return
            self.notify(f"{done}: {len(preview['joins']):,} joined, {len(preview['leaves']):,} left", markup=False)

        return then

    def _held(self, held: HeldForConfirmation) -> None:
        """A change the safeguard held: said, and kept on the status line with where to approve it."""
        self.notify(
            f"{held}\n\nApprove or reject it on the Tasks screen (t).",
            title="Held for approval",
            severity="warning",
            markup=False,
            timeout=15,
        )
        self.notice = Content.styled(
            f"Held ({held.details.get('held')}) for approval: {held.details.get('losses', 0):,} would lose access · see Tasks (t)",
            "$text-warning",
        )  # fits 80 columns
        self.query_one("#status", Static).update(self.notice)

    def _created(self, rule: dict) -> None:
        self.drafting = False
        self.wanted = rule["name"]  # selected when the list has re-read (act refreshes every screen)
        self.query_one("#rules", RowTable).focus()

    def action_delete(self) -> None:
        rule = self.rule
        if rule is None:
            return
        leaving = f"Its {rule['members']:,} members leave {', '.join(rule['groups'])}" if rule["members"] else "It has no members"
        self.confirm(
            "Delete rule",
            f"Delete rule {rule['name']}?\n\n{leaving}, and lose what those groups give them.",
            lambda: self.act(
                held_or_result(self.app.service.rules().delete),
                rule["name"],
                then=lambda result: (
                    self._held(result)
                    if isinstance(result, HeldForConfirmation)
                    else self.notify(f"rule {rule['name']} deleted", markup=False)
                ),
            ),
            confirm="Delete",
        )
