r"""How the console shows text it did not write itself: never a control character.

Values from outside (a first name from an HR export, a group from LDAP, an app's error) may hold
ESC, CR, LF or C1 characters; Textual would write them to the terminal as they are (an escape
sequence that clears the screen, a newline that draws a fake line).  Every value the console
draws goes through ``shown`` (provtui.domain.text.escape: ``\x1b``, ``\n`` written out) where it
becomes text: the tables (RowTable), the user, group and event panes, history, pickers and the
palette.  Behind that, ``ControlFilter`` runs over every rendered line of every widget and drops
any control character still there, so a value a screen forgets to pass through ``shown`` can at
worst lose a character; it never reaches the terminal.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from provtui.domain.text import CONTROL
from provtui.domain.text import escape as shown

__all__ = ["ControlFilter", "shown"]


class ControlFilter(LineFilter):
    """Drop every control character from a rendered line's text (a control takes no cell: widths stay)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if not any(CONTROL.search(segment.text) for segment in segments if not segment.control):
            return segments
        return [segment if segment.control else Segment(CONTROL.sub("", segment.text), segment.style) for segment in segments]
