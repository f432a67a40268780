"""How commands print: JSON for scripts, aligned tables for people."""

from __future__ import annotations

import sys

import orjson

EXIT_OK, EXIT_DOWNSTREAM, EXIT_USAGE, EXIT_HELD, EXIT_NOT_ALLOWED, EXIT_DAMAGED = 0, 1, 2, 3, 4, 5


def print_json(data) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


def _cell(value) -> str:
    if value is None or value is False:
        return "-" if value is False else ""
    if value is True:
        return "yes"
    return str(value)


def emit(args, data, columns: list[str] | None = None, text: str | None = None) -> int:
    """Print ``data`` as JSON with --json, else as a table (``columns``) or a line of ``text``."""
    if args.json:
        print_json(data)
    elif columns is not None:
        print_table(data, columns)
    elif text is not None:
        print(text)
    return EXIT_OK


def warn(message: str) -> None:
    print(f"provtui: {message}", file=sys.stderr)
