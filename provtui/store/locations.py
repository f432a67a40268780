"""Where a store lives: a directory (the embedded journal store) or a PostgreSQL database named by a libpq
URI (``postgresql://…``, ``postgres://…``; a Unix-socket host as ``?host=/run/postgresql``).  One place
chooses the backend, so nothing else names one."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from provtui.store.urls import is_url, redacted

if TYPE_CHECKING:
    from provtui.store.contract import StoreBackend

Location = Path | str  # a directory, or a database's URL


def as_location(text: str | os.PathLike[str]) -> Location:
    """What an admin names with --store or $PROVTUI_STORE: a URL stays as typed (a Path would fold its //)."""
    return text if isinstance(text, str) and is_url(text) else Path(text)


def shown(location: Location) -> str:
    return redacted(location) if isinstance(location, str) else str(location)


def store_exists(location: Location) -> bool:
    if is_url(location):
        from provtui.store.postgres_store import PostgresStore

        return PostgresStore.exists(str(location))
    from provtui.store.journal_store import Store

    return Store.exists(Path(location))


def open_store(location: Location, *, create: bool = False, queried: Collection[str] = ()) -> StoreBackend:
    """The store at ``location``; with ``create``, a new one made there (never over another).  ``queried``: the
    tables to read by query rather than hold, where the backend can (PostgreSQL)."""
    if is_url(location):
        from provtui.store.postgres_store import PostgresStore

        return PostgresStore.open(str(location), create=create, queried=queried)
    from provtui.store.journal_store import Store

    return Store.open(Path(location), create=create)
