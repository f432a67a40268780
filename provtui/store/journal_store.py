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

Every file is made of checksummed records (provtui.store.records).  Only a torn end
-- an unfinished last line that a crashed writer left, never acknowledged -- is
dropped (and cut by the next writer).  Any other bad record, and a snapshot that
does not add up, is damage: opening refuses with StoreDamaged and changes nothing.
Journal records are numbered: each must follow the one before (seq + 1), so a line
duplicated, lost or moved is damage too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

import provtui.store.snapshot as snapshots
from provtui.store.audit_file import AuditFile
from provtui.store.errors import StoreDamaged, StoreError
from provtui.store.files import (
    AUDIT,
    HEAD,
    LOCK,
    SNAPSHOT,
    check_lock_file,
    file_mode,
    fsync_dir,
    open_private,
    read_file,
    read_head,
    shared_lock,
    store_files,
    write_atomic,
    write_head,
)
from provtui.store.records import GENESIS_HASH, Damage, audit_hash, encode_line, is_journal_header, journal_header, scan
from provtui.store.tables import Tables, Transaction, chain

COMPACT_EVERY = 20_000  # journal records between snapshots
_write_atomic = write_atomic  # one name the tests can replace to kill a compaction mid-way

__all__ = ["AUDIT", "GENESIS_HASH", "LOCK", "SNAPSHOT", "Store", "StoreError", "Transaction", "audit_hash"]


class Store(Tables, AuditFile):
    """One store directory, shared safely by several processes."""

    def __init__(self, path: Path, clock: Callable[[], str]):
        super().__init__()
        self.path = path
        self.clock = clock
        self._lock = FileLock(str(path / LOCK), mode=file_mode(path))
        self._journal_name = ""
        self._offset = 0
        self._snapshot_id: tuple[int, int] | None = None
        self.seq = 0
        self.audit_head = GENESIS_HASH
        self._journal_events: list[dict[str, Any]] = []  # audit events not yet moved to audit.jsonl
        self._journal_records = 0
        self._journal_lines = 0  # header included: how damage is numbered
        self._headed = True
        self._open_line = False  # the last journal record read had no newline (yet)
        self._deferring = False  # within deferred_sync: commits are written, and made durable when it ends

    # -- opening -------------------------------------------------------------------

    @classmethod
    def exists(cls, path: Path) -> bool:
        """Whether any of a store's files is in ``path`` (a damaged store still exists)."""
        return bool(store_files(Path(path)))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = False, clock: Callable[[], str] | None = None) -> Store:
        """Open the store in ``path``; with ``create``, make an empty one there first (never over another).

        Opening only reads (under a shared lock): an admin who may read the files but not write
        them can open it, and a torn end is left for the next writer to cut."""
        from provtui.clock import utc_now_iso

        path = Path(path)
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            store = cls(path, clock or utc_now_iso)
            with store._writing():
                if store_files(path):
                    raise StoreError(f"a store already exists at {path}")
                journal = "journal-0.jsonl"
                store._create_journal(journal)
                _write_atomic(path / SNAPSHOT, snapshots.encode(0, journal, GENESIS_HASH, {}))
                write_head(path, 0, GENESIS_HASH)
                store._load_snapshot()
            return store
        if path.exists() and not path.is_dir():
            raise StoreError(f"no store at {path}: it is a file, not a store directory")
        present = store_files(path)
        if not present:
            raise StoreError(f"no store at {path} (run `provtui init` first)")
        if SNAPSHOT not in present:
            raise StoreDamaged(
                Damage(SNAPSHOT, 0, 0, f"{SNAPSHOT} is missing, yet {', '.join(present)} {'is' if len(present) == 1 else 'are'} here")
            )
        store = cls(path, clock or utc_now_iso)
        with store.reading():
            pass
        return store

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The store's lock, held exclusively: one writer at a time, across processes."""
        check_lock_file(self.path)
        with self._lock:
            yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock shared and bring the tables up to date: a consistent view for reading the
        trail (no compaction moves events meanwhile), with no write access needed."""
        with shared_lock(self.path):
            noted = self._noted_head()
            if self._snapshot_id is None or self._snapshot_identity() != self._snapshot_id:
                self._load_snapshot()
            self._catch_up()
            self._check_head(noted)
            yield

    def _noted_head(self) -> int | None:
        try:
            return read_head(self.path)
        except ValueError as error:
            raise StoreDamaged(Damage(HEAD, 0, 1, str(error))) from None

    def _check_head(self, noted: int | None) -> None:
        """Under the lock, the journal must reach the seq noted before it was read: else it was cut."""
        if noted is not None and noted > self.seq:
            raise StoreDamaged(
                Damage(
                    self._journal_name,
                    self._offset,
                    self._journal_lines + 1,
                    f"the journal ends at seq {self.seq} but seq {noted} was committed: records were cut off",
                )
            )

    def _create_journal(self, name: str) -> None:
        # O_TRUNC: a journal of this name can only be a killed compaction's, which no snapshot names
        fd = open_private(self.path / name, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, encode_line(journal_header(name, self.seq)))
        os.fsync(fd)
        os.close(fd)
        fsync_dir(self.path)

    def _snapshot_identity(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path / SNAPSHOT)
        except FileNotFoundError:
            raise StoreDamaged(Damage(SNAPSHOT, 0, 0, f"{SNAPSHOT} is missing")) from None
        return (st.st_ino, st.st_mtime_ns)

    def _load_snapshot(self) -> None:
        for _ in range(3):  # without a lock (none we may read), a compaction can replace both meanwhile
            identity = self._snapshot_identity()
            try:
                snap = snapshots.decode(read_file(self.path / SNAPSHOT))
            except snapshots.SnapshotDamaged as error:
                if identity == self._snapshot_identity():
                    raise StoreDamaged(error.damage) from None
                continue
            if (self.path / snap.journal).is_file():
                break
            if identity == self._snapshot_identity():
                raise StoreDamaged(Damage(snap.journal, 0, 0, f"the journal that {SNAPSHOT} names is missing"))
        self._replace_tables(snap.tables)
        self.seq = snap.seq
        self.audit_head = snap.audit_head
        self._journal_name = snap.journal
        self._headed = not snap.legacy  # journals written since snapshots carry checksums start with a header
        self._open_line = False
        self._offset = 0
        self._journal_events = []
        self._journal_records = 0
        self._journal_lines = 0  # header included: how damage is numbered
        self._snapshot_id = identity

    @property
    def journal(self) -> str:
        """The name of the journal file commits go to now."""
        return self._journal_name

    # -- reading -------------------------------------------------------------------

    def refresh(self) -> bool:
        """Pick up commits made by other processes. Returns True if anything changed."""
        before = self.seq
        if self._snapshot_identity() != self._snapshot_id:
            with self.reading():
                return True
        try:
            self._catch_up()
        except FileNotFoundError:  # another process compacted the journal away since the check
            with self.reading():
                return True
        return self.seq != before

    def _catch_up(self, writer: bool = False) -> None:
        """Apply the journal's records past the ones we have.  A torn end is left alone, or cut by a
        ``writer`` (who holds the lock, so no append is under way); anything else bad is damage."""
        journal = self.path / self._journal_name
        data = read_file(journal, self._offset)
        if self._open_line and data[:1] == b"\n":  # the newline a writer added to the last record we read
            self._offset += 1
            data = data[1:]
            self._open_line = False
        records, used, damage = scan(data, self._journal_name, base_offset=self._offset, first_number=self._journal_lines + 1)
        pos = 0
        if self._offset == 0 and self._headed:  # a journal begins with its header: an emptied one is damage, not "no commits"
            if not records or not is_journal_header(records[0], self._journal_name):
                if damage is not None and not records:
                    raise StoreDamaged(damage)
                raise StoreDamaged(Damage(self._journal_name, 0, 1, "the journal's header record is gone: it was emptied, cut or replaced"))
            records.pop(0)
            pos = data.find(b"\n") + 1 or len(data)
            self._journal_lines += 1
        for record in records:
            if not isinstance(record, dict) or record.get("seq") != self.seq + 1 or not isinstance(record.get("ops"), list):
                got = record.get("seq") if isinstance(record, dict) else None
                raise StoreDamaged(
                    Damage(
                        self._journal_name,
                        self._offset + pos,
                        self._journal_lines + 1,
                        f"out of sequence: record seq {got} where {self.seq + 1} should follow (a record duplicated, lost or moved)",
                    )
                )
            self._apply(record)
            pos = data.find(b"\n", pos) + 1 or len(data)
        self._offset += used
        if damage is not None:
            raise StoreDamaged(damage)
        if records and used == len(data) and not data.endswith(b"\n"):
            self._open_line = True  # the last record is whole but for its newline
        if writer and used < len(data):
            os.truncate(journal, self._offset)  # a torn end from a crashed writer: never acknowledged
        if writer and self._open_line:  # give the whole last record its newline before appending after it
            fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            self._offset += 1
            self._open_line = False

    def _apply(self, record: dict[str, Any]) -> None:
        ops = record["ops"]
        self._apply_ops(ops)
        self.seq = record["seq"]
        if record.get("audit"):
            self._journal_events.extend(record["audit"])
            self.audit_head = record["audit"][-1]["hash"]
        self._journal_records += 1
        self._journal_lines += 1
        self._notify(ops)

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Lock, catch up, let the caller stage writes, then commit durably.

        If the block raises, nothing is written.  When the block returns, the
        commit is on disk (fsync'd) before this returns: that is acknowledgement.
        """
        with self._caught_up():
            tx = Transaction(self)
            yield tx
            if tx.ops or tx.events:
                self._commit(tx)

    @contextmanager
    def _caught_up(self) -> Iterator[None]:
        """The lock held and the tables caught up: within deferred_sync, already (no other process writes meanwhile)."""
        if self._deferring:
            yield
            return
        with self._writing():
            self._catch_up_writing()
            yield

    def _catch_up_writing(self) -> None:
        noted = self._noted_head()
        if self._snapshot_id is None or self._snapshot_identity() != self._snapshot_id:
            self._load_snapshot()
        self._catch_up(writer=True)
        self._check_head(noted)

    def _commit(self, tx: Transaction) -> None:
        now = self.clock()
        record = {"seq": self.seq + 1, "time": now, "ops": tx.ops, "audit": chain(tx.events, self.audit_head, self.seq + 1, now)}
        line = encode_line(record)
        journal = self.path / self._journal_name
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            if not self._deferring:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._offset += len(line)
        self._apply(record)
        if not self._deferring:  # (else durable, its head noted and compaction considered, when deferred_sync ends)
            self._committed()

    def _committed(self) -> None:
        write_head(self.path, self.seq, self.audit_head)
        if self._journal_records >= COMPACT_EVERY:
            self._compact()

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Group commit: commits made within are written as they come, made durable together by one fsync when it
        ends, then their head noted.  Their callers acknowledge none before it ends, nothing else in this process
        uses the store meanwhile (the server's lock); another process may read them before the fsync, as between
        any commit's write and its fsync.  A crash of this process loses none; of the machine, only unacknowledged."""
        with self._writing():
            if self._deferring:  # nested: the outer one makes them durable
                yield
                return
            self._catch_up_writing()
            self._deferring, before = True, self.seq
            try:
                yield
            finally:
                self._deferring = False
                if self.seq != before:
                    fd = os.open(self.path / self._journal_name, os.O_WRONLY | os.O_APPEND)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    self._committed()

    def compact(self) -> None:
        with self._writing():
            self._catch_up_writing()
            self._compact()

    def _compact(self) -> None:
        """Fold the journal into a new snapshot; move its audit events to audit.jsonl."""
        self._append_audit_file(self._journal_events)
        journal = f"journal-{self.seq}.jsonl"
        old = self._journal_name
        if journal != old:
            self._create_journal(journal)
        elif not self._headed:  # an old store's journal, with no record since its snapshot: it gets its header
            _write_atomic(self.path / journal, encode_line(journal_header(journal, self.seq)))
        _write_atomic(self.path / SNAPSHOT, snapshots.encode(self.seq, journal, self.audit_head, self.tables))
        self._snapshot_id = self._snapshot_identity()
        self._journal_name = journal
        self._headed = True
        self._offset = 0
        self._journal_events = []
        self._journal_records = 0
        self._journal_lines = 0  # header included: how damage is numbered
        self._catch_up()  # past the new journal's header
        for stale in [*self.path.glob("journal-*.jsonl"), *self.path.glob(f".{SNAPSHOT}.*.tmp")]:  # + a killed compaction's temp file
            if stale.name != journal:
                stale.unlink(missing_ok=True)
