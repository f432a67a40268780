"""The tables every backend holds in memory: keyed documents, the indexes over them, TinyDB
queries, and the Transaction that stages one change's writes and audit events.

A backend (journal_store.Store, memory_store.MemoryStore) subclasses Tables and decides how a
committed change is made durable and how other processes' changes arrive; applying the ops,
keeping the indexes and telling the listeners is the same for all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from provtui.store.errors import StoreError
from provtui.store.records import audit_hash


def chain(events: list[dict[str, Any]], head: str, seq: int, now: str) -> list[dict[str, Any]]:
    """A commit's audit events, numbered, timed and hash-chained onto ``head``."""
    chained = []
    for event in events:
        event = {"seq": seq, "time": now, **event}
        event["prev"] = head
        head = event["hash"] = audit_hash(head, event)
        chained.append(event)
    return chained


class _StrKeyTable(Table):
    # Our documents are keyed by strings we choose (ids, "app|user" pairs).
    document_id_class = str  # type: ignore[assignment]  # TinyDB's own are ints


class _LiveStorage(Storage):
    """Hands TinyDB the store's in-memory tables; TinyDB is used read-only."""

    def __init__(self, tables: dict[str, dict[str, dict[str, Any]]]):
        self.tables = tables

    def read(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.tables

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        raise StoreError("write through Store.transaction(), not TinyDB")


@dataclass
class _Index:
    field: str
    entries: dict[Any, set[str]] = dataclasses.field(default_factory=dict)  # (`field` here is the attribute)

    def add(self, key: str, doc: dict[str, Any]) -> None:
        value = doc.get(self.field)
        if value is not None:
            self.entries.setdefault(value, set()).add(key)

    def remove(self, key: str, doc: dict[str, Any]) -> None:
        value = doc.get(self.field)
        keys = self.entries.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.entries[value]


class Transaction:
    """Writes staged by one service call; applied only if the block succeeds."""

    def __init__(self, store: Tables):
        self._store = store
        self.ops: list[list[Any]] = []
        self.events: list[dict[str, Any]] = []
        self._pending: dict[str, dict[str, dict[str, Any] | None]] = {}  # table -> key -> new doc (None: deleted)
        # (table, field) -> value -> keys, over this transaction's own writes; built on first lookup,
        # then kept up to date, so a big import's lookups stay O(1) rather than O(writes so far).
        self._overlays: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self.correlation: str | None = None  # links this change to the downstream calls it causes

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        pending = self._pending.get(table)
        if pending is not None and key in pending:
            return pending[key]
        return self._store.get(table, key)

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        self._stage(table, key, doc)
        self.ops.append(["put", table, key, doc])

    def delete(self, table: str, key: str) -> None:
        self._stage(table, key, None)
        self.ops.append(["del", table, key])

    def _stage(self, table: str, key: str, doc: dict[str, Any] | None) -> None:
        pending = self._pending.setdefault(table, {})
        old = pending.get(key)
        pending[key] = doc
        for (t, fieldname), overlay in self._overlays.items():
            if t != table:
                continue
            if old is not None and old.get(fieldname) is not None:
                overlay.get(old.get(fieldname), set()).discard(key)
            if doc is not None and doc.get(fieldname) is not None:
                overlay.setdefault(doc.get(fieldname), set()).add(key)

    def audit(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def lookup(self, table: str, fieldname: str, value: Any) -> set[str]:
        """Index lookup that also sees this transaction's own writes."""
        pending = self._pending.get(table)
        if not pending:
            return self._store.lookup(table, fieldname, value)
        overlay = self._overlays.get((table, fieldname))
        if overlay is None:
            overlay = self._overlays[(table, fieldname)] = {}
            for key, doc in pending.items():
                if doc is not None and doc.get(fieldname) is not None:
                    overlay.setdefault(doc.get(fieldname), set()).add(key)
        # Stored matches not rewritten by us, plus our own writes that match.
        keys = {k for k in self._store.lookup(table, fieldname, value) if k not in pending}
        return keys | overlay.get(value, set())


def _matches(doc: dict[str, Any], text: str, fields: tuple[tuple[str, ...], ...], equals: dict[str, Any] | None) -> bool:
    if equals and any(doc.get(name) != value for name, value in equals.items()):
        return False
    if not text:
        return True
    for path in fields:
        value: Any = doc
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if value is not None and text in str(value).lower():
            return True
    return False


class Tables:
    """Documents by table and key, with indexes and listeners; what every backend reads from."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self._indexes: dict[tuple[str, str], _Index] = {}
        self._listeners: list[Callable[[list[list[Any]]], None]] = []
        self.db = TinyDB(storage=_LiveStorage, tables=self.tables)
        self.db.table_class = _StrKeyTable

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        docs = self.tables.get(table)  # not .get(table, {}): that makes a dict a call, the hottest read there is
        return None if docs is None else docs.get(key)

    def all(self, table: str) -> dict[str, dict[str, Any]]:
        return self.tables.get(table, {})

    def get_many(self, table: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored documents among ``keys`` (one query where the table is read by query)."""
        docs = self.tables.get(table, {})
        return {key: docs[key] for key in keys if key in docs}

    def queried(self, table: str) -> bool:
        """Whether this process reads ``table`` by query rather than holding it (only a PostgreSQL store does)."""
        return False

    def hold(self, *tables: str) -> None:
        """Hold ``tables`` (all if none is named) in memory from now on: every table here is held already."""

    def count(self, table: str, fieldname: str | None = None, value: Any = None) -> int:
        """How many documents ``table`` holds (whose ``fieldname``, an indexed one, is ``value``)."""
        return len(self.all(table)) if fieldname is None else len(self.lookup(table, fieldname, value))

    def search_page(
        self,
        table: str,
        *,
        order_by: str,
        text: str = "",
        fields: tuple[tuple[str, ...], ...] = (),
        equals: dict[str, Any] | None = None,
        keys: Collection[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        count_up_to: int | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many match, one page of them sorted by ``order_by``, a text field, in code-point order): the
        documents of ``table`` (among ``keys``) whose top-level fields equal ``equals`` and, with ``text`` (in
        lower case), in one of whose ``fields`` (paths into the document), lowercased, it appears.  With
        ``count_up_to``, more matches than that are counted as ``count_up_to + 1`` (a count of a million
        matches would read them all: "10,000+" says enough on a screen)."""
        docs = self.all(table)
        candidates = docs.values() if keys is None else [docs[key] for key in keys if key in docs]
        matched = [doc for doc in candidates if _matches(doc, text, fields, equals)]
        matched.sort(key=lambda doc: doc[order_by])
        end = None if limit is None else offset + limit
        return capped(len(matched), count_up_to), matched[offset:end]

    def table(self, name: str) -> Table:
        """A TinyDB table over the live data, for queries."""
        return self.db.table(name, cache_size=0)

    def add_index(self, table: str, fieldname: str) -> None:
        key = (table, fieldname)
        if key not in self._indexes:
            index = _Index(fieldname)
            self._indexes[key] = index
            self._rebuild_index(index, table)

    def _rebuild_index(self, index: _Index, table: str) -> None:
        index.entries.clear()
        for key, doc in self.tables.get(table, {}).items():
            index.add(key, doc)

    def lookup(self, table: str, fieldname: str, value: Any) -> set[str]:
        index = self._indexes.get((table, fieldname))
        if index is None:
            raise StoreError(f"no index on {table}.{fieldname}")
        return index.entries.get(value, set())

    def on_apply(self, listener: Callable[[list[list[Any]]], None]) -> None:
        """Call ``listener(ops)`` after ops (ours or another process's) are applied."""
        self._listeners.append(listener)

    def _apply_ops(self, ops: list[list[Any]]) -> None:
        for op in ops:
            table = self.tables.setdefault(op[1], {})
            key = op[2]
            old = table.get(key)
            if old is not None:
                for (t, _), index in self._indexes.items():
                    if t == op[1]:
                        index.remove(key, old)
            if op[0] == "put":
                doc = op[3]
                table[key] = doc
                for (t, _), index in self._indexes.items():
                    if t == op[1]:
                        index.add(key, doc)
            else:
                table.pop(key, None)

    def _notify(self, ops: list[list[Any]]) -> None:
        for listener in self._listeners:
            listener(ops)

    def _replace_tables(self, tables: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Hold ``tables`` instead (a reload, past changes never applied one by one): the indexes rebuilt, and
        the listeners told the net change."""
        old = dict(self.tables)
        self.tables.clear()
        self.tables.update(tables)
        for (table, _), index in self._indexes.items():
            self._rebuild_index(index, table)
        self.db.clear_cache()
        if self._listeners:
            self._notify_replaced(old)

    def _notify_replaced(self, old: dict[str, dict[str, dict[str, Any]]]) -> None:
        ops: list[list[Any]] = []
        for name in old.keys() | self.tables.keys():
            before, after = old.get(name, {}), self.tables.get(name, {})
            ops += [["del", name, key] for key in before.keys() - after.keys()]
            ops += [["put", name, key, doc] for key, doc in after.items() if before.get(key) != doc]
        if ops:
            self._notify(ops)


def capped(count: int, up_to: int | None) -> int:
    """``count``, or ``up_to + 1`` if it is more (search_page's ``count_up_to``)."""
    return count if up_to is None else min(count, up_to + 1)
