"""What an import source yields: accepted rows, rejected rows, and the intent of each person.

A CSV export (``provtui.domain.hr_import.parse_csv``) and an LDAP search (``provtui.service.imports``)
both read into a ``ParsedFile``; ``provtui.domain.import_plan.plan_import`` plans it against the
directory, whichever source it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

NATIVE_SOURCE = "provtui"  # the source of users created in provtui itself


class Intent(StrEnum):
    """What the source says the person should be (an HR status, an enabled or disabled entry)."""

    ACTIVE = "active"  # hired, active, returned...: active (created, activated, unsuspended or reactivated)
    SUSPENDED = "suspended"  # on leave: suspended
    DEACTIVATED = "deactivated"  # terminated: deprovisioned
    STAGED = "staged"  # pre-hire: created staged, not yet active


@dataclass(slots=True)
class Rejection:
    """A row that is not imported: its physical line, the CSV column at fault (None: the row), why."""

    line: int
    column: str | None
    reason: str
    # Every cell of the row, lowercased: a full import never deactivates a user the row may name.
    keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass(slots=True)
class Row:
    """An accepted row.  ``profile`` holds every mapped attribute: None is an empty cell."""

    line: int
    key: str  # the value of the key attribute (login or employeeNumber)
    profile: dict[str, str | None]
    intent: Intent | None  # None: the file has no status column
    status: str | None = None  # the status as written in the file
    external_id: str | None = None  # the entry's immutable id in its source (a directory's objectGUID / entryUUID)

    @property
    def login(self) -> str:
        return self.profile["login"]  # type: ignore[return-value]


@dataclass(frozen=True)
class ParsedFile:
    """What a source read: its rows and rejections, and where each attribute came from (for messages)."""

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


def cell_keys(cells: Iterable[str]) -> frozenset[str]:
    """Every non-empty cell, stripped and lowercased: what a rejected row may name (see ``Rejection.keys``)."""
    return frozenset(k for k in (c.strip().lower() for c in cells) if k)
