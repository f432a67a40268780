"""The crash-safe, multi-process store.

State lives in memory as tables of documents (TinyDB's storage layout, so TinyDB
queries run over it).  Durability comes from an append-only journal: one line per
committed transaction, written and fsync'd under an inter-process file lock before
the commit returns.  A snapshot (temp file, fsync, ``os.replace``) compacts the
journal now and then.  Another process's commits are picked up by reading the
journal past the offset we last saw.

Why not TinyDB's own storages: JSONStorage rewrites the whole file in place on
every write (quadratic, and a kill -9 mid-write corrupts it), and TinyDB's Table
rebuilds its dict on every insert (measured: 20 ms per insert at 50,000 documents).
Keyed reads and writes therefore go straight to the tables; TinyDB serves queries.

Journal line format: ``<crc32 hex8> <json>\\n``.  A torn last line (no newline,
or a bad checksum) was never acknowledged and is ignored, then truncated away by
the next writer.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

SNAPSHOT = "snapshot.json"
AUDIT = "audit.jsonl"
LOCK = "store.lock"
COMPACT_EVERY = 20_000  # journal records between snapshots
GENESIS_HASH = "0" * 64


class StoreError(Exception):
    """The store cannot be opened or written."""


def file_mode(directory: Path) -> int:
    """0600, or 0660 when the store directory is shared with a group (group-writable, as `init --group` makes it)."""
    try:
        shared = os.stat(directory).st_mode & stat.S_IWGRP
    except FileNotFoundError:
        shared = 0
    return 0o660 if shared else 0o600


def _open(path: Path, flags: int) -> int:
    """Open (creating) a store file with the store's mode, whatever the umask: a group-shared
    store's files must stay group-writable, a private one's private."""
    mode = file_mode(path.parent)
    fd = os.open(path, flags | os.O_CREAT, mode)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, mode)
    except OSError:
        pass
    return fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = _open(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def encode_line(record: dict) -> bytes:
    body = orjson.dumps(record)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode_lines(data: bytes) -> tuple[list[dict], int]:
    """Complete, intact records in ``data`` and the byte count they span."""
    records: list[dict] = []
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end]
        if len(line) < 10 or line[8:9] != b" ":
            break
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body):
                break
            records.append(orjson.loads(body))
        except ValueError:
            break
        pos = end + 1
    return records, pos


def audit_hash(prev: str, event: dict) -> str:
    body = orjson.dumps({k: v for k, v in event.items() if k != "hash"}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + body).hexdigest()


def _after(last: dict | None, events: list[dict]) -> list[dict]:
    """The events that follow ``last`` (audit.jsonl's newest event).

    Matched by hash, not seq: one commit's events share a seq, and a compaction
    killed mid-append may have moved only some of them.
    """
    if last is not None:
        for i, event in enumerate(events):
            if event["hash"] == last["hash"]:
                return events[i + 1:]
        return [e for e in events if e["seq"] > last["seq"]]
    return events


def _cut_torn_tail(fd: int) -> None:
    """Cut a partial last line (a compaction killed mid-append) so appends start on a fresh line."""
    end = size = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - 65536)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end != size:
        os.ftruncate(fd, end)


class _StrKeyTable(Table):
    # Our documents are keyed by strings we choose (ids, "app|user" pairs).
    document_id_class = str


class _LiveStorage(Storage):
    """Hands TinyDB the store's in-memory tables; TinyDB is used read-only."""

    def __init__(self, tables: dict[str, dict[str, dict]]):
        self.tables = tables

    def read(self):
        return self.tables

    def write(self, data) -> None:
        raise StoreError("write through Store.transaction(), not TinyDB")


@dataclass
class _Index:
    field: str
    entries: dict[Any, set[str]] = field(default_factory=dict)

    def add(self, key: str, doc: dict) -> None:
        value = doc.get(self.field)
        if value is not None:
            self.entries.setdefault(value, set()).add(key)

    def remove(self, key: str, doc: dict) -> None:
        value = doc.get(self.field)
        keys = self.entries.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.entries[value]


class Transaction:
    """Writes staged by one service call; applied only if the block succeeds."""

    def __init__(self, store: Store):
        self._store = store
        self.ops: list[list] = []
        self.events: list[dict] = []
        self._pending: dict[str, dict[str, dict | None]] = {}  # table -> key -> new doc (None: deleted)
        # (table, field) -> value -> keys, over this transaction's own writes; built on first lookup,
        # then kept up to date, so a big import's lookups stay O(1) rather than O(writes so far).
        self._overlays: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self.correlation: str | None = None  # links this change to the downstream calls it causes

    def get(self, table: str, key: str) -> dict | None:
        pending = self._pending.get(table)
        if pending is not None and key in pending:
            return pending[key]
        return self._store.get(table, key)

    def put(self, table: str, key: str, doc: dict) -> None:
        self._stage(table, key, doc)
        self.ops.append(["put", table, key, doc])

    def delete(self, table: str, key: str) -> None:
        self._stage(table, key, None)
        self.ops.append(["del", table, key])

    def _stage(self, table: str, key: str, doc: dict | None) -> None:
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

    def audit(self, event: dict) -> None:
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


class Store:
    """One store directory, shared safely by several processes."""

    def __init__(self, path: Path, clock: Callable[[], str]):
        self.path = path
        self.clock = clock
        self.tables: dict[str, dict[str, dict]] = {}
        self._indexes: dict[tuple[str, str], _Index] = {}
        self._lock = FileLock(str(path / LOCK), mode=file_mode(path))
        self._journal_name = ""
        self._offset = 0
        self._snapshot_id: tuple[int, int] | None = None
        self.seq = 0
        self.audit_head = GENESIS_HASH
        self._journal_events: list[dict] = []  # audit events not yet moved to audit.jsonl
        self._journal_records = 0
        self._listeners: list[Callable[[list[list]], None]] = []
        self.db = TinyDB(storage=_LiveStorage, tables=self.tables)
        self.db.table_class = _StrKeyTable

    # -- opening -------------------------------------------------------------------

    @classmethod
    def exists(cls, path: Path) -> bool:
        return (Path(path) / SNAPSHOT).exists()

    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = False, clock: Callable[[], str] | None = None) -> Store:
        from provtui.clock import utc_now_iso

        path = Path(path)
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not cls.exists(path):
            raise StoreError(f"no store at {path} (run `provtui init` first)")
        store = cls(path, clock or utc_now_iso)
        with store._lock:
            if not cls.exists(path):
                journal = "journal-0.jsonl"
                store._create_journal(journal)
                _write_atomic(path / SNAPSHOT, orjson.dumps({"seq": 0, "journal": journal, "audit_head": GENESIS_HASH, "tables": {}}))
            store._load_snapshot()
            store._catch_up(repair=True)
        return store

    def _create_journal(self, name: str) -> None:
        fd = _open(self.path / name, os.O_WRONLY | os.O_APPEND)
        os.fsync(fd)
        os.close(fd)
        _fsync_dir(self.path)

    def _snapshot_identity(self) -> tuple[int, int]:
        st = os.stat(self.path / SNAPSHOT)
        return (st.st_ino, st.st_mtime_ns)

    def _load_snapshot(self) -> None:
        identity = self._snapshot_identity()
        snap = orjson.loads((self.path / SNAPSHOT).read_bytes())
        old = dict(self.tables)
        self.tables.clear()
        self.tables.update(snap["tables"])
        self.seq = snap["seq"]
        self.audit_head = snap["audit_head"]
        self._journal_name = snap["journal"]
        self._offset = 0
        self._journal_events = []
        self._journal_records = 0
        self._snapshot_id = identity
        for (table, _), index in self._indexes.items():
            self._rebuild_index(index, table)
        self.db.clear_cache()
        if self._listeners:
            self._notify_reload(old)

    def _notify_reload(self, old: dict[str, dict[str, dict]]) -> None:
        # Another process compacted past records we never applied: tell listeners the net change.
        ops: list[list] = []
        for name in old.keys() | self.tables.keys():
            before, after = old.get(name, {}), self.tables.get(name, {})
            ops += [["del", name, key] for key in before.keys() - after.keys()]
            ops += [["put", name, key, doc] for key, doc in after.items() if before.get(key) != doc]
        if ops:
            for listener in self._listeners:
                listener(ops)

    # -- reading -------------------------------------------------------------------

    def get(self, table: str, key: str) -> dict | None:
        return self.tables.get(table, {}).get(key)

    def all(self, table: str) -> dict[str, dict]:
        return self.tables.get(table, {})

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

    def on_apply(self, listener: Callable[[list[list]], None]) -> None:
        """Call ``listener(ops)`` after ops (ours or another process's) are applied."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Pick up commits made by other processes. Returns True if anything changed."""
        before = self.seq
        if self._snapshot_identity() != self._snapshot_id:
            with self._lock:
                self._load_snapshot()
                self._catch_up()
            return True
        try:
            self._catch_up()
        except FileNotFoundError:  # another process compacted the journal away since the check
            with self._lock:
                self._load_snapshot()
                self._catch_up()
            return True
        return self.seq != before

    def _catch_up(self, repair: bool = False) -> None:
        journal = self.path / self._journal_name
        with open(journal, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        records, used = decode_lines(data)
        for record in records:
            if record["seq"] <= self.seq:
                continue  # already in the snapshot
            self._apply(record)
        self._offset += used
        if repair and used < len(data):
            # A torn tail from a crashed writer: it was never acknowledged.
            os.truncate(journal, self._offset)

    def _apply(self, record: dict) -> None:
        ops = record["ops"]
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
        self.seq = record["seq"]
        if record.get("audit"):
            self._journal_events.extend(record["audit"])
            self.audit_head = record["audit"][-1]["hash"]
        self._journal_records += 1
        for listener in self._listeners:
            listener(ops)

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Lock, catch up, let the caller stage writes, then commit durably.

        If the block raises, nothing is written.  When the block returns, the
        commit is on disk (fsync'd) before this returns: that is acknowledgement.
        """
        with self._lock:
            if self._snapshot_identity() != self._snapshot_id:
                self._load_snapshot()
            self._catch_up(repair=True)
            tx = Transaction(self)
            yield tx
            if tx.ops or tx.events:
                self._commit(tx)

    def _commit(self, tx: Transaction) -> None:
        now = self.clock()
        head = self.audit_head
        events = []
        for event in tx.events:
            event = {"seq": self.seq + 1, "time": now, **event}
            event["prev"] = head
            head = event["hash"] = audit_hash(head, event)
            events.append(event)
        record = {"seq": self.seq + 1, "time": now, "ops": tx.ops, "audit": events}
        line = encode_line(record)
        journal = self.path / self._journal_name
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._offset += len(line)
        self._apply(record)
        if self._journal_records >= COMPACT_EVERY:
            self._compact()

    def compact(self) -> None:
        with self._lock:
            if self._snapshot_identity() != self._snapshot_id:
                self._load_snapshot()
            self._catch_up(repair=True)
            self._compact()

    def _compact(self) -> None:
        """Fold the journal into a new snapshot; move its audit events to audit.jsonl."""
        self._append_audit_file(self._journal_events)
        journal = f"journal-{self.seq}.jsonl"
        old = self._journal_name
        if journal != old:
            self._create_journal(journal)
        snap = {"seq": self.seq, "journal": journal, "audit_head": self.audit_head, "tables": self.tables}
        _write_atomic(self.path / SNAPSHOT, orjson.dumps(snap))
        self._snapshot_id = self._snapshot_identity()
        self._journal_name = journal
        self._offset = 0
        self._journal_events = []
        self._journal_records = 0
        for stale in [*self.path.glob("journal-*.jsonl"), *self.path.glob(f".{SNAPSHOT}.*.tmp")]:  # + a killed compaction's temp file
            if stale.name != journal:
                stale.unlink(missing_ok=True)

    def _append_audit_file(self, events: list[dict]) -> None:
        if not events:
            return
        path = self.path / AUDIT
        tail = self._read_audit_file(tail_only=True)
        fresh = _after(tail[-1] if tail else None, events)  # a crashed compaction may have moved some
        if not fresh:
            return
        fd = _open(path, os.O_RDWR | os.O_APPEND)
        try:
            _cut_torn_tail(fd)
            os.write(fd, b"".join(encode_line(e) for e in fresh))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read_audit_file(self, tail_only: bool = False) -> list[dict]:
        path = self.path / AUDIT
        if not path.exists():
            return []
        with open(path, "rb") as f:
            if tail_only:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - 65536))
                data = f.read()
                start = data.find(b"\n") + 1 if size > 65536 else 0
                return decode_lines(data[start:])[0][-1:]
            return decode_lines(f.read())[0]

    def audit_file_tail(self, offset: int) -> tuple[list[tuple[int, dict]], int]:
        """audit.jsonl's intact events from byte ``offset`` on, each with its own offset, and the offset
        after the last one: an append-only file, so a reader can keep its place (provtui.history_index)."""
        path = self.path / AUDIT
        if not path.exists():
            return [], offset
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        events, used = decode_lines(data)
        offsets, pos = [], 0
        for _ in events:
            offsets.append(offset + pos)
            pos = data.index(b"\n", pos) + 1
        return list(zip(offsets, events)), offset + used

    def audit_file_event(self, offset: int) -> dict:
        """The one audit.jsonl event at byte ``offset`` (as audit_file_tail gave it)."""
        with open(self.path / AUDIT, "rb") as f:
            f.seek(offset)
            return decode_lines(f.readline())[0][0]

    def journal_audit_events(self, after: dict | None) -> list[dict]:
        """The audit events still in the journal that follow ``after`` (audit.jsonl's newest event)."""
        return _after(after, self._journal_events)

    def audit_events_newest_first(self, block: int = 1 << 20) -> Iterator[dict]:
        """The audit trail, newest first, read lazily: audit.jsonl from its end a block at a time, so
        the newest page of a long trail costs a block, not the whole file."""
        path = self.path / AUDIT
        moved_last = self._read_audit_file(tail_only=True)
        yield from reversed(_after(moved_last[-1] if moved_last else None, self._journal_events))
        if not path.exists():
            return
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
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
                yield from reversed(decode_lines(whole)[0])
                end = start

    def audit_events(self) -> list[dict]:
        """The whole audit trail, oldest first."""
        moved = self._read_audit_file()
        return moved + _after(moved[-1] if moved else None, self._journal_events)
