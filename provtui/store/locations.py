"""Where a store lives: a directory (the embedded journal store) or a PostgreSQL database named by a libpq
URI (``postgresql://…``, ``postgres://…``; a Unix-socket host as ``?host=/run/postgresql``).  One place
chooses the backend, so nothing else names one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from provtui.store.contract import StoreBackend

URL_SCHEMES = ("postgresql://", "postgres://")
Location = Path | str  # a directory, or a database's URL


def is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def as_location(text: str | os.PathLike[str]) -> Location:
    """What an admin names with --store or $PROVTUI_STORE: a URL stays as typed (a Path would fold its //)."""
    return text if isinstance(text, str) and is_url(text) else Path(text)


def redacted(url: str) -> str:
    """``url`` fit to print, log or audit: a password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials.partition(':')[0]}:***@{host}"))


def shown(location: Location) -> str:
    return redacted(location) if isinstance(location, str) else str(location)


def store_exists(location: Location) -> bool:
    if is_url(location):
        from provtui.store.postgres_store import PostgresStore

        return PostgresStore.exists(str(location))
    from provtui.store.journal_store import Store

    return Store.exists(Path(location))


def open_store(location: Location, *, create: bool = False) -> StoreBackend:
    """The store at ``location``; with ``create``, a new one made there (never over another)."""
    if is_url(location):
        from provtui.store.postgres_store import PostgresStore

        return PostgresStore.open(str(location), create=create)
    from provtui.store.journal_store import Store

    return Store.open(Path(location), create=create)
