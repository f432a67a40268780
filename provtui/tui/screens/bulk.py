"""The bulk dialog: one change (move, assign, unassign, suspend or deactivate) for several people at once.

The directory opens it on the people selected (or those its search shows).  The action and its target are
chosen here; as soon as they are, the service previews the change (``bulk_change(..., preview=True)``, the
very path that applies it): how many people change, who is skipped and why, the accounts they lose.
``y`` applies it (``confirm=True``: the admin has seen the preview) and the dialog closes with the result,
which the directory reports.  A bad choice is shown here, naming the field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, Static

from provtui.domain.bulk import ACTIONS, NOT_ALLOWED
from provtui.domain.errors import InvalidInput, NotAllowed, ProvtuiError
from provtui.tui.screens.modals import Dialog
from provtui.tui.text import shown

if TYPE_CHECKING:
    from provtui.service import Service

MUTED, LOSS, GAIN, WARN = "$text-muted", "$text-error", "$text-success", "$text-warning"
SHOWN_AT_MOST = 100  # people listed in the preview (the counts cover everyone): a 50,000-person list is no read
PEOPLE_LINE = 60  # cells of logins on the "People" line
ACTION_TEXT = {
    "move": "Move from one group to another",
    "assign": "Assign an app directly",
    "unassign": "Unassign a direct app",
    "suspend": "Suspend (accounts deactivated)",
    "deactivate": "Deactivate (deprovision)",
}
# The service names the options a CLI user types; the dialog's fields are these (label, widget id).
FIELDS = {
    "ACTION": ("Action", "action"),
    "--group": ("Leave", "group"),
    "--to-group": ("Join", "to_group"),
    "--app": ("App", "app"),
    "--users": ("People", None),
}


def bulk_choices(service: Service) -> dict[str, list[str]]:
    """What the targets can be: provtui's own groups (a source's or an app's membership is kept there), the apps."""
    return {
        "groups": [g["name"] for g in service.list_groups() if g.get("kind", "provtui") == "provtui"],
        "apps": [a["name"] for a in service.list_apps()],
    }


def target_text(plan: dict[str, Any]) -> str:
    action = plan["action"]
    if action == "move":
        return f"Move from {shown(plan['group'])} to {shown(plan['to_group'])}"
    if action in ("assign", "unassign"):
        return f"{action.title()} {shown(plan['app'])}"
    return action.title()


def people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def result_text(plan: dict[str, Any]) -> str:
    """The directory's word once a bulk change is done."""
    counts = plan["counts"]
    skipped = f", {counts['skipped']:,} skipped" if counts["skipped"] else ""
    lost = f"; {counts['losses']:,} app accesses lost" if counts["losses"] else ""
    return f"{target_text(plan)}: {people(counts['changed'])} changed{skipped}{lost}. Provisioning follows."


def person_text(person: dict[str, Any], plan: dict[str, Any]) -> Content:
    """What changes for one person: state, groups (besides the move's own, which the heading names: a rule's
    group may follow), then the apps gained and lost."""
    parts: list[Content] = []
    if person["state"] != person["state_after"]:
        parts.append(Content(f"{person['state']} → {person['state_after']}"))
    also = "also " if plan["action"] == "move" else ""
    for verb, groups, own in (("leaves", person["leaves"], plan["group"]), ("joins", person["joins"], plan["to_group"])):
        if others := [shown(g) for g in groups if g != own]:
            parts.append(Content(f"{also}{verb} {', '.join(others)}"))
    if person["gains"]:
        parts.append(Content.styled("+ " + ", ".join(map(shown, person["gains"])), GAIN))
    if person["losses"]:
        parts.append(Content.styled("− " + ", ".join(map(shown, person["losses"])), LOSS))
    if not parts:  # the membership or the assignment changes, but no access: another path gives the same
        done = {"move": "moved", "assign": "assigned", "unassign": "unassigned"}.get(plan["action"], "changed")
        return Content.styled(f"{done}; no access changes", MUTED)
    return Content(" · ").join(parts)


def skip_text(skip: dict[str, str], plan: dict[str, Any]) -> Content:
    """Why one person is skipped (the service's reason; a refusal by the admin's role said so)."""
    return Content.assemble(shown(skip["reason"]), ("  (not allowed)", WARN) if skip["why"] == NOT_ALLOWED else "")


def plan_text(plan: dict[str, Any]) -> Content:
    """The preview: the counts, the accounts lost and gained (per app), whoever is skipped and why, then each
    person changed (the skipped first: fewer, and what the admin must notice before applying)."""
    counts = plan["counts"]
    lines: list[Content] = [
        Content.assemble(
            (target_text(plan), "bold"),
            f": {counts['changed']:,} of {people(counts['selected'])} change",
            (f", {counts['skipped']:,} skipped", WARN if counts["skipped"] else MUTED),
        )
    ]
    for label, key, style in (("Access lost: ", "losses", LOSS), ("Access gained: ", "gains", GAIN)):
        apps = Counter(app for person in plan["changed"] for app in person[key])
        if apps:
            lines.append(
                Content.assemble((label, f"bold {style}"), ", ".join(f"{shown(a)} ({people(n)})" for a, n in sorted(apps.items())))
            )
    for breach in plan["safeguard"]:
        lines.append(
            Content.styled(
                f"Safeguard: {shown(breach['app'])} loses {breach['losing']:,} of its {breach['entitled']:,} active users "
                "(applying needs the role that approves held changes)",
                WARN,
            )
        )
    width = min(16, max((len(p["login"]) for p in [*plan["changed"], *plan["skipped"]]), default=0))
    for heading, rows, text in (("Skipped", plan["skipped"], skip_text), ("Changes", plan["changed"], person_text)):
        if not rows:
            continue
        lines += [Content(""), Content.styled(heading, "bold")]
        lines += [Content.assemble(shown(row["login"]).ljust(width), "  ", text(row, plan)) for row in rows[:SHOWN_AT_MOST]]
        if len(rows) > SHOWN_AT_MOST:
            lines.append(Content.styled(f"… and {len(rows) - SHOWN_AT_MOST:,} more", MUTED))
    return Content("\n").join(lines)


def people_text(logins: Sequence[str]) -> str:
    """As many logins as fit one line, then how many more."""
    text = ""
    for index, login in enumerate(logins):
        more = f" … and {len(logins) - index:,} more"
        candidate = f"{text}, {shown(login)}" if text else shown(login)
        if len(candidate) + len(more) > PEOPLE_LINE and index:
            return text + more
        text = candidate
    return text


class BulkModal(Dialog, ModalScreen[dict[str, Any] | None]):
    """Choose a bulk change for ``logins``, see its preview, apply it with y; returns the result, None if cancelled.

    Keys: tab moves between the fields (enter opens one, type to jump, enter chooses), y applies the change
    previewed, pgup/pgdn scroll the preview, esc cancels (a field's open list first)."""

    # modals.tcss is read with the app's (provtui.tui.app); this dialog's own rules are in bulk.tcss
    CSS_PATH = ["modals.tcss", "bulk.tcss"]
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="bulk.cancel"),
        Binding("y", "confirm", "Apply", id="bulk.confirm"),
        Binding("pageup", "scroll_preview('page_up')", "Scroll up", show=False),
        Binding("pagedown", "scroll_preview('page_down')", "Scroll down", show=False),
    ]

    def __init__(self, logins: Sequence[str], who: str) -> None:
        super().__init__()
        self.logins = list(logins)
        self._who = who
        self._previewed: tuple[dict[str, Any], dict[str, Any]] | None = None  # (request, its preview)
        self._applying = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm bulk") as dialog:
            dialog.border_title = f"Bulk change · {self._who}"
            dialog.border_subtitle = "tab next · enter opens · pgdn scrolls · y apply · esc cancel"
            with Horizontal(classes="field"):
                yield Label("People", classes="field-label")
                yield Static(people_text(self.logins), id="people")
            with Horizontal(classes="field"):
                yield Label("Action", classes="field-label")
                yield Select([(ACTION_TEXT[a], a) for a in ACTIONS], prompt="Choose what to do", id="action", compact=True)
            with Horizontal(classes="field", id="groups-field"):
                yield Label("Leave", classes="field-label")
                yield Select([], prompt="group to leave", id="group", compact=True)
                yield Label("Join", classes="field-label join")
                yield Select([], prompt="group to join", id="to_group", compact=True)
            with Horizontal(classes="field", id="app-field"):
                yield Label("App", classes="field-label")
                yield Select([], prompt="app", id="app", compact=True)
            yield Static(id="error")
            with VerticalScroll(id="preview", can_focus=False):
                yield Static(Content.styled("Choose an action: the change is previewed here before anything is done.", MUTED), id="plan")
            with Horizontal(id="buttons"):
                yield Button("Apply (y)", variant="error", id="confirm", disabled=True)
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#groups-field").display = False
        self.query_one("#app-field").display = False
        self.query_one("#error").display = False
        self.query_one("#action", Select).focus()
        self.run_worker(self._load_choices(), group="bulk-choices", exit_on_error=False)

    async def _load_choices(self) -> None:
        choices = await self.app.call_service(bulk_choices, self.app.service)
        for field in ("group", "to_group"):
            self.query_one(f"#{field}", Select).set_options([(shown(g), g) for g in choices["groups"]])
        self.query_one("#app", Select).set_options([(shown(a), a) for a in choices["apps"]])

    # -- choosing ----------------------------------------------------------------------------

    def _value(self, field: str) -> str | None:
        select = self.query_one(f"#{field}", Select)
        return None if select.is_blank() else str(select.value)

    def request(self) -> dict[str, Any] | None:
        """The bulk_change arguments chosen so far; None until the action and its target are."""
        action = self._value("action")
        if action is None:
            return None
        targets = {"move": ("group", "to_group"), "assign": ("app",), "unassign": ("app",)}.get(action, ())
        values = {field: self._value(field) for field in targets}
        if None in values.values():
            return None
        return {"action": action, "users": self.logins, **values}

    @on(Select.Changed)
    def _changed(self, event: Select.Changed) -> None:
        action = self._value("action")
        self.query_one("#groups-field").display = action == "move"
        self.query_one("#app-field").display = action in ("assign", "unassign")
        if event.select.id == "action" and action is not None:  # on to the action's first target, if any
            target = {"move": "#group", "assign": "#app", "unassign": "#app"}.get(action)
            if target is not None:
                self.query_one(target, Select).focus()
        elif event.select.id == "group" and self._value("to_group") is None:
            self.query_one("#to_group", Select).focus()
        self._preview()

    def _preview(self) -> None:
        self._show_error(None)
        self._previewed = None
        self.query_one("#confirm", Button).disabled = True
        request = self.request()
        if request is None:
            missing = {"move": "the group they leave and the one they join", "assign": "the app", "unassign": "the app"}
            action = self._value("action")
            hint = f"Choose {missing[action]}." if action in missing else "Choose an action."
            self.query_one("#plan", Static).update(Content.styled(hint, MUTED))
            return
        self.query_one("#plan", Static).update(Content.styled(f"Previewing for {people(len(self.logins))}…", MUTED))
        self.run_worker(self._run_preview(request), exclusive=True, group="bulk-preview", exit_on_error=False)

    async def _run_preview(self, request: dict[str, Any]) -> None:
        try:
            plan = await self.app.call_service(self.app.service.bulk_change, **request, preview=True)
        except ProvtuiError as error:
            self._show_error(error)
            return
        if request != self.request():  # changed while the service worked: a newer preview is on its way
            return
        self._previewed = (request, plan)
        self.query_one("#plan", Static).update(plan_text(plan))
        self.query_one("#preview", VerticalScroll).scroll_home(animate=False)
        self.query_one("#confirm", Button).disabled = not plan["counts"]["changed"]

    def _show_error(self, error: ProvtuiError | None) -> None:
        """Show why the service refused, naming the field; None clears it."""
        for select in self.query(Select):
            select.remove_class("-invalid")
        box = self.query_one("#error", Static)
        box.display = error is not None
        self.query_one("#preview").display = error is None  # a refusal previews nothing
        if error is None:
            return
        if isinstance(error, InvalidInput):
            label, field = FIELDS.get(error.field, (error.field, None))
            if field is not None:
                self.query_one(f"#{field}", Select).add_class("-invalid")
            box.update(Content.assemble((f"{label}: ", "bold"), shown(error.message)))
        elif isinstance(error, NotAllowed):
            box.update(Content.assemble(("Not allowed: ", "bold"), shown(str(error))))
        else:
            box.update(shown(str(error)))

    # -- applying ------------------------------------------------------------------------------

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        if self._applying:
            return
        if self._previewed is None or self._previewed[0] != self.request():
            self.notify("Choose the action and its target first: the change is previewed before it is applied", severity="warning")
            return
        request, plan = self._previewed
        if not plan["counts"]["changed"]:
            self.notify("Nobody would change: nothing to apply", severity="warning")
            return
        self._applying = True
        self.run_worker(self._apply(request), exclusive=True, group="bulk-apply", exit_on_error=False)

    async def _apply(self, request: dict[str, Any]) -> None:
        try:
            # confirm: the admin saw this change's preview (past the safeguard, their role is checked again)
            result = await self.app.call_service(self.app.service.bulk_change, **request, confirm=True)
        except ProvtuiError as error:
            self._applying = False
            self._show_error(error)
            return
        self.app.store_changed()
        self.dismiss(result)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_scroll_preview(self, how: str) -> None:
        getattr(self.query_one("#preview", VerticalScroll), f"scroll_{how}")(animate=False)
