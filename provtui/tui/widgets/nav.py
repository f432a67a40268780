"""The line of top-level screens under the header: each with its key, the current one marked; click to go."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

# mode name, key, label: the app binds the keys (provtui.tui.app.NAV_BINDINGS).
NAV = (
    ("dashboard", "d", "Dashboard"),
    ("directory", "u", "Users"),
    ("groups", "g", "Groups"),
    ("apps", "a", "Apps"),
    ("activity", "y", "Activity"),
    ("tasks", "t", "Tasks"),
    ("audit", "l", "Audit"),
    ("reports", "r", "Reports"),
)


class NavItem(Static):
    DEFAULT_CSS = """
    NavItem { width: auto; padding: 0 1 0 0; color: $text-muted; }
    NavItem:hover { color: $foreground; }
    NavItem.-current { color: $block-cursor-foreground; background: $block-cursor-background; text-style: bold; }
    """

    def __init__(self, mode: str, key: str, label: str) -> None:
        super().__init__(Content.assemble((f" {key} ", "bold"), label), id=f"nav-{mode}")
        self.mode = mode

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.app.switch_mode(self.mode)


class NavBar(Horizontal):
    DEFAULT_CSS = """
    NavBar { height: 1; width: 1fr; background: $panel; overflow: hidden; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        for mode, key, label in NAV:
            item = NavItem(mode, key, label)
            if mode == self.current:
                item.add_class("-current")
            yield item
