"""Modal dialogs: confirm (plainly, or showing what a change does), pick from a filterable list, type a value,
move a user between groups.

Each works with the keyboard alone (enter accepts, escape cancels, tab moves
between fields) and with the mouse (buttons, clickable options).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from provtui.tui.text import shown


class Dialog(ModalScreen):
    """The modals' common base: their CSS is scoped to it."""

    CSS_PATH = "modals.tcss"


class ConfirmModal(Dialog, ModalScreen[bool]):
    """Ask before a change; ``destructive`` styles the confirm button as a warning."""

    BINDINGS = [Binding("escape,n", "cancel", "Cancel", id="confirm.cancel"), Binding("y", "confirm", "Confirm", id="confirm.confirm")]

    def __init__(self, title: str, body: str | Content, *, confirm: str = "Confirm", destructive: bool = True) -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._confirm = confirm
        self._destructive = destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm") as dialog:
            dialog.border_title = self._title
            yield Static(self._body, id="body")
            with Horizontal(id="buttons"):
                yield Button(f"{self._confirm} (y)", variant="error" if self._destructive else "primary", id="confirm")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ChangeModal(ConfirmModal):
    """Ask before a change, showing what it would do: a line or two, then columns of names (scrolled
    together with up/down, page up/down, as the confirm button keeps the focus), then a warning if any."""

    BINDINGS = [
        Binding("up", "scroll_columns('up')", "Scroll up", show=False),
        Binding("down", "scroll_columns('down')", "Scroll down", show=False),
        Binding("pageup", "scroll_columns('page_up')", "Page up", show=False),
        Binding("pagedown", "scroll_columns('page_down')", "Page down", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: str | Content,
        columns: Sequence[tuple[str | Content, str | Content]],
        *,
        warning: str | Content | None = None,
        confirm: str = "Confirm",
        destructive: bool = True,
    ) -> None:
        super().__init__(title, body, confirm=confirm, destructive=destructive)
        self._columns = list(columns)
        self._warning = warning

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm change") as dialog:
            dialog.border_title = self._title
            dialog.border_subtitle = "↑↓ pgup pgdn scroll the lists"
            yield Static(self._body, id="body")
            with VerticalScroll(id="columns", can_focus=False):
                with Horizontal(id="column-row"):
                    for heading, text in self._columns:
                        yield Static(Content.assemble((heading, "bold"), "\n", text), classes="column")
            if self._warning is not None:
                yield Static(self._warning, id="warning")
            with Horizontal(id="buttons"):
                yield Button(f"{self._confirm} (y)", variant="error" if self._destructive else "primary", id="confirm")
                yield Button("Cancel (esc)", id="cancel")

    def action_scroll_columns(self, how: str) -> None:
        getattr(self.query_one("#columns", VerticalScroll), f"scroll_{how}")(animate=False)


class FilteredList(Vertical):
    """An input that filters an option list below it; up/down in the input move the highlight."""

    DEFAULT_CSS = """
    FilteredList { height: auto; }
    FilteredList > Input { margin: 0 0 0 0; }
    FilteredList > OptionList { height: auto; max-height: 12; }
    """

    def __init__(
        self,
        options: Sequence[tuple[str | Content, Any]],
        *,
        placeholder: str = "Type to filter",
        disabled_values: Sequence[Any] = (),
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._options = list(options)
        self._disabled = set(disabled_values)
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self._placeholder)
        yield OptionList()

    def on_mount(self) -> None:
        self.refilter("")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def option_list(self) -> OptionList:
        return self.query_one(OptionList)

    def refilter(self, text: str) -> None:
        needle = text.strip().lower()
        option_list = self.option_list
        shown = []
        for index, (label, value) in enumerate(self._options):
            plain = label.plain if isinstance(label, Content) else str(label)
            if needle in plain.lower():
                shown.append(Option(label, id=str(index), disabled=value in self._disabled))
        option_list.clear_options().add_options(shown)
        first = next((i for i in range(option_list.option_count) if not option_list.get_option_at_index(i).disabled), None)
        option_list.highlighted = first

    def value(self) -> Any:
        option_list = self.option_list
        if option_list.highlighted is None:
            return None
        option = option_list.get_option_at_index(option_list.highlighted)
        return None if option.disabled else self._options[int(option.id or 0)][1]

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.refilter(event.value)

    def on_key(self, event: events.Key) -> None:
        if self.input.has_focus and event.key in ("up", "down", "pageup", "pagedown"):
            event.stop()
            event.prevent_default()
            {
                "up": self.option_list.action_cursor_up,
                "down": self.option_list.action_cursor_down,
                "pageup": self.option_list.action_page_up,
                "pagedown": self.option_list.action_page_down,
            }[event.key]()


class PickModal(Dialog, ModalScreen[Any]):
    """Choose one of ``options`` ((label, value) pairs); returns the value, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick.cancel")]

    def __init__(
        self,
        title: str,
        options: Sequence[tuple[str | Content, Any]],
        *,
        note: str | Content = "",
        disabled_values: Sequence[Any] = (),
        placeholder: str = "Type to filter",
    ) -> None:
        super().__init__()
        self._title = title
        self._options = options
        self._note = note
        self._disabled = disabled_values
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = self._title
            dialog.border_subtitle = "enter to choose · esc to cancel"
            if self._note:
                yield Static(self._note, id="note")
            yield FilteredList(self._options, disabled_values=self._disabled, placeholder=self._placeholder)
            if not self._options:
                yield Label("Nothing to choose from", classes="muted")

    def on_mount(self) -> None:
        self.query_one(FilteredList).input.focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = self.query_one(FilteredList).value()
        if value is not None:
            self.dismiss(value)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        value = self.query_one(FilteredList).value()
        if value is not None:
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class InputModal(Dialog, ModalScreen[str | None]):
    """Type one value; returns it (possibly empty), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="input.cancel")]

    def __init__(self, title: str, *, value: str = "", placeholder: str = "", note: str | Content = "") -> None:
        super().__init__()
        self._title = title
        self._value = value
        self._placeholder = placeholder
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = self._title
            dialog.border_subtitle = "enter to save · esc to cancel"
            if self._note:
                yield Static(self._note, id="note")
            yield Input(value=self._value, placeholder=self._placeholder, id="value")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MoveGroupModal(Dialog, ModalScreen[tuple[str, str] | None]):
    """Leave one group for another: the user's groups on the left, the rest (filterable) on the right.

    Keys: up/down pick the group to leave, tab (or enter) moves to the groups to
    join, typing filters them, enter moves.  Groups the actor may not change are greyed.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="move.cancel")]

    def __init__(
        self, login: str, current: Sequence[str], others: Sequence[str], *, allowed: Sequence[str], leave: str | None = None
    ) -> None:
        super().__init__()
        self._login = login
        self._current = list(current)
        self._others = list(others)
        self._allowed = set(allowed)
        self._leave = leave  # the group to offer first (else the first that may be changed)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="move") as dialog:
            dialog.border_title = f"Move {self._login} to another group"
            dialog.border_subtitle = "tab: next · enter: move · esc: cancel"
            with Horizontal(id="panes"):
                with Vertical(id="leave-pane"):
                    yield Label("Leave", classes="pane-title")
                    leave = OptionList(*[Option(g, id=g, disabled=g not in self._allowed) for g in self._current], id="leave")
                    yield leave
                with Vertical(id="join-pane"):
                    yield Label("Join", classes="pane-title")
                    yield FilteredList(
                        [(g, g) for g in self._others],
                        placeholder="Filter groups",
                        disabled_values=[g for g in self._others if g not in self._allowed],
                        id="join",
                    )

    def on_mount(self) -> None:
        leave = self.query_one("#leave", OptionList)
        first = next((i for i, g in enumerate(self._current) if g == self._leave and g in self._allowed), None)
        leave.highlighted = first if first is not None else next((i for i, g in enumerate(self._current) if g in self._allowed), None)
        leave.focus()

    @on(OptionList.OptionSelected, "#leave")
    def _leave_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#join", FilteredList).input.focus()

    @on(Input.Submitted)
    def _join_chosen(self, event: Input.Submitted) -> None:
        event.stop()
        self._finish()

    @on(OptionList.OptionSelected, "#join OptionList")
    def _join_clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._finish()

    def _finish(self) -> None:
        leave = self.query_one("#leave", OptionList)
        join = self.query_one("#join", FilteredList).value()
        if leave.highlighted is None:
            self.notify("Pick a group to leave", severity="warning")
            leave.focus()
            return
        option = leave.get_option_at_index(leave.highlighted)
        if option.disabled or join is None:
            self.notify("Pick a group to join", severity="warning")
            return
        self.dismiss((str(option.id), join))

    def action_cancel(self) -> None:
        self.dismiss(None)


class UserPickModal(Dialog, ModalScreen[str | None]):
    """Find a user by login, name or email (searched in the store as you type); returns the login."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="user_pick.cancel")]
    LIMIT = 12

    def __init__(self, title: str, *, exclude: Sequence[str] = ()) -> None:
        super().__init__()
        self._title = title
        self._exclude = set(exclude)
        self._searched: str | None = None  # the text the list shows results for

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = self._title
            dialog.border_subtitle = "enter to choose · esc to cancel"
            yield Input(placeholder="Login, name or email", id="who")
            yield OptionList(id="found")
            yield Static(id="note", classes="muted")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.search("")

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.search(event.value)

    def search(self, text: str) -> None:
        self.run_worker(self._search(text, 0.1 if text else 0), exclusive=True, group="user-search", exit_on_error=False)

    async def _search(self, text: str, debounce: float = 0) -> None:
        await asyncio.sleep(debounce)
        total, users = await self.app.call_service(self.app.service.list_users, text, limit=self.LIMIT)
        found = self.query_one("#found", OptionList)
        options = []
        for user in users:
            label = Content.assemble((user["login"], "bold"), "  ", shown(user["displayName"] or ""), ("  " + user["state"], "$text-muted"))
            options.append(Option(label, id=user["login"], disabled=user["login"] in self._exclude))
        found.clear_options().add_options(options)
        found.highlighted = next((i for i, u in enumerate(users) if u["login"] not in self._exclude), None)
        more = total - len(users)
        self.query_one("#note", Static).update(f"{more:,} more: type more of the name" if more > 0 else "")
        self._searched = text

    def on_key(self, event: events.Key) -> None:
        found = self.query_one("#found", OptionList)
        if event.key in ("up", "down") and self.query_one(Input).has_focus:
            event.stop()
            event.prevent_default()
            (found.action_cursor_up if event.key == "up" else found.action_cursor_down)()

    def _chosen(self) -> None:
        found = self.query_one("#found", OptionList)
        if found.highlighted is not None:
            option = found.get_option_at_index(found.highlighted)
            if not option.disabled:
                self.dismiss(str(option.id))

    @on(Input.Submitted)
    async def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value != self._searched:  # typed faster than the search: enter means what was typed
            self.workers.cancel_group(self, "user-search")
            await self._search(event.value)
        self._chosen()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._chosen()

    def action_cancel(self) -> None:
        self.dismiss(None)
