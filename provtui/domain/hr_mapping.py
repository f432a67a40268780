"""HR CSV import, the mapping: which column of an HR export feeds which attribute, and what its statuses mean.

Pure.  ``load_mapping(text)`` reads a small mapping file (column -> attribute, extra status
words, options); ``DEFAULT_MAPPING`` recognises the common Workday/BambooHR headers and status
words.  ``provtui.domain.hr_import.parse_csv`` reads a file with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provtui.domain.errors import InvalidInput
from provtui.domain.import_rows import Intent
from provtui.domain.users import ATTRIBUTE_NAME

STATUS = "@status"  # mapping target: the employment status column
IGNORE = "@ignore"  # mapping target: a column deliberately not imported
_KEYS = ("login", "employeeNumber")


class ImportFileError(InvalidInput):
    """The file (or mapping file) as a whole is unusable: nothing is imported.

    ``field`` names the column (or "file"/"mapping"); ``line`` is the physical line, if known.
    """

    def __init__(self, field: str, message: str, line: int | None = None):
        super().__init__(field, f"line {line}: {message}" if line is not None else message)
        self.line = line


_STATUS_WORDS: dict[Intent, tuple[str, ...]] = {
    Intent.ACTIVE: (
        "active",
        "hired",
        "hire",
        "new hire",
        "new",
        "onboarding",
        "employed",
        "returned",
        "return",
        "returned from leave",
        "rehired",
        "rehire",
        "reinstated",
        "full time",
        "part time",
        "regular",
        "temporary",
        "temp",
        "contractor",
        "contract",
        "intern",
        "seasonal",
        "employee",
    ),
    Intent.SUSPENDED: (
        "on leave",
        "leave",
        "loa",
        "leave of absence",
        "suspended",
        "furloughed",
        "furlough",
        "sabbatical",
        "paid leave",
        "unpaid leave",
        "parental leave",
        "maternity leave",
        "paternity leave",
        "medical leave",
        "garden leave",
    ),
    Intent.DEACTIVATED: (
        "terminated",
        "termed",
        "term",
        "termination",
        "inactive",
        "left",
        "offboarded",
        "separated",
        "resigned",
        "retired",
        "deceased",
        "dismissed",
        "former",
        "former employee",
        "deactivated",
    ),
    Intent.STAGED: ("pre hire", "prehire", "pending hire", "future hire", "preboarding", "pre boarding", "not started", "staged"),
}


def norm_status(value: str) -> str:
    return " ".join(re.split(r"[\s_\-/]+", value.strip().casefold())).strip()


DEFAULT_STATUSES: dict[str, Intent] = {norm_status(w): intent for intent, words in _STATUS_WORDS.items() for w in words}


def norm_header(header: str) -> str:
    """Headers compare case-, space- and punctuation-insensitively ("Employee #" = "employeeNumber")."""
    return "".join(ch for ch in header.casefold().replace("#", "number") if ch.isalnum())


# (header, target) in order of preference: when several columns supply one attribute, the first
# non-empty one (in this order) wins, row by row.
DEFAULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Employee Number", "employeeNumber"),
    ("Employee ID", "employeeNumber"),
    ("Employee No", "employeeNumber"),
    ("Worker ID", "employeeNumber"),
    ("Emp ID", "employeeNumber"),
    ("EEID", "employeeNumber"),
    ("Associate ID", "employeeNumber"),
    ("Username", "login"),
    ("Login", "login"),
    ("Login Name", "login"),
    ("Work Email", "email"),
    ("Primary Work Email", "email"),
    ("Work Email Address", "email"),
    ("Business Email", "email"),
    ("Email", "email"),
    ("Email Address", "email"),
    ("Preferred First Name", "firstName"),
    ("Preferred Name", "firstName"),
    ("First Name", "firstName"),
    ("Given Name", "firstName"),
    ("Legal First Name", "firstName"),
    ("Preferred Last Name", "lastName"),
    ("Last Name", "lastName"),
    ("Surname", "lastName"),
    ("Family Name", "lastName"),
    ("Legal Last Name", "lastName"),
    ("Middle Name", "middleName"),
    ("Display Name", "displayName"),
    ("Business Title", "title"),
    ("Job Title", "title"),
    ("Title", "title"),
    ("Position", "title"),
    ("Department", "department"),
    ("Dept", "department"),
    ("Department Name", "department"),
    ("Supervisory Organization", "department"),
    ("Manager Email", "manager"),
    ("Supervisor Email", "manager"),
    ("Manager", "manager"),
    ("Supervisor", "manager"),
    ("Reports To", "manager"),
    ("Reporting To", "manager"),
    ("Work Location", "location"),
    ("Location", "location"),
    ("Office", "location"),
    ("Site", "location"),
    ("Cost Center", "costCenter"),
    ("Cost Centre", "costCenter"),
    ("Division", "division"),
    ("Company", "organization"),
    ("Mobile Phone", "mobilePhone"),
    ("Work Phone", "primaryPhone"),
    ("Employment Status", STATUS),
    ("Worker Status", STATUS),
    ("Employee Status", STATUS),
    ("Status", STATUS),
)


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column supplies which attribute.

    ``columns``: (header, target) pairs in order of preference; a target is a profile attribute,
    ``STATUS`` (the employment status column: the first one present is used) or ``IGNORE``.
    Headers are matched case-, space- and punctuation-insensitively.
    ``key``: "login" or "employeeNumber" (None: employeeNumber if the file has such a column).
    """

    columns: tuple[tuple[str, str], ...] = DEFAULT_COLUMNS
    statuses: Mapping[str, Intent] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    key: str | None = None
    delimiter: str = ","

    def intent(self, status: str) -> Intent | None:
        return self.statuses.get(norm_status(status))


DEFAULT_MAPPING = ColumnMapping()


# -- the mapping file -------------------------------------------------------------------------

_SECTIONS = ("columns", "status", "options")
_DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
_BOOLEANS = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


def load_mapping(text: str) -> ColumnMapping:
    """A mapping file (see fixtures/hr/mapping.example); errors name the line.

    ``[columns]`` (the default section): ``CSV column = attribute`` (or ``@status``/``@ignore``);
    a header containing ``=`` is written in double quotes.  ``[status]``: ``HR value = intent``
    (active, suspended, deactivated, staged, or any status word already known).  ``[options]``:
    ``key = login|employeeNumber``, ``defaults = yes|no`` (also recognise the common headers the
    file does not mention; yes by default), ``delimiter = , ; tab |``.  ``#`` and ``;`` start a
    comment line; `` # ...`` after a value is a comment too.
    """
    text = text.removeprefix("\ufeff")
    section = "columns"
    columns: list[tuple[str, str]] = []
    seen_columns: dict[str, int] = {}
    statuses: dict[str, Intent] = {}
    seen_statuses: dict[str, int] = {}
    options: dict[str, str] = {}
    seen_options: dict[str, int] = {}
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]") or line[1:-1].strip().lower() not in _SECTIONS:
                raise ImportFileError("mapping", f"unknown section {line!r} (sections: {', '.join(f'[{s}]' for s in _SECTIONS)})", number)
            section = line[1:-1].strip().lower()
            continue
        left, right = _split_assignment(line, number)
        if section == "columns":
            norm = norm_header(left)
            if not norm:
                raise ImportFileError("mapping", f"{left!r} is not a column name (it needs a letter or digit)", number)
            if norm in seen_columns:
                raise ImportFileError("mapping", f"column {left!r} is already mapped on line {seen_columns[norm]}", number)
            target = right
            if right.lower() in (STATUS, IGNORE):
                target = right.lower()
            elif not ATTRIBUTE_NAME.match(right):
                raise ImportFileError(
                    "mapping",
                    f"{right!r} is not an attribute name (letters, digits and _, starting with a letter; or @status, @ignore)",
                    number,
                )
            seen_columns[norm] = number
            columns.append((left, target))
        elif section == "status":
            value = norm_status(left)
            if value in seen_statuses:
                raise ImportFileError("mapping", f"status {left!r} is already mapped on line {seen_statuses[value]}", number)
            intent = _intent_word(right)
            if intent is None:
                raise ImportFileError("mapping", f"{right!r} is not a status (use active, suspended, deactivated or staged)", number)
            seen_statuses[value] = number
            statuses[value] = intent
        else:
            name = left.lower()
            if name not in ("key", "defaults", "delimiter"):
                raise ImportFileError("mapping", f"unknown option {left!r} (options: key, defaults, delimiter)", number)
            if name in seen_options:
                raise ImportFileError("mapping", f"option {name!r} is already set on line {seen_options[name]}", number)
            seen_options[name] = number
            options[name] = _check_option(name, right, number)
    use_defaults = options.get("defaults", True)
    if use_defaults:
        mapped_attributes = {target for _, target in columns}
        mapped_headers = set(seen_columns)
        columns += [(h, t) for h, t in DEFAULT_COLUMNS if t not in mapped_attributes and norm_header(h) not in mapped_headers]
    else:
        for attribute in ("email", "firstName", "lastName"):
            if not any(t == attribute for _, t in columns):
                raise ImportFileError("mapping", f"no column is mapped to {attribute} (it is required; or set defaults = yes)")
    merged = {**DEFAULT_STATUSES, **statuses}
    return ColumnMapping(columns=tuple(columns), statuses=merged, key=options.get("key"), delimiter=options.get("delimiter", ","))


def _split_assignment(line: str, number: int) -> tuple[str, str]:
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0:
            raise ImportFileError("mapping", "a quoted column name is not closed", number)
        left, rest = line[1:end], line[end + 1 :].lstrip()
        if not rest.startswith("="):
            raise ImportFileError("mapping", "expected = after the quoted column name", number)
        right = rest[1:]
    else:
        left, sep, right = line.partition("=")
        if not sep:
            raise ImportFileError("mapping", f"expected NAME = VALUE, got {line!r}", number)
    right = right.split("#", 1)[0].strip()
    left = left.strip()
    if not left or not right:
        raise ImportFileError("mapping", f"expected NAME = VALUE, got {line!r}", number)
    return left, right


def _intent_word(word: str) -> Intent | None:
    norm = norm_status(word)
    try:
        return Intent(norm)
    except ValueError:
        return DEFAULT_STATUSES.get(norm)


def _check_option(name: str, value: str, number: int) -> Any:
    if name == "key":
        for key in _KEYS:
            if value.lower() == key.lower():
                return key
        raise ImportFileError("mapping", f"key must be login or employeeNumber, not {value!r}", number)
    if name == "defaults":
        if value.lower() not in _BOOLEANS:
            raise ImportFileError("mapping", f"defaults must be yes or no, not {value!r}", number)
        return _BOOLEANS[value.lower()]
    delimiter = _DELIMITERS.get(value.lower(), value)
    if len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum():
        raise ImportFileError("mapping", f"delimiter must be one character such as , ; | or the word tab, not {value!r}", number)
    return delimiter
