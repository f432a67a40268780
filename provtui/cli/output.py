r"""How commands print: JSON for scripts, aligned tables for people.

Text for people never carries a control character: every value goes through ``shown``
(``\x1b``, ``\n`` written out; provtui.domain.text.escape), in tables, in the lines
commands print, and in messages (``warn``, and errors in provtui.cli.main); behind that, stdout
itself escapes any control character but newline and tab that a command prints (``terminal_text``).
JSON is exact and goes around it: every control character in it is a ``\u`` escape (orjson's for C0,
``print_json``'s for DEL and C1), so a value round-trips and nothing reaches a terminal raw.  CSV
(``write_data``) is written as it is.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from provtui.domain.text import escape, escape_lines

EXIT_OK, EXIT_DOWNSTREAM, EXIT_USAGE, EXIT_HELD, EXIT_NOT_ALLOWED, EXIT_DAMAGED = 0, 1, 2, 3, 4, 5
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command a closed pipe (SIGPIPE) ended, as `seq 9999999 | head -1`


class _TerminalText(io.TextIOBase):
    """stdout while a command runs: every control character but newline and tab written as an escape,
    whatever prints it; JSON and CSV go around it (``write_data``)."""

    def __init__(self, raw):
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escape_lines(text))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.raw.isatty()

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.raw, "encoding", "utf-8")


@contextmanager
def terminal_text() -> Iterator[None]:
    """Run a command with stdout as ``_TerminalText``: no control character reaches the terminal by accident."""
    raw = sys.stdout
    sys.stdout = _TerminalText(raw)
    try:
        yield
    finally:
        sys.stdout = raw


def write_data(text: str) -> None:
    """JSON or CSV, written exactly as it is (CSV's CRLF and a cell's own characters included).

    In pieces: one huge write to a pipe whose reader goes away (``| head -1``) can come back short without
    an error, and the rest would be dropped silently; the write after it fails, as a closed pipe should."""
    out = sys.stdout
    out = out.raw if isinstance(out, _TerminalText) else out
    for start in range(0, len(text), _PIECE):
        out.write(text[start : start + _PIECE])


_PIECE = 1 << 16


def quiet_broken_pipe() -> int:
    """After a reader closed stdout (``| head -1``): point stdout at /dev/null, so that nothing more (not even
    Python's last flush) complains, and end as a Unix tool ended by SIGPIPE does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test's capture): nothing will flush to a closed pipe
    return EXIT_BROKEN_PIPE


# JSON may carry DEL and C1 characters raw (only C0 must be escaped); a terminal may act on them.  Outside
# strings JSON holds only ASCII punctuation and whitespace, so each can be written as a \u escape: same value.
_RAW_IN_JSON = re.compile("[\x7f-\x9f]")


def print_json(data) -> None:
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    if _RAW_IN_JSON.search(text):
        text = _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    write_data(text + "\n")


def print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


def shown(value) -> str:
    """``value`` as text for a terminal: control characters escaped (the one place the CLI's text output does it)."""
    return escape("" if value is None else value)


def _cell(value) -> str:
    """A value as a table cell: never a Python repr (a list is its items, comma-separated; a mapping key=value)."""
    if value is None or value is False:
        return "-" if value is False else ""
    if value is True:
        return "yes"
    if isinstance(value, dict):
        return ", ".join(f"{shown(k)}={_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_cell(v) for v in (sorted(value, key=str) if isinstance(value, (set, frozenset)) else value))
    return shown(value)


def emit(args, data, columns: list[str] | None = None, text: str | None = None) -> int:
    """Print ``data`` as JSON with --json, else as a table (``columns``) or a line of ``text``."""
    if args.json:
        print_json(data)
    elif columns is not None:
        print_table(data, columns)
    elif text is not None:
        print(escape_lines(text))
    return EXIT_OK


def warn(message: str) -> None:
    print(f"provtui: {escape_lines(message)}", file=sys.stderr)
