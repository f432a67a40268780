"""Expression errors: what went wrong and where, drawn with a caret under the column."""

from __future__ import annotations

import unicodedata

from provtui.domain.errors import InvalidInput

_CARET_WIDTH = 72


class ExpressionError(InvalidInput):
    """An expression that cannot be parsed, checked or evaluated, and where: ``line``/``column`` (1-based)."""

    def __init__(self, message: str, text: str, offset: int, *, field: str = "expression", hint: str = ""):
        offset = max(0, min(offset, len(text)))
        self.text = text
        self.offset = offset
        self.line = text.count("\n", 0, offset) + 1
        self.column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        self.reason, self.hint = message, hint
        where = f"line {self.line}, column {self.column}" if "\n" in text else f"column {self.column}"
        super().__init__(field, f"{message} at {where}" + (f"; {hint}" if hint else ""))

    def caret(self) -> str:
        """The offending line (a window of it when long) and a ``^`` under the column."""
        line = self.text.split("\n")[self.line - 1]
        col0 = self.column - 1
        start, end = 0, len(line)
        if end > _CARET_WIDTH:
            start = max(0, min(col0 - _CARET_WIDTH // 2, end - _CARET_WIDTH))
            end = min(end, start + _CARET_WIDTH)
        shown = line[start:end]
        lead = "…" if start > 0 else ""
        display = lead + "".join(_display_char(c) for c in shown) + ("…" if end < len(line) else "")
        pad = len(lead) + sum(_char_width(c) for c in shown[: col0 - start])
        return f"{display}\n{' ' * pad}^"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}\n" + "\n".join("  " + row for row in self.caret().split("\n"))

    def __reduce__(self) -> tuple[object, tuple[str, str, int, str, str]]:
        return _rebuild_error, (self.reason, self.text, self.offset, self.field, self.hint)


def _rebuild_error(reason: str, text: str, offset: int, field: str, hint: str) -> ExpressionError:
    return ExpressionError(reason, text, offset, field=field, hint=hint)


def _display_char(c: str) -> str:
    # One printable cell per character, so the caret stays aligned and no control sequence is echoed.
    if c == "\t":
        return " "
    return c if c.isprintable() else "\ufffd"


def _char_width(c: str) -> int:
    if c.isprintable() and unicodedata.combining(c):
        return 0
    return 2 if c.isprintable() and unicodedata.east_asian_width(c) in "WF" else 1


def quote(s: str) -> str:
    """A token as shown in a message: short, quoted, control characters escaped."""
    if len(s) > 24:
        s = s[:20] + "…"
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    return f"'{shown}'"


class Fault(Exception):
    """A runtime fault inside an operation (a value over a limit); the node that ran it adds the position."""
