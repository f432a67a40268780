"""HR CSV import: a file exported from an HR system drives users and their lifecycle.

Pure: reads only the bytes/text it is given.  Three steps, each usable alone:

1. ``load_mapping(text)`` reads a small mapping file (column -> attribute, extra status words,
   options); ``DEFAULT_MAPPING`` recognises the common Workday/BambooHR headers.
2. ``parse_csv(data, mapping)`` decodes and checks the file: a ``ParsedFile`` of accepted
   ``Row``s and ``Rejection``s (line, column, reason).  A problem with the file as a whole
   (undecodable, no email column, an unclosed quote...) raises ``ImportFileError`` instead.
3. ``plan_import(parsed, existing, source=..., full=...)`` compares the rows with the users in
   the directory: an ``ImportPlan`` of ``UserAction``s to apply in one transaction, plus the
   counts the CLI prints (``plan.summary()``).

The status column's value becomes an ``Intent`` (active, suspended, deactivated, staged); the
plan turns it into the lifecycle transitions of ``provtui.domain.lifecycle`` that get the user
there from wherever they are.

Rules where the issue is silent:
- No login column: the login is the work email, lowercased (Okta's default).  Such a derived
  login names new users only; it never renames an existing one.
- Key: employeeNumber when the file has that column, else login; both must be unique in the file
  (every row sharing one is rejected: which one is right is unclear).
- New users: active -> created and activated; on leave -> created, activated, suspended;
  pre-hire -> created staged; terminated -> nothing (counted unchanged).
- Existing users: an empty cell clears an optional attribute but keeps a required one; a
  pre-hire row or a file without a status column never moves a user's lifecycle; a deleted user
  cannot be changed (rejected, unless the row says terminated).
- Users mastered by another source are rejected rows ("mastered by ..."), unless ``priorities``
  let this source write some of their attributes (never their lifecycle), or ``adopt`` is set
  and they are provtui's own.
- Full import: this source's users that no row names (accepted or rejected: a rejected row's
  cells protect whoever they name) are deactivated.
- A full import that yields no valid person (no row accepted, or only terminated / disabled
  ones: an export with a header and no rows, every row rejected, an LDAP search under the wrong
  base or filter) is *refused*: its plan changes nothing (``plan.refused`` says why, the actions
  it would have taken are ``plan.withheld``), unless ``allow_empty`` is set.  A partial or
  incremental run is never refused for this: it deactivates no one for being absent, and an
  empty delta is an ordinary one.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any

from provtui.domain.errors import InvalidInput
from provtui.domain.lifecycle import State, transition
from provtui.domain.users import (
    _ATTR_NAME,
    _EMAIL,
    REQUIRED_ATTRIBUTES,
    normalise_login,
    validate_login,
    validate_profile,
)

STATUS = "@status"  # mapping target: the employment status column
IGNORE = "@ignore"  # mapping target: a column deliberately not imported
NATIVE_SOURCE = "provtui"  # the source of users created in provtui itself
MAX_VALUE_LENGTH = 1024  # longer cell values are rejected (nothing legitimate is that long)
_KEYS = ("login", "employeeNumber")


class ImportFileError(InvalidInput):
    """The file (or mapping file) as a whole is unusable: nothing is imported.

    ``field`` names the column (or "file"/"mapping"); ``line`` is the physical line, if known.
    """

    def __init__(self, field: str, message: str, line: int | None = None):
        super().__init__(field, f"line {line}: {message}" if line is not None else message)
        self.line = line


class Intent(StrEnum):
    """What the HR status says the user should be."""

    ACTIVE = "active"  # hired, active, returned...: active (created, activated, unsuspended or reactivated)
    SUSPENDED = "suspended"  # on leave: suspended
    DEACTIVATED = "deactivated"  # terminated: deprovisioned
    STAGED = "staged"  # pre-hire: created staged, not yet active


_STATUS_WORDS: dict[Intent, tuple[str, ...]] = {
    Intent.ACTIVE: (
        "active", "hired", "hire", "new hire", "new", "onboarding", "employed", "returned", "return",
        "returned from leave", "rehired", "rehire", "reinstated", "full time", "part time", "regular",
        "temporary", "temp", "contractor", "contract", "intern", "seasonal", "employee",
    ),
    Intent.SUSPENDED: (
        "on leave", "leave", "loa", "leave of absence", "suspended", "furloughed", "furlough", "sabbatical",
        "paid leave", "unpaid leave", "parental leave", "maternity leave", "paternity leave", "medical leave",
        "garden leave",
    ),
    Intent.DEACTIVATED: (
        "terminated", "termed", "term", "termination", "inactive", "left", "offboarded", "separated",
        "resigned", "retired", "deceased", "dismissed", "former", "former employee", "deactivated",
    ),
    Intent.STAGED: ("pre hire", "prehire", "pending hire", "future hire", "preboarding", "pre boarding", "not started", "staged"),
}


def _norm_status(value: str) -> str:
    return " ".join(re.split(r"[\s_\-/]+", value.strip().casefold())).strip()


DEFAULT_STATUSES: dict[str, Intent] = {_norm_status(w): intent for intent, words in _STATUS_WORDS.items() for w in words}


def _norm_header(header: str) -> str:
    """Headers compare case-, space- and punctuation-insensitively ("Employee #" = "employeeNumber")."""
    return "".join(ch for ch in header.casefold().replace("#", "number") if ch.isalnum())


# (header, target) in order of preference: when several columns supply one attribute, the first
# non-empty one (in this order) wins, row by row.
DEFAULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Employee Number", "employeeNumber"), ("Employee ID", "employeeNumber"), ("Employee No", "employeeNumber"),
    ("Worker ID", "employeeNumber"), ("Emp ID", "employeeNumber"), ("EEID", "employeeNumber"), ("Associate ID", "employeeNumber"),
    ("Username", "login"), ("Login", "login"), ("Login Name", "login"),
    ("Work Email", "email"), ("Primary Work Email", "email"), ("Work Email Address", "email"), ("Business Email", "email"),
    ("Email", "email"), ("Email Address", "email"),
    ("Preferred First Name", "firstName"), ("Preferred Name", "firstName"), ("First Name", "firstName"),
    ("Given Name", "firstName"), ("Legal First Name", "firstName"),
    ("Preferred Last Name", "lastName"), ("Last Name", "lastName"), ("Surname", "lastName"), ("Family Name", "lastName"),
    ("Legal Last Name", "lastName"),
    ("Middle Name", "middleName"),
    ("Display Name", "displayName"),
    ("Business Title", "title"), ("Job Title", "title"), ("Title", "title"), ("Position", "title"),
    ("Department", "department"), ("Dept", "department"), ("Department Name", "department"), ("Supervisory Organization", "department"),
    ("Manager Email", "manager"), ("Supervisor Email", "manager"), ("Manager", "manager"), ("Supervisor", "manager"),
    ("Reports To", "manager"), ("Reporting To", "manager"),
    ("Work Location", "location"), ("Location", "location"), ("Office", "location"), ("Site", "location"),
    ("Cost Center", "costCenter"), ("Cost Centre", "costCenter"),
    ("Division", "division"),
    ("Company", "organization"),
    ("Mobile Phone", "mobilePhone"), ("Work Phone", "primaryPhone"),
    ("Employment Status", STATUS), ("Worker Status", STATUS), ("Employee Status", STATUS), ("Status", STATUS),
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
        return self.statuses.get(_norm_status(status))


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
            norm = _norm_header(left)
            if not norm:
                raise ImportFileError("mapping", f"{left!r} is not a column name (it needs a letter or digit)", number)
            if norm in seen_columns:
                raise ImportFileError("mapping", f"column {left!r} is already mapped on line {seen_columns[norm]}", number)
            target = right
            if right.lower() in (STATUS, IGNORE):
                target = right.lower()
            elif not _ATTR_NAME.match(right):
                raise ImportFileError("mapping", f"{right!r} is not an attribute name (letters, digits and _, starting with a letter; or @status, @ignore)", number)
            seen_columns[norm] = number
            columns.append((left, target))
        elif section == "status":
            value = _norm_status(left)
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
        columns += [(h, t) for h, t in DEFAULT_COLUMNS if t not in mapped_attributes and _norm_header(h) not in mapped_headers]
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
        left, rest = line[1:end], line[end + 1:].lstrip()
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
    norm = _norm_status(word)
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


# -- parsing the CSV ------------------------------------------------------------------------


@dataclass(slots=True)
class Rejection:
    """A row that is not imported: its physical line, the CSV column at fault (None: the row), why."""

    line: int
    column: str | None
    reason: str
    # Every cell of the row, lowercased: a full import never deactivates a user the row may name.
    keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass(slots=True)
class Row:
    """An accepted row.  ``profile`` holds every mapped attribute: None is an empty cell."""

    line: int
    key: str  # the value of the key attribute (login or employeeNumber)
    profile: dict[str, str | None]
    intent: Intent | None  # None: the file has no status column
    status: str | None = None  # the status as written in the file

    @property
    def login(self) -> str:
        return self.profile["login"]  # type: ignore[return-value]


@dataclass(frozen=True)
class ParsedFile:
    rows: tuple[Row, ...]
    rejections: tuple[Rejection, ...]
    columns: dict[str, tuple[str, ...]]  # attribute -> the CSV headers supplying it, preferred first
    status_column: str | None
    key: str  # "login" or "employeeNumber"
    login_derived: bool  # no login column: each login is the (lowercased) work email
    ignored_columns: tuple[str, ...] = ()  # headers of columns that are not imported
    ignored_by_mapping: tuple[str, ...] = ()  # those of them the mapping marks @ignore (deliberately not imported)

    @property
    def unmapped_columns(self) -> tuple[str, ...]:
        """The ignored columns the mapping says nothing about (worth a warning: a renamed header?)."""
        deliberate = set(self.ignored_by_mapping)
        return tuple(c for c in self.ignored_columns if c not in deliberate)

    def column_for(self, attribute: str) -> str:
        """The CSV header to name in a message about ``attribute``."""
        if attribute == "login" and self.login_derived:
            attribute = "email"
        if attribute == "status" and self.status_column:
            return self.status_column
        headers = self.columns.get(attribute)
        return headers[0] if headers else attribute


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEP_LINE = re.compile(r"sep=([,;\t|:])(\r\n|\r|\n|$)", re.IGNORECASE)


def parse_csv(data: bytes, mapping: ColumnMapping = DEFAULT_MAPPING) -> ParsedFile:
    """Check every row of an HR export; raises ImportFileError if the file as a whole is unusable.

    UTF-8 with or without a BOM; quoted fields (with commas, quotes and newlines inside); LF, CRLF
    or CR line ends; an Excel ``sep=;`` first line.  Line numbers are physical: the line a row
    starts on, the header being line 1.  Rows whose cells are all empty are skipped.
    """
    text = _decode(data)
    delimiter, skipped = mapping.delimiter, 0
    sep = _SEP_LINE.match(text)
    if sep:
        delimiter, skipped, text = sep.group(1), 1, text[sep.end():]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header, header_line = None, 0
    while header is None:
        header_line = reader.line_num + 1 + skipped
        try:
            cells = next(reader)
        except StopIteration:
            raise ImportFileError("file", "is empty: it has no header row") from None
        except csv.Error as e:
            raise ImportFileError("file", f"the header row is not valid CSV ({e})", header_line) from None
        if any(c.strip() for c in cells):
            header = [c.strip() for c in cells]
    layout = _Layout(header, mapping, header_line)

    rows: list[Row] = []
    rejections: list[Rejection] = []
    while True:
        line = reader.line_num + 1 + skipped
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            message = str(e)
            if "end of data" in message:
                raise ImportFileError("file", "a quoted field starts here and is never closed: nothing after it can be read", line) from None
            if "field limit" in message:
                raise ImportFileError("file", "a field is longer than 128 KiB (an unbalanced quote?)", line) from None
            rejections.append(Rejection(line, None, f"not valid CSV: {message}"))
            continue
        if not any(cells) or not any(c.strip() for c in cells):
            continue
        outcome = layout.row(line, cells)
        if isinstance(outcome, Row):
            rows.append(outcome)
        else:
            rejections.append(outcome)
    rows = _reject_duplicates(rows, rejections, layout)
    rejections.sort(key=lambda r: r.line)
    return ParsedFile(
        rows=tuple(rows), rejections=tuple(rejections), columns=layout.columns, status_column=layout.status_header,
        key=layout.key, login_derived=layout.login_derived, ignored_columns=tuple(layout.ignored),
        ignored_by_mapping=tuple(layout.ignored_by_mapping),
    )


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError("file", "is UTF-16: export or save it as CSV UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        offset = 3
    else:
        offset = 0
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ImportFileError(
            "file", f"byte {e.start + offset} (0x{data[e.start]:02x}) is not UTF-8: export or save the file as CSV UTF-8", line,
        ) from None


class _Layout:
    """The header resolved against the mapping: which cell of a row feeds which attribute."""

    def __init__(self, header: list[str], mapping: ColumnMapping, line: int):
        wanted: dict[str, tuple[int, str]] = {}  # normalised header -> (preference, target)
        for preference, (name, target) in enumerate(mapping.columns):
            wanted.setdefault(_norm_header(name), (preference, target))
        candidates: dict[str, list[tuple[int, int]]] = {}  # target -> [(preference, index)]
        used_at: dict[str, int] = {}
        self.ignored: list[str] = []
        self.ignored_by_mapping: list[str] = []
        for index, name in enumerate(header):
            norm = _norm_header(name)
            hit = wanted.get(norm) if norm else None
            if hit is None or hit[1] == IGNORE:
                if name:
                    self.ignored.append(name)
                    if hit is not None:
                        self.ignored_by_mapping.append(name)
                continue
            if norm in used_at:
                raise ImportFileError(name, f"the header has two columns named {header[used_at[norm]]!r} and {name!r}: which one to import is unclear", line)
            used_at[norm] = index
            candidates.setdefault(hit[1], []).append((hit[0], index))
        status = sorted(candidates.pop(STATUS, []))
        self.header = header
        self.width = len(header)
        self.status_index = status[0][1] if status else None
        self.status_header = header[self.status_index] if self.status_index is not None else None
        self.ignored += [header[i] for _, i in status[1:]]
        self.attributes: list[tuple[str, tuple[int, ...]]] = [
            (attribute, tuple(i for _, i in sorted(found))) for attribute, found in candidates.items()
        ]
        self.columns = {attribute: tuple(header[i] for i in indexes) for attribute, indexes in self.attributes}
        for attribute, indexes in self.attributes:
            if not _ATTR_NAME.match(attribute):
                raise ImportFileError(header[indexes[0]], f"{attribute!r} is not an attribute name", line)
        single = [(attribute, indexes[0]) for attribute, indexes in self.attributes if len(indexes) == 1]
        self._single_names = tuple(attribute for attribute, _ in single)
        if len(single) > 1:
            self._pick = itemgetter(*(index for _, index in single))
        else:
            only = [index for _, index in single]
            self._pick = lambda cells: tuple(cells[i] for i in only)
        self._multiple = [(attribute, indexes) for attribute, indexes in self.attributes if len(indexes) > 1]
        for attribute in ("email", "firstName", "lastName"):
            if attribute not in self.columns:
                known = ", ".join(name for name, target in mapping.columns if target == attribute)[:200]
                raise ImportFileError(attribute, f"no column of the file maps to {attribute} (recognised: {known}; or map one in the mapping file)", line)
        self.login_derived = "login" not in self.columns
        if self.login_derived:
            self.columns["login"] = self.columns["email"]
        self.key = mapping.key or ("employeeNumber" if "employeeNumber" in self.columns else "login")
        if self.key == "employeeNumber" and "employeeNumber" not in self.columns:
            raise ImportFileError("employeeNumber", "the key is employeeNumber but no column of the file maps to it", line)
        self.mapping = mapping
        self._intents: dict[str, Intent | None] = {}

    def header_of(self, attribute: str) -> str:
        return self.columns.get(attribute, (attribute,))[0]

    def row(self, line: int, cells: list[str]) -> Row | Rejection:
        if len(cells) != self.width:
            if len(cells) > self.width and not any(c.strip() for c in cells[self.width:]):
                cells = cells[: self.width]
            else:
                return self._reject(line, None, f"has {len(cells)} fields; the header has {self.width}", cells)
        profile: dict[str, str | None] = {a: (v.strip() or None) for a, v in zip(self._single_names, self._pick(cells))}
        for attribute, indexes in self._multiple:
            value = None
            for index in indexes:
                cell = cells[index].strip()
                if cell:
                    value = cell
                    break
            profile[attribute] = value
        values = "".join(filter(None, profile.values()))
        if len(values) > MAX_VALUE_LENGTH or not values.isascii() or _CONTROL.search(values):
            problem = self._check_values(line, profile, cells)  # the slow path, value by value
            if problem is not None:
                return problem

        intent = None
        raw_status = None
        if self.status_index is not None:
            raw_status = cells[self.status_index].strip()
            if not raw_status:
                return self._reject(line, self.status_header, "the employment status is empty", cells)
            if raw_status in self._intents:
                intent = self._intents[raw_status]
            else:
                intent = self._intents[raw_status] = self.mapping.intent(raw_status)
            if intent is None:
                return self._reject(line, self.status_header, f"unknown employment status {raw_status[:80]!r} (map it in the [status] section of the mapping file)", cells)

        email = profile["email"]
        if email is not None and not _EMAIL.match(email):
            return self._reject(line, self.header_of("email"), f"{email[:80]!r} is not an email address", cells)
        if self.login_derived:
            if email is None:
                return self._reject(line, self.header_of("email"), "is empty: the login is made from the work email", cells)
            try:
                profile["login"] = validate_login(email)
            except InvalidInput:
                return self._reject(line, self.header_of("email"), f"{email[:80]!r} cannot be used as a login (letters, digits and . _ @ + -)", cells)
        else:
            login = profile["login"]
            if login is None:
                return self._reject(line, self.header_of("login"), "the login is empty", cells)
            try:
                profile["login"] = validate_login(login)
            except InvalidInput as e:
                return self._reject(line, self.header_of("login"), e.message, cells)
        key = profile[self.key]
        if key is None:
            return self._reject(line, self.header_of(self.key), f"the {self.key} is empty", cells)
        return Row(line, key, profile, intent, raw_status)

    def _check_values(self, line: int, profile: dict[str, str | None], cells: list[str]) -> Rejection | None:
        """NFC-normalise non-ASCII values; reject overlong values and control characters."""
        for attribute, indexes in self.attributes:
            value = profile[attribute]
            if value is None:
                continue
            column = next(self.header[i] for i in indexes if cells[i].strip())
            if len(value) > MAX_VALUE_LENGTH:
                return self._reject(line, column, f"is longer than {MAX_VALUE_LENGTH} characters", cells)
            if _CONTROL.search(value):
                return self._reject(line, column, "contains a control character", cells)
            if not value.isascii():
                profile[attribute] = unicodedata.normalize("NFC", value)
        return None

    def _reject(self, line: int, column: str | None, reason: str, cells: list[str]) -> Rejection:
        return Rejection(line, column, reason, _cell_keys(cells))


def _cell_keys(cells: Iterable[str]) -> frozenset[str]:
    return frozenset(k for k in (c.strip().lower() for c in cells) if k)


def _reject_duplicates(rows: list[Row], rejections: list[Rejection], layout: _Layout) -> list[Row]:
    """Every row sharing a login (or an employeeNumber) with another is rejected: which one is right is unclear."""
    bad: dict[int, Rejection] = {}
    for attribute in ("login", "employeeNumber"):
        if attribute not in layout.columns:
            continue
        first: dict[str, int] = {}
        lines: dict[str, list[int]] = {}
        for position, row in enumerate(rows):
            value = row.profile.get(attribute)
            if value is not None:
                if attribute == "login":
                    value = normalise_login(value)
                if value in first:
                    lines.setdefault(value, [first[value]]).append(position)
                else:
                    first[value] = position
        for value, positions in lines.items():
            for position in positions:
                if position in bad:
                    continue
                row = rows[position]
                others = ", ".join(str(rows[p].line) for p in positions if p != position)
                bad[position] = Rejection(row.line, layout.header_of(attribute), f"{attribute} {value!r} is also on line {others}",
                                          _cell_keys(v for v in row.profile.values() if v))
    if not bad:
        return rows
    rejections.extend(bad.values())
    return [row for position, row in enumerate(rows) if position not in bad]


# -- the plan ---------------------------------------------------------------------------------

OUTCOMES = ("created", "updated", "unchanged", "suspended", "deactivated", "reactivated")


@dataclass(slots=True)
class UserAction:
    """What to do to one user.  Apply: create the user (source = the import's, state staged) or
    update its profile, then run ``lifecycle`` in order; the result is ``state_after``."""

    line: int | None  # the CSV line; None: a user missing from the file (full import)
    user_id: str | None  # None: a new user
    login: str  # the login after the import
    state_before: str | None  # None: a new user
    state_after: str
    lifecycle: tuple[str, ...]  # lifecycle actions, in order (a new user starts staged)
    changes: dict[str, tuple[Any, Any]]  # attribute -> (before, after); after None: removed.  Empty for a new user.
    profile: dict[str, Any]  # the whole validated profile after the import
    outcomes: tuple[str, ...]  # the summary counts this action adds to
    adopt: bool = False  # a provtui user the import now masters (its source becomes the import's)
    attribute_sources: dict[str, str] | None = None  # when not None: the user's new per-attribute provenance
    reason: str = ""  # why, for the dry run ("active in HR", "on leave in HR", "missing from the file"...)

    @property
    def created(self) -> bool:
        return self.user_id is None

    def as_dict(self) -> dict:
        return {
            "line": self.line, "login": self.login, "outcomes": list(self.outcomes), "lifecycle": list(self.lifecycle),
            "state": [self.state_before, self.state_after], "changes": {k: [b, a] for k, (b, a) in self.changes.items()},
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ImportPlan:
    """The import, decided but not applied.  Apply every action in one transaction.

    Counts are of changes, so one user may count twice: "updated" (its attributes changed, it was
    adopted, or a staged user was activated) and one of suspended / deactivated / reactivated
    (which includes unsuspended).  "unchanged": accepted rows with nothing to do.
    """

    source: str
    full: bool
    actions: tuple[UserAction, ...]
    unchanged: int  # rows with nothing to do (terminated rows for unknown users included)
    rejected: tuple[Rejection, ...]  # sorted by line
    people: int = 0  # valid persons: accepted rows that are not terminated / disabled
    rows: int = 0  # rows (entries) read that were not rejected
    refused: str | None = None  # why this run must change nothing (it yields no valid person); None: it may apply
    withheld: tuple[UserAction, ...] = ()  # a refused plan: the actions it would have taken (never applied)

    def count(self, outcome: str) -> int:
        if outcome == "unchanged":
            return self.unchanged
        return sum(1 for a in self.actions if outcome in a.outcomes)

    def summary(self) -> dict:
        """The CLI's JSON: counts, and the rejected rows as a list."""
        counts = {outcome: 0 for outcome in OUTCOMES}
        for action in self.actions:
            for outcome in action.outcomes:
                counts[outcome] += 1
        counts["unchanged"] = self.unchanged
        return {**counts, "rejected": [r.as_dict() for r in self.rejected]}

    @property
    def deactivations(self) -> int:
        return sum(1 for a in self.actions if "deactivated" in a.outcomes)

    @property
    def would_deactivate(self) -> list[str]:
        """The logins this plan deactivates, or (refused) would have deactivated."""
        return [a.login for a in (self.withheld if self.refused else self.actions) if "deactivated" in a.outcomes]

    def details(self) -> list[dict]:
        """Every action as JSON-ready dicts, in file order (missing users last), for the dry run."""
        return [a.as_dict() for a in self.actions]


def deprovision_ratio(plan: ImportPlan, active_count: int) -> float:
    """The fraction of the org's ``active_count`` active users this plan deactivates (for the 20% hold)."""
    deactivations = plan.deactivations
    if deactivations == 0:
        return 0.0
    if active_count <= 0:
        return 1.0
    return deactivations / active_count


# Lifecycle actions taking a user from a state to what the intent says (deleted: see _plan_existing).
_PATHS: dict[Intent | None, dict[str, tuple[str, ...]]] = {
    Intent.ACTIVE: {"staged": ("activate",), "active": (), "suspended": ("unsuspend",), "deprovisioned": ("reactivate",)},
    Intent.SUSPENDED: {"staged": ("activate", "suspend"), "active": ("suspend",), "suspended": (), "deprovisioned": ("reactivate", "suspend")},
    Intent.DEACTIVATED: {"staged": ("deactivate",), "active": ("deactivate",), "suspended": ("deactivate",), "deprovisioned": ()},
    Intent.STAGED: {},  # a pre-hire row never moves an existing user (it cannot go back to staged)
    None: {},  # no status column: the lifecycle of existing users is left alone
}
_NEW_USER_LIFECYCLE = {Intent.ACTIVE: ("activate",), None: ("activate",), Intent.SUSPENDED: ("activate", "suspend"), Intent.STAGED: ()}
_REASONS = {Intent.ACTIVE: "active in HR", Intent.SUSPENDED: "on leave in HR", Intent.DEACTIVATED: "terminated in HR", Intent.STAGED: "pre-hire in HR", None: ""}
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def plan_import(
    parsed: ParsedFile | Iterable[Row],
    existing: Mapping[str, dict] | Iterable[dict],
    *,
    source: str,
    full: bool = False,
    owned_attributes: frozenset[str] | None = None,
    priorities: Mapping[str, tuple[str, ...] | list[str]] | None = None,
    adopt: bool = False,
    allow_empty: bool = False,
) -> ImportPlan:
    """Compare the rows with ``existing`` users (user id -> user doc, every source; or the docs).

    Rows match this source's users by employeeNumber, then any user by login (then, when logins
    are derived from emails, this source's users by email).  ``owned_attributes``: the attributes
    this source writes (None: every mapped one; a new user always gets login, email and names).
    ``priorities``: attribute -> sources, highest first, deciding who writes an attribute several
    sources supply.  ``adopt``: rows matching a user created in provtui take it over instead of
    being rejected.  ``full``: this source's users missing from the file are deactivated.
    A full run that yields no valid person is refused (``plan.refused``; nothing to apply)
    unless ``allow_empty``: an empty or broken export must never deprovision everyone.
    """
    if not _SOURCE_NAME.match(source or "") or source == NATIVE_SOURCE:
        raise InvalidInput("source", f"{source!r} is not an import source name (letters, digits and . _ -; not {NATIVE_SOURCE!r})")
    planner = _Planner(parsed, existing, source, owned_attributes, priorities or {}, adopt)
    for row in planner.rows:
        planner.plan_row(row)
    if full:
        planner.plan_missing()
    rejected = sorted(planner.rejected, key=lambda r: r.line)
    rejected_lines = {r.line for r in rejected}
    accepted = [row for row in planner.rows if row.line not in rejected_lines]
    people = sum(1 for row in accepted if row.intent is not Intent.DEACTIVATED)
    actions = tuple(planner.actions)
    refused = None
    if full and people == 0 and not allow_empty:
        refused = empty_reason(len(accepted), len(rejected))
    return ImportPlan(source=source, full=full, actions=() if refused else actions, unchanged=planner.unchanged,
                      rejected=tuple(rejected), people=people, rows=len(accepted), refused=refused,
                      withheld=actions if refused else ())


def empty_reason(accepted: int, rejected: int) -> str:
    """Why a full run that yields no valid person is refused, with what it did read."""
    if accepted and rejected:
        what = f"{rejected} rejected, {accepted} terminated or disabled"
    elif accepted:
        what = "the one it returned is terminated or disabled" if accepted == 1 else f"the {accepted} it returned are all terminated or disabled"
    elif rejected:
        what = "the one it returned was rejected" if rejected == 1 else f"the {rejected} it returned were all rejected"
    else:
        what = "it returned nobody"
    return f"the source returned no valid person; nothing was changed ({what})"


def _same(before: Any, after: Any) -> bool:
    if before == after:
        return True
    return isinstance(before, (int, float)) and not isinstance(before, bool) and after is not None and str(before) == after


class _Planner:
    def __init__(self, parsed, existing, source, owned, priorities, adopt):
        if isinstance(parsed, ParsedFile):
            self.parsed: ParsedFile | None = parsed
            self.rows = parsed.rows
            self.rejected = list(parsed.rejections)
            self.login_derived = parsed.login_derived
        else:
            self.parsed = None
            self.rows = tuple(parsed)
            self.rejected = []
            self.login_derived = False
        self.source, self.owned, self.priorities, self.adopt = source, owned, priorities, adopt
        self.users = list(existing.values()) if isinstance(existing, Mapping) else list(existing)
        self.by_login: dict[str, dict] = {}
        self.by_number: dict[str, list[dict]] = {}
        self.by_email: dict[str, list[dict]] = {}
        for user in self.users:
            self.by_login[normalise_login(user["login"])] = user
            if not self._mine(user):
                continue
            profile = user.get("profile") or {}
            number = profile.get("employeeNumber")
            if number not in (None, ""):
                self.by_number.setdefault(str(number), []).append(user)
            if self.login_derived and profile.get("email"):
                self.by_email.setdefault(str(profile["email"]).lower(), []).append(user)
        self.matched: dict[str, int] = {}  # user id -> the line that matched it
        self.new_logins: dict[str, int] = {}
        self.actions: list[UserAction] = []
        self.unchanged = 0

    # -- helpers

    def _mine(self, user: dict) -> bool:
        source = user.get("source", NATIVE_SOURCE)
        return source == self.source or (self.adopt and source == NATIVE_SOURCE)

    def _column(self, attribute: str) -> str:
        return self.parsed.column_for(attribute) if self.parsed else attribute

    def _reject(self, row: Row, attribute: str | None, reason: str) -> None:
        column = self._column(attribute) if attribute else None
        self.rejected.append(Rejection(row.line, column, reason, _cell_keys(v for v in row.profile.values() if v)))

    def _may_write(self, attribute: str, user: dict, master: str) -> bool:
        if self.owned is not None and attribute not in self.owned:
            return False
        writer = (user.get("attribute_sources") or {}).get(attribute, master)
        if writer == self.source:
            return True
        order = self.priorities.get(attribute)
        if order:
            rank = {s: i for i, s in enumerate(order)}
            mine, theirs = rank.get(self.source, len(order)), rank.get(writer, len(order))
            if mine != theirs:
                return mine < theirs
        return master == self.source

    # -- rows

    def plan_row(self, row: Row) -> None:
        number = row.profile.get("employeeNumber")
        by_number = self.by_number.get(number, []) if number else []
        if len(by_number) > 1:
            self._reject(row, "employeeNumber", f"employeeNumber {number!r} belongs to {len(by_number)} users: "
                         + ", ".join(sorted(u["login"] for u in by_number)))
            for user in by_number:
                self.matched.setdefault(user["id"], row.line)
            return
        user_by_number = by_number[0] if by_number else None
        user_by_login = self.by_login.get(row.login)
        if user_by_number is not None and user_by_login is not None and user_by_login is not user_by_number:
            self.matched.setdefault(user_by_number["id"], row.line)
            self.matched.setdefault(user_by_login["id"], row.line)
            return self._reject(row, "login", f"login {row.login!r} belongs to another user, not to employee {number} ({user_by_number['login']})")
        user = user_by_number or user_by_login
        if user is None and self.login_derived and row.profile.get("email"):
            by_email = self.by_email.get(row.profile["email"].lower(), [])
            if len(by_email) > 1:
                return self._reject(row, "email", f"the email belongs to {len(by_email)} users: " + ", ".join(sorted(u["login"] for u in by_email)))
            user = by_email[0] if by_email else None
        if user is None:
            return self._plan_new(row)
        if user["id"] in self.matched:
            return self._reject(row, "login", f"{user['login']} is also matched by line {self.matched[user['id']]}")
        self.matched[user["id"]] = row.line
        if user is not user_by_number and number and self._mine(user):
            theirs = (user.get("profile") or {}).get("employeeNumber")
            if theirs not in (None, "") and str(theirs) != number:
                return self._reject(row, "employeeNumber", f"{user['login']} is employee {theirs} in provtui, this row is employee {number}")
        self._plan_existing(row, user)

    def _plan_new(self, row: Row) -> None:
        if row.intent is Intent.DEACTIVATED:
            self.unchanged += 1  # terminated and never imported: nothing to do
            return
        if row.login in self.new_logins:  # only possible for rows not from parse_csv
            return self._reject(row, "login", f"login {row.login!r} is also on line {self.new_logins[row.login]}")
        owned = self.owned
        if owned is None:
            values = {a: v for a, v in row.profile.items() if v is not None}
        else:
            values = {a: v for a, v in row.profile.items() if v is not None and (a in owned or a in REQUIRED_ATTRIBUTES)}
        if self.parsed is not None:
            # parse_csv already checked names, login and email, and stripped the values: what
            # validate_profile would still do is the required check and the displayName.
            missing = next((a for a in REQUIRED_ATTRIBUTES if a not in values), None)
            if missing is not None:
                return self._reject(row, missing, "is required for a new user")
            if "displayName" not in values:
                values["displayName"] = f"{values['firstName']} {values['lastName']}"
            profile = values
        else:
            try:
                profile = validate_profile(values)
            except InvalidInput as e:
                return self._reject(row, e.field, e.message)
        lifecycle = _NEW_USER_LIFECYCLE[row.intent]
        state = _run(State.STAGED.value, lifecycle)
        self.new_logins[row.login] = row.line
        self.actions.append(UserAction(
            line=row.line, user_id=None, login=profile["login"], state_before=None, state_after=state, lifecycle=lifecycle,
            changes={}, profile=profile, outcomes=("created",), reason=_REASONS[row.intent] or "new",
        ))

    def _plan_existing(self, row: Row, user: dict) -> None:
        master = user.get("source", NATIVE_SOURCE)
        mine = self._mine(user)
        adopting = mine and master != self.source
        if not mine and not self.priorities:
            return self._reject(row, "login", f"{user['login']} is mastered by {master}: the {self.source} import does not change it")
        effective_master = self.source if mine else master
        state = user["state"]
        if mine and state == State.DELETED:
            if row.intent is Intent.DEACTIVATED:
                self.unchanged += 1
                return
            return self._reject(row, "status" if row.intent else "login", f"{user['login']} was deleted in provtui: it cannot be changed")

        lifecycle: tuple[str, ...] = _PATHS[row.intent].get(state, ()) if mine else ()
        try:
            state_after = _run(state, lifecycle)
        except InvalidInput as e:  # defensive: _PATHS only holds legal paths
            return self._reject(row, "status", e.message)

        current = user.get("profile") or {}
        changes: dict[str, tuple[Any, Any]] = {}
        written = False
        # The master writing with no provenance recorded: only owned_attributes can hold it back.
        every = effective_master == self.source and not user.get("attribute_sources")
        owned = self.owned
        for attribute, value in row.profile.items():
            if attribute == "login" and self.login_derived:
                continue  # a derived login names new users; it never renames one
            if value is None and attribute in REQUIRED_ATTRIBUTES:
                continue  # an empty required cell keeps the current value
            if every:
                if owned is not None and attribute not in owned:
                    continue
            elif not self._may_write(attribute, user, effective_master):
                continue
            written = True
            before = current.get(attribute)
            if not _same(before, value):
                changes[attribute] = (before, value)
        if "displayName" not in row.profile and ("firstName" in changes or "lastName" in changes):
            old = f"{current.get('firstName')} {current.get('lastName')}"
            if current.get("displayName") == old:
                first = changes.get("firstName", (None, current.get("firstName")))[1]
                last = changes.get("lastName", (None, current.get("lastName")))[1]
                changes["displayName"] = (old, f"{first} {last}")
        if not mine and not written:
            return self._reject(row, "login", f"{user['login']} is mastered by {master}: the {self.source} import does not change it")

        profile = current
        if changes:
            merged = {**current, **{a: after for a, (_, after) in changes.items()}}
            try:
                profile = validate_profile({k: v for k, v in merged.items() if v is not None})
            except InvalidInput as e:
                return self._reject(row, e.field, e.message)

        # Provenance: who wrote an attribute, when not the user's master source.
        sources = None
        old_sources = user.get("attribute_sources") or {}
        if changes and (old_sources or self.source != effective_master):
            new_sources = dict(old_sources)
            for attribute in changes:
                if self.source == effective_master:
                    new_sources.pop(attribute, None)
                else:
                    new_sources[attribute] = self.source
            if new_sources != old_sources:
                sources = new_sources

        outcomes: list[str] = []
        if changes or adopting or (lifecycle and lifecycle[0] == "activate" and state_after == State.ACTIVE):
            outcomes.append("updated")
        if state_after != state:
            if state_after == State.DEPROVISIONED:
                outcomes.append("deactivated")
            elif state_after == State.SUSPENDED:
                outcomes.append("suspended")
            elif state_after == State.ACTIVE and state in (State.SUSPENDED, State.DEPROVISIONED):
                outcomes.append("reactivated")
        if not outcomes:
            self.unchanged += 1
            return
        self.actions.append(UserAction(
            line=row.line, user_id=user["id"], login=profile.get("login", user["login"]), state_before=state, state_after=state_after,
            lifecycle=lifecycle, changes=changes, profile=profile, outcomes=tuple(outcomes), adopt=adopting,
            attribute_sources=sources, reason=_REASONS[row.intent] if mine else f"attributes only: mastered by {master}",
        ))

    def plan_missing(self) -> None:
        """Full import: this source's users that no row (accepted or rejected) names are deactivated."""
        protected: set[str] = set()
        for rejection in self.rejected:
            protected |= rejection.keys
        for user in self.users:
            if user.get("source", NATIVE_SOURCE) != self.source or user["id"] in self.matched:
                continue
            state = user["state"]
            if state in (State.DEPROVISIONED, State.DELETED):
                continue
            profile = user.get("profile") or {}
            names = {normalise_login(user["login"]), str(profile.get("email", "")).lower(), str(profile.get("employeeNumber", "")).lower()}
            if names & protected:
                continue
            self.actions.append(UserAction(
                line=None, user_id=user["id"], login=user["login"], state_before=state, state_after=State.DEPROVISIONED.value,
                lifecycle=("deactivate",), changes={}, profile=profile, outcomes=("deactivated",), reason="missing from the file",
            ))


@lru_cache(maxsize=64)
def _run(state: str, lifecycle: tuple[str, ...]) -> str:
    """The state ``lifecycle`` leads to from ``state`` (InvalidInput if a step is illegal)."""
    for action in lifecycle:
        state = transition(state, action).value
    return state
