"""Moving a store between backends (`provtui store migrate --to LOCATION`): everything copied as it is — every
table's documents, the audit trail event for event (hashes and all), the commit number and the chain's head —
into a new store that must not exist yet, then read back and its chain verified against the source's."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from provtui.store.chain import ChainReport, verify_chain
from provtui.store.contract import StoreBackend
from provtui.store.errors import StoreError
from provtui.store.files import LOCK, store_files
from provtui.store.integrity import lay_down
from provtui.store.locations import Location, open_store, shown
from provtui.store.urls import is_url


@dataclass
class Contents:
    seq: int
    audit_head: str
    tables: dict[str, dict[str, dict[str, Any]]]
    events: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        return {name: len(docs) for name, docs in sorted(self.tables.items()) if docs}


def contents_of(store: StoreBackend) -> Contents:
    """The store as of one commit (read under its lock, shared)."""
    with store.reading():
        store.hold()  # every table, the queried ones too
        tables = {name: copy.deepcopy(store.all(name)) for name in getattr(store, "tables", {})}
        return Contents(store.seq, store.audit_head, tables, store.audit_events())


def copy_to(contents: Contents, target: Location) -> tuple[StoreBackend, ChainReport]:
    """A new store at ``target`` holding ``contents``, opened back and its chain verified (the report)."""
    if is_url(target):
        from provtui.store.postgres_store import PostgresStore

        PostgresStore.create_holding(str(target), contents.seq, contents.audit_head, contents.tables, contents.events)
    else:
        path = Path(target)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(path / LOCK)):
            if store_files(path):
                raise StoreError(f"a store already exists at {shown(target)}")
            lay_down(path, contents.seq, contents.audit_head, contents.tables, contents.events)
    copied = open_store(target)
    return copied, verify_chain(copied.audit_events(), expected_head=copied.audit_head)
