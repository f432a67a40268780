"""A store that lives in one process's memory: no files, no lock, no other process.

It keeps the whole store contract (provtui.store.contract) except durability, so the service,
the read model and the engine can be exercised without I/O, and the contract suite has a second
backend to hold the journal store to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from provtui.store.records import GENESIS_HASH
from provtui.store.tables import Tables, Transaction, chain


class MemoryStore(Tables):
    def __init__(self, name: str = "memory", clock: Callable[[], str] | None = None):
        from provtui.clock import utc_now_iso

        super().__init__()
        self.path = Path(name)
        self.clock = clock or utc_now_iso
        self.seq = 0
        self.audit_head = GENESIS_HASH
        self._events: list[dict[str, Any]] = []

    def deferred_sync(self) -> AbstractContextManager[None]:
        return nullcontext()  # each commit is durable on its own

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        tx = Transaction(self)
        yield tx
        if tx.ops or tx.events:
            now = self.clock()
            events = chain(tx.events, self.audit_head, self.seq + 1, now)
            self._apply_ops(tx.ops)
            self.seq += 1
            self._events += events
            if events:
                self.audit_head = events[-1]["hash"]
            self._notify(tx.ops)

    @contextmanager
    def reading(self) -> Iterator[None]:
        yield

    def refresh(self) -> bool:
        return False  # no other process can write it

    def compact(self) -> None:
        pass

    def audit_events(self) -> list[dict[str, Any]]:
        return list(self._events)

    def audit_events_newest_first(self) -> Iterator[dict[str, Any]]:
        newest: Iterator[dict[str, Any]] = reversed(self._events)  # (reversed() is Any to mypy)
        return newest

    def audit_file_tail(self, offset: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        return list(enumerate(self._events[offset:], offset)), len(self._events)

    def audit_file_event(self, offset: int) -> dict[str, Any]:
        return self._events[offset]

    def journal_audit_events(self, after: dict[str, Any] | None) -> list[dict[str, Any]]:
        return []  # every event is already where audit_file_tail reads
