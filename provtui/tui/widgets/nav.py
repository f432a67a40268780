"""The line of top-level screens under the header: each with its key, the current one marked; click to go.

When the line is too narrow for every label (80 columns), the longest labels but the current one's are
shortened until it fits, so every screen's key stays in view.
"""

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
    ("rules", "o", "Rules"),  # o: the letters of "rules" are taken; grOup rules
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
    NavItem.-current {
        color: $block-cursor-foreground; background: $block-cursor-background; text-style: bold; padding: 0 1;
    }
    """

    def __init__(self, mode: str, key: str, label: str) -> None:
        super().__init__(id=f"nav-{mode}")
        self.mode, self.shortcut = mode, key
        self.show_label(label)

    def show_label(self, label: str) -> None:
        self.update(Content.assemble((f"{self.shortcut} ", "bold"), label))

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.app.switch_mode(self.mode)


class NavBar(Horizontal):
    DEFAULT_CSS = """
    NavBar { height: 1; width: 1fr; background: $panel; overflow: hidden; padding: 0 0 0 1; }
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

    def on_resize(self) -> None:
        labels = fitted_labels([label for _, _, label in NAV], [mode == self.current for mode, _, _ in NAV], self.content_region.width)
        for item, label in zip(self.query(NavItem), labels, strict=False):
            item.show_label(label)


ITEM_FRAME = 3  # "k " before a label, one column of padding after it (the current one: one more before it)
SHORTEST = 3  # a label is cut to no fewer letters (and an ellipsis)


def fitted_labels(labels: list[str], keep: list[bool], width: int) -> list[str]:
    """``labels`` with the longest (those not marked ``keep``) cut, one letter at a time, until the line fits."""
    fitted = list(labels)
    need = sum(len(label) + ITEM_FRAME for label in fitted) + any(keep) - 1  # the last padding may fall off the edge
    while need > width:
        cuttable = [i for i, label in enumerate(fitted) if not keep[i] and len(label) > SHORTEST + 1]
        if not cuttable:
            break
        longest = max(cuttable, key=lambda i: (len(fitted[i]), -i))
        fitted[longest] = fitted[longest].rstrip("…")[:-1] + "…" if fitted[longest].endswith("…") else fitted[longest][:-2] + "…"
        need -= 1
    return fitted
