"""A table the PostgreSQL store reads by query instead of holding (#19): a process keeps only the documents it
has read lately, so its memory stays about a page's worth whatever the directory's size.

``QueriedTable`` stands where a held table's dict would be in ``Tables.tables`` and answers ``get`` from a
bounded cache, then from the database.  A commit (ours or another process's) drops what it wrote from the
cache: the database is the truth, read again when asked.  Whatever needs the whole table (``Tables.all``, a
report, a full plan) makes it held again (``PostgresStore.hold``), in that process only.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

CACHED_DOCS = 20_000  # documents a queried table keeps between queries (a few pages of a list, a person's view)

Fetch = Callable[[str, list[str]], dict[str, dict[str, Any]]]  # (table, keys) -> the stored documents among them


class QueriedTable:
    """One table's recently read documents, and the way to read the rest."""

    def __init__(self, name: str, fetch: Fetch, limit: int | None = None) -> None:
        self.name = name
        self._fetch = fetch
        self._limit = limit or CACHED_DOCS
        self._docs: OrderedDict[str, dict[str, Any] | None] = OrderedDict()  # None: read, and not stored
        # (field, value) -> how many documents have it (None, None: all of them), until a write to the table: a
        # console counts everyone on every keystroke, a million rows each time.
        self.counts: dict[tuple[str | None, Any], int] = {}

    def get(self, key: str, default: None = None) -> dict[str, Any] | None:
        try:
            doc = self._docs[key]
        except KeyError:
            doc = self._fetch(self.name, [key]).get(key)
            self._keep(key, doc)
            return doc
        self._docs.move_to_end(key)
        return doc

    def many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored documents among ``keys``, in one query for those not cached."""
        found: dict[str, dict[str, Any]] = {}
        missing = []
        for key in keys:
            if key in self._docs:
                doc = self._docs[key]
                if doc is not None:
                    found[key] = doc
            else:
                missing.append(key)
        if missing:
            fetched = self._fetch(self.name, missing)
            for key in missing:
                doc = fetched.get(key)
                self._keep(key, doc)
                if doc is not None:
                    found[key] = doc
        return found

    def keep(self, docs: dict[str, dict[str, Any]]) -> None:
        """Documents a query read anyway (a page of a list): the next ``get`` of them costs nothing."""
        for key, doc in itertools.islice(docs.items(), self._limit):
            self._keep(key, doc)

    def forget(self, key: str) -> None:
        """A write to ``key``: what was read of it, and every count, may be wrong now."""
        self._docs.pop(key, None)
        self.counts.clear()

    def clear(self) -> None:
        self._docs.clear()
        self.counts.clear()

    def cached(self) -> int:
        return len(self._docs)

    def _keep(self, key: str, doc: dict[str, Any] | None) -> None:
        self._docs[key] = doc
        self._docs.move_to_end(key)
        while len(self._docs) > self._limit:
            self._docs.popitem(last=False)
