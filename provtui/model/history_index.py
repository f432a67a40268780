"""Which audit events concern which user, kept up to date as the trail grows.

The trail is append-only: audit.jsonl, then the journal's newer events.  Each event
has a fixed position in it, so the index reads only what was appended since it
last looked, and remembers per login (following renames) and per downstream
account the positions of the events about them -- and, for events already in
audit.jsonl, their byte offset, so a user's history reads back a few lines
instead of the whole trail.  The first look reads the trail once.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable
from typing import Any

from provtui.model.audit_trail import call_account, event_logins, event_rename
from provtui.store import StoreBackend


class HistoryIndex:
    def __init__(self, store: StoreBackend):
        self.store = store
        self._file_end = 0  # bytes of audit.jsonl read
        self._offsets = array("q")  # byte offset of each audit.jsonl event, by position
        self._last_file_event: dict[str, Any] | None = None
        self._journal: list[dict[str, Any]] = []  # the events after audit.jsonl's, at positions len(_offsets)..
        self._indexed = 0  # positions indexed so far
        self._positions: dict[str, array[int]] = {}  # login or account key -> positions, oldest first

    def newest(self, keys: Iterable[str], limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` events about any of ``keys`` (logins casefolded, audit_trail.account_key), newest first."""
        self.catch_up()
        lists = [reversed(self._positions[k]) for k in dict.fromkeys(keys) if k in self._positions]
        chosen: list[int] = []
        for position in heapq.merge(*lists, reverse=True):
            if not chosen or chosen[-1] != position:  # an event about a login and an account of it: once
                chosen.append(position)
                if len(chosen) == limit:
                    break
        return [self._event(p) for p in chosen]

    def _event(self, position: int) -> dict[str, Any]:
        if position < len(self._offsets):
            return self.store.audit_file_event(self._offsets[position])
        return self._journal[position - len(self._offsets)]

    def catch_up(self) -> None:
        """Index what the trail gained since the last look."""
        tail, self._file_end = self.store.audit_file_tail(self._file_end)
        for offset, event in tail:
            self._offsets.append(offset)
            self._last_file_event = event
            self._index(len(self._offsets) - 1, event)  # a no-op for events first seen in the journal
        self._journal = self.store.journal_audit_events(self._last_file_event)
        for i, event in enumerate(self._journal):
            self._index(len(self._offsets) + i, event)

    def _index(self, position: int, event: dict[str, Any]) -> None:
        if position < self._indexed:
            return
        self._indexed = position + 1
        keys = event_logins(event)
        account = call_account(event)
        if account is not None:
            keys.add(account)
        for key in keys:
            self._positions.setdefault(key, array("q")).append(position)
        renamed = event_rename(event)
        if renamed is not None:  # the history moves with the login
            old, new = renamed
            moved = self._positions.pop(old, array("q"))
            self._positions[new] = array("q", sorted({*moved, *self._positions.get(new, ())}))
