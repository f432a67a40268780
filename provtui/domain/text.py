"""Text an admin types, and text shown to people: control characters and lengths.

A control character is C0 but tab (U+0000-U+0008, U+000A-U+001F), DEL (U+007F) or C1
(U+0080-U+009F): what a terminal acts on instead of showing (ESC starts an escape sequence,
CR and LF move the cursor, U+009B is a one-byte CSI).  Every value an admin types is checked
by ``check_text`` (refused, naming the field, when it holds one or is longer than its field's
maximum); values from outside (apps, LDAP, CSV) are kept as they came, and every text output
shows them through ``escape``: ``\\x1b``, ``\\n``, ``\\r``, ``\\t`` (``escape_controls``
leaves tab alone, for multi-line text ``keep_newlines``), never the character itself.
A lone surrogate (an undecodable byte in argv, U+D800-U+DFFF) is refused too: no store or
terminal can take it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from provtui.domain.errors import InvalidInput

CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")  # what check_text refuses
_SHOWN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # what escape replaces (tab too: it breaks columns)
_SHOWN_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # the same, newlines kept
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# The longest each text field may be, in characters (README: "Limits").
MAX_LOGIN = 128
MAX_EMAIL = 254
MAX_PERSON_NAME = 200  # firstName, lastName
MAX_DISPLAY_NAME = 500  # first + " " + last always fits
MAX_ATTRIBUTE_NAME = 64
MAX_VALUE = 1000  # any other profile attribute, an assignment value (--set)
MAX_NAME = 100  # groups, apps, rules
MAX_DESCRIPTION = 1000
MAX_EXPRESSION = 10_000  # rule expressions, --where, mapping expressions
MAX_TARGET = 400  # a mapping's downstream attribute (a SCIM path)
MAX_URL = 2048
MAX_DN = 1024
MAX_ENV_NAME = 128
MAX_ARGUMENT = 10_000  # any command-line argument at all (the CLI's own check, before any field's)
MAX_PASSWORD = 1024


def _char(char: str) -> str:
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape(value: Any) -> str:
    """``value`` as text a terminal shows as it is: every control character (tab too) and lone surrogate
    written as an escape (``\\x1b``, ``\\n``, ``\\udcff``).  Backslashes are left alone."""
    text = value if isinstance(value, str) else str(value)
    return _SHOWN.sub(lambda m: _char(m.group()), text) if _SHOWN.search(text) else text


def escape_lines(text: str) -> str:
    """Like ``escape``, but newlines stay: for text that is several lines on purpose (a message, a report)."""
    return _SHOWN_LINES.sub(lambda m: _char(m.group()), text) if _SHOWN_LINES.search(text) else text


def unsafe_character(text: str) -> tuple[int, str] | None:
    """(1-based position, the character) of the first control character or lone surrogate, or None."""
    match = _UNSAFE.search(text)
    return (match.start() + 1, match.group()) if match else None


def check_text(field: str, value: str, max_length: int) -> str:
    """``value`` if an admin may type it into ``field``; InvalidInput naming the field if it holds a control
    character or a lone surrogate ("contains a control character (\\x1b at position 3)") or is longer
    than ``max_length`` characters ("too long (max 200)")."""
    if not isinstance(value, str):  # argparse gives [] for a positional after a second "--"
        raise InvalidInput(field, "missing: give a value")
    bad = unsafe_character(value)
    if bad is not None:
        position, char = bad
        what = "an undecodable byte" if "\ud800" <= char <= "\udfff" else "a control character"
        raise InvalidInput(field, f"contains {what} ({_char(char)} at position {position})")
    if len(value) > max_length:
        raise InvalidInput(field, f"too long (max {max_length})")
    return value


def check_value(field: str, value: Any, max_length: int) -> Any:
    """``check_text`` on a value that may be a string, a list of strings or anything else (left alone)."""
    if isinstance(value, str):
        return check_text(field, value, max_length)
    if isinstance(value, (list, tuple)):
        for item in value:
            check_value(field, item, max_length)
    return value


def check_display_name(field: str, value: str, max_length: int = MAX_NAME) -> str:
    """A group's, app's or rule's name as people write it: any printable Unicode (``Ingeniería``, ``R&D``,
    ``営業部``) and spaces, trimmed, in NFC so that a name typed composed or decomposed is the same name;
    InvalidInput naming the field when it is empty, too long ("too long (max 100)") or holds a character a
    terminal would not show as itself (a control, a format character such as U+200B, a line separator)."""
    check_text(field, value, max_length * 4)  # control characters named as everywhere; length after NFC below
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise InvalidInput(field, "missing: give a name")
    if len(name) > max_length:
        raise InvalidInput(field, f"too long (max {max_length})")
    for position, char in enumerate(name, 1):
        if not (char.isprintable() or char == " "):
            raise InvalidInput(field, f"holds a character that does not print ({_char(char)} at position {position})")
    return name


def nfc(name: str) -> str:
    """``name`` as names are kept (check_display_name): NFC.  ASCII is already."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)
