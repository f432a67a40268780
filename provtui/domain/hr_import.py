"""HR CSV import: a file exported from an HR system drives users and their lifecycle.

Pure: reads only the bytes/text it is given.  Three steps, each usable alone:

1. ``load_mapping(text)`` reads a small mapping file (column -> attribute, extra status words,
   options); ``DEFAULT_MAPPING`` recognises the common Workday/BambooHR headers
   (``provtui.domain.hr_mapping``).
2. ``parse_csv(data, mapping)`` decodes and checks the file: a ``ParsedFile`` of accepted
   ``Row``s and ``Rejection``s (line, column, reason).  A problem with the file as a whole
   (undecodable, no email column, an unclosed quote...) raises ``ImportFileError`` instead.
3. ``plan_import(parsed, existing, source=..., full=...)`` compares the rows with the users in
   the directory (``provtui.domain.import_plan``, the same for every source).

The status column's value becomes an ``Intent`` (active, suspended, deactivated, staged).

Rules where the issue is silent:
- No login column: the login is the work email, lowercased (Okta's default).  Such a derived
  login names new users only; it never renames an existing one.
- Key: employeeNumber when the file has that column, else login; both must be unique in the file
  (every row sharing one is rejected: which one is right is unclear).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from operator import itemgetter

from provtui.domain.errors import InvalidInput
from provtui.domain.hr_mapping import DEFAULT_MAPPING, IGNORE, STATUS, ColumnMapping, ImportFileError, load_mapping, norm_header
from provtui.domain.import_actions import ImportPlan, deprovision_ratio
from provtui.domain.import_plan import plan_import
from provtui.domain.import_rows import Intent, ParsedFile, Rejection, Row, cell_keys
from provtui.domain.users import ATTRIBUTE_NAME, EMAIL_PATTERN, normalise_login, validate_login

__all__ = [  # the mapping and the plan are re-exported for the importers of this module's old names
    "DEFAULT_MAPPING",
    "MAX_VALUE_LENGTH",
    "ColumnMapping",
    "ImportFileError",
    "ImportPlan",
    "Intent",
    "ParsedFile",
    "Rejection",
    "Row",
    "deprovision_ratio",
    "load_mapping",
    "parse_csv",
    "plan_import",
]

MAX_VALUE_LENGTH = 1024  # longer cell values are rejected (nothing legitimate is that long)


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
        delimiter, skipped, text = sep.group(1), 1, text[sep.end() :]
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
                raise ImportFileError(
                    "file", "a quoted field starts here and is never closed: nothing after it can be read", line
                ) from None
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
        rows=tuple(rows),
        rejections=tuple(rejections),
        columns=layout.columns,
        status_column=layout.status_header,
        key=layout.key,
        login_derived=layout.login_derived,
        ignored_columns=tuple(layout.ignored),
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
            "file", f"byte {e.start + offset} (0x{data[e.start]:02x}) is not UTF-8: export or save the file as CSV UTF-8", line
        ) from None


class _Layout:
    """The header resolved against the mapping: which cell of a row feeds which attribute."""

    def __init__(self, header: list[str], mapping: ColumnMapping, line: int):
        wanted: dict[str, tuple[int, str]] = {}  # normalised header -> (preference, target)
        for preference, (name, target) in enumerate(mapping.columns):
            wanted.setdefault(norm_header(name), (preference, target))
        candidates: dict[str, list[tuple[int, int]]] = {}  # target -> [(preference, index)]
        used_at: dict[str, int] = {}
        self.ignored: list[str] = []
        self.ignored_by_mapping: list[str] = []
        for index, name in enumerate(header):
            norm = norm_header(name)
            hit = wanted.get(norm) if norm else None
            if hit is None or hit[1] == IGNORE:
                if name:
                    self.ignored.append(name)
                    if hit is not None:
                        self.ignored_by_mapping.append(name)
                continue
            if norm in used_at:
                raise ImportFileError(
                    name, f"the header has two columns named {header[used_at[norm]]!r} and {name!r}: which one to import is unclear", line
                )
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
            if not ATTRIBUTE_NAME.match(attribute):
                raise ImportFileError(header[indexes[0]], f"{attribute!r} is not an attribute name", line)
        single = [(attribute, indexes[0]) for attribute, indexes in self.attributes if len(indexes) == 1]
        self._single_names = tuple(attribute for attribute, _ in single)
        self._pick: Callable[[list[str]], tuple[str, ...]]
        if len(single) > 1:
            self._pick = itemgetter(*(index for _, index in single))
        else:
            only = [index for _, index in single]
            self._pick = lambda cells: tuple(cells[i] for i in only)
        self._multiple = [(attribute, indexes) for attribute, indexes in self.attributes if len(indexes) > 1]
        for attribute in ("email", "firstName", "lastName"):
            if attribute not in self.columns:
                known = ", ".join(name for name, target in mapping.columns if target == attribute)[:200]
                raise ImportFileError(
                    attribute, f"no column of the file maps to {attribute} (recognised: {known}; or map one in the mapping file)", line
                )
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
            if len(cells) > self.width and not any(c.strip() for c in cells[self.width :]):
                cells = cells[: self.width]
            else:
                return self._reject(line, None, f"has {len(cells)} fields; the header has {self.width}", cells)
        profile: dict[str, str | None] = {a: (v.strip() or None) for a, v in zip(self._single_names, self._pick(cells), strict=False)}
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
                return self._reject(
                    line,
                    self.status_header,
                    f"unknown employment status {raw_status[:80]!r} (map it in the [status] section of the mapping file)",
                    cells,
                )

        email = profile["email"]
        if email is not None and not EMAIL_PATTERN.match(email):
            return self._reject(line, self.header_of("email"), f"{email[:80]!r} is not an email address", cells)
        if self.login_derived:
            if email is None:
                return self._reject(line, self.header_of("email"), "is empty: the login is made from the work email", cells)
            try:
                profile["login"] = validate_login(email)
            except InvalidInput:
                return self._reject(
                    line, self.header_of("email"), f"{email[:80]!r} cannot be used as a login (letters, digits and . _ @ + -)", cells
                )
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
        return Rejection(line, column, reason, cell_keys(cells))


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
                bad[position] = Rejection(
                    row.line,
                    layout.header_of(attribute),
                    f"{attribute} {value!r} is also on line {others}",
                    cell_keys(v for v in row.profile.values() if v),
                )
    if not bad:
        return rows
    rejections.extend(bad.values())
    return [row for position, row in enumerate(rows) if position not in bad]
