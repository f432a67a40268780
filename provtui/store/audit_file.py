"""The audit trail's file of a journal store (audit.jsonl): the events a compaction moved out of the journal,
appended once each, and read strictly (a torn end left out, any other bad record damage), newest first or whole.

A mixin of provtui.store.journal_store.Store: it reads ``path`` and ``_journal_events`` (the audit events still
in the journal, not yet moved).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provtui.store.errors import StoreDamaged
from provtui.store.files import AUDIT, open_private, read_file
from provtui.store.records import Damage, encode_line, scan


def _after(last: dict[str, Any] | None, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that follow ``last`` (audit.jsonl's newest event).

    Matched by hash, not seq: one commit's events share a seq, and a compaction
    killed mid-append may have moved only some of them.
    """
    if last is not None:
        for i, event in enumerate(events):
            if event["hash"] == last["hash"]:
                return events[i + 1 :]
        return [e for e in events if e["seq"] > last["seq"]]
    return events


class AuditFile:
    path: Path
    _journal_events: list[dict[str, Any]]

    def _append_audit_file(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        path = self.path / AUDIT
        last, good_end, size = self._audit_tail()
        fresh = _after(last, events)  # a crashed compaction may have moved some
        if not fresh:
            return
        fd = open_private(path, os.O_RDWR | os.O_APPEND)
        try:
            if good_end != size:
                os.ftruncate(fd, good_end)  # a torn end: a compaction killed mid-append (the journal still has it)
            whole = good_end == 0 or os.pread(fd, 1, good_end - 1) == b"\n"
            os.write(fd, (b"" if whole else b"\n") + b"".join(encode_line(e) for e in fresh))
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the audit trail's file: strict reads ------------------------------------------

    def _audit_records(self, data: bytes, offset: int, number: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """The events in ``data`` (read from audit.jsonl at ``offset``) and the bytes they span; a torn
        end is left out, damage raises StoreDamaged."""
        events, used, damage = scan(data, AUDIT, base_offset=offset, first_number=number or 1)
        if damage is not None:
            if number is None:  # the record's number: count the lines before it (only when damaged)
                damage = Damage(AUDIT, damage.offset, read_file(self.path / AUDIT)[: damage.offset].count(b"\n") + 1, damage.reason)
            raise StoreDamaged(damage)
        return events, used

    def _audit_tail(self) -> tuple[dict[str, Any] | None, int, int]:
        """audit.jsonl's newest event, where its intact records end, and its size."""
        path = self.path / AUDIT
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(0, size - 65536)
                f.seek(start)
                data = f.read()
        except FileNotFoundError:
            return None, 0, 0
        except (IsADirectoryError, PermissionError):
            read_file(path)  # raises StoreUnreadable, saying why
            raise
        skip = data.find(b"\n") + 1 if start > 0 else 0
        events, used = self._audit_records(data[skip:], start + skip)
        if not events and start > 0:  # one event longer than the block: read it whole
            events, used = self._audit_records(read_file(path), 0, 1)
            return (events[-1] if events else None), used, size
        return (events[-1] if events else None), start + skip + used, size

    def _read_audit_file(self) -> list[dict[str, Any]]:
        path = self.path / AUDIT
        if not path.exists():
            return []
        return self._audit_records(read_file(path), 0, 1)[0]

    def audit_file_tail(self, offset: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """audit.jsonl's intact events from byte ``offset`` on, each with its own offset, and the offset
        after the last one: an append-only file, so a reader can keep its place (provtui.model.history_index)."""
        path = self.path / AUDIT
        if not path.exists():
            return [], offset
        data = read_file(path, offset)
        if offset and data[:1] == b"\n":  # the newline a compaction gave the whole last event we read
            offset, data = offset + 1, data[1:]
        events, used = self._audit_records(data, offset)
        offsets, pos = [], 0
        for _ in events:
            offsets.append(offset + pos)
            pos = data.find(b"\n", pos) + 1 or len(data)
        return list(zip(offsets, events, strict=False)), offset + used

    def audit_file_event(self, offset: int) -> dict[str, Any]:
        """The one audit.jsonl event at byte ``offset`` (as audit_file_tail gave it)."""
        with open(self.path / AUDIT, "rb") as f:
            f.seek(offset)
            return self._audit_records(f.readline(), offset)[0][0]

    def journal_audit_events(self, after: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The audit events still in the journal that follow ``after`` (audit.jsonl's newest event)."""
        return _after(after, self._journal_events)

    def audit_events_newest_first(self, block: int = 1 << 20) -> Iterator[dict[str, Any]]:
        """The audit trail, newest first, read lazily: audit.jsonl from its end a block at a time, so
        the newest page of a long trail costs a block, not the whole file."""
        path = self.path / AUDIT
        moved_last, good_end, _ = self._audit_tail()
        yield from reversed(_after(moved_last, self._journal_events))
        if not path.exists():
            return
        with open(path, "rb") as f:
            end = good_end
            carry = b""  # the start of a line whose beginning is in the block before
            while end > 0:
                start = max(0, end - block)
                f.seek(start)
                data = f.read(end - start) + carry
                newline = data.find(b"\n")
                if start > 0 and newline < 0:  # one line longer than a block: read on
                    carry, end = data, start
                    continue
                cut = newline + 1 if start > 0 else 0
                carry, whole = data[:cut], data[cut:]
                yield from reversed(self._audit_records(whole, start + cut)[0])
                end = start

    def audit_events(self) -> list[dict[str, Any]]:
        """The whole audit trail, oldest first."""
        moved = self._read_audit_file()
        return moved + _after(moved[-1] if moved else None, self._journal_events)
