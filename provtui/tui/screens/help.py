"""A modal listing the key bindings of the screen it was opened from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self._listed = bindings

    def compose(self) -> ComposeResult:
        rows: dict[str, str] = {}  # description -> keys, so one action bound to several keys shows once
        taken: set[str] = set()  # keys listed: the screen's binding of a key is the one that runs, not the app's
        for binding in self._listed:
            if not binding.description or binding.system:
                continue
            key = self.app.get_key_display(binding)
            if key in taken:
                continue
            taken.add(key)
            described = binding.tooltip or binding.description  # the long form, where the footer's is short
            rows[described] = f"{rows[described]}, {key}" if described in rows else key
        width = max((len(k) for k in rows.values()), default=0)
        lines = [Content.assemble((keys.rjust(width), "bold $text-accent"), "  ", description) for description, keys in rows.items()]
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Keys"
            body.border_subtitle = "esc to close"
            yield Static(Content("\n").join(lines))
