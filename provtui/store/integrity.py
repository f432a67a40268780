"""The whole store checked record by record, and rebuilt from what is intact.

``check`` reads every file (snapshot, journal, audit trail), names each damaged record
and verifies the audit hash chain against the stored head.  ``salvage`` gathers every
intact record -- the snapshot's documents, the journal's records in sequence, the trail's
events -- and what was dropped; ``rewrite`` lays the salvaged store down after copying
the old files aside.  Deciding who may repair, and recording it, is the service's part.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

import provtui.store.snapshot as snapshots
from provtui.store.chain import verify_chain
from provtui.store.errors import StoreError, StoreUnreadable
from provtui.store.files import (
    AUDIT,
    HEAD,
    LOCK,
    SNAPSHOT,
    file_mode,
    fsync_dir,
    journals,
    read_file,
    read_head,
    store_files,
    write_atomic,
    write_head,
)
from provtui.store.records import GENESIS_HASH, Damage, Line, encode_line, is_journal_header, journal_header, lines, tail_damage


@dataclass
class Salvage:
    """What is intact in a store, and what is not."""

    seq: int = 0
    journal: str = ""
    snapshot_head: str = GENESIS_HASH  # the audit head the snapshot vouches for
    stored_head: str = GENESIS_HASH  # the head the store vouches for: its newest intact record's
    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # the trail's intact events, oldest first
    damage: list[Damage] = field(default_factory=list)
    intact: dict[str, list[int]] = field(default_factory=dict)  # file -> numbers of its intact records
    lost_events: dict[int, int | None] = field(default_factory=dict)  # damaged record's number -> its events (None: unknown)
    stray_lock: bool = False  # store.lock is not a regular file
    headed: bool = True  # the journal must begin with its header (all but pre-checksum stores)

    @property
    def head(self) -> str:
        return self.events[-1]["hash"] if self.events else self.snapshot_head

    def around(self, damage: Damage) -> tuple[int, int]:
        """Intact records of the damaged file before and after the damaged one."""
        numbers = self.intact.get(damage.file, [])
        before = sum(1 for n in numbers if n < damage.record)
        return before, len(numbers) - before


@dataclass
class CheckReport:
    damage: list[Damage]
    records: dict[str, int]
    audit: dict[str, Any]

    @property
    def intact(self) -> bool:
        return not self.damage and self.audit["intact"]

    def to_dict(self, salvage: Salvage) -> dict[str, Any]:
        spots = []
        for d in self.damage:
            before, after = salvage.around(d)
            spots.append({**d.to_dict(), "intact_before": before, "intact_after": after})
        return {"intact": self.intact, "damage": spots, "records": self.records, "audit": self.audit}


def _damage_of_unreadable(name: str, error: StoreUnreadable) -> Damage:
    return Damage(name, 0, 0, str(error))


def salvage(path: Path) -> Salvage:
    """Read every store file leniently: every intact record kept, every damaged one listed."""
    path = Path(path)
    if not store_files(path):
        raise StoreError(f"no store at {path} (run `provtui init` first)")
    found = Salvage()
    try:
        found.stray_lock = os.path.lexists(path / LOCK) and not stat.S_ISREG(os.lstat(path / LOCK).st_mode)
    except OSError:
        found.stray_lock = True
    if found.stray_lock:
        found.damage.append(Damage(LOCK, 0, 0, "not a regular file (a directory or link where the lock file should be)", dropped=False))
    try:
        noted = read_head(path)
    except ValueError as error:
        found.damage.append(Damage(HEAD, 0, 1, str(error), dropped=False))
        noted = None
    _salvage_snapshot(path, found)
    trail = _salvage_trail(path, found)
    _salvage_journal(path, found, trail)
    if noted is not None and noted > found.seq and not any(d.file == found.journal for d in found.damage):
        journal_lines = sum(1 for _ in found.intact.get(found.journal, []))
        found.damage.append(
            Damage(
                found.journal,
                0,
                journal_lines + 1,
                f"the journal ends at seq {found.seq} but seq {noted} was committed: records were cut off",
            )
        )
        found.lost_events[-1] = None
    _check_trail_end(found, trail)
    return found


def _check_trail_end(found: Salvage, trail: list[dict[str, Any]]) -> None:
    """The trail file must reach the head the snapshot vouches for (the journal's events follow it):
    a file that stops short of it lost its newest events (audit.jsonl cut), which is damage to repair."""
    head = found.snapshot_head
    if head != GENESIS_HASH and not any(e.get("hash") == head for e in reversed(trail)) and not found.damage:
        found.damage.append(
            Damage(AUDIT, 0, len(trail) + 1, f"the trail ends before the event the snapshot vouches for ({head[:12]}): events were cut off")
        )
        found.lost_events[-2] = None


def _salvage_snapshot(path: Path, found: Salvage) -> None:
    try:
        snap = snapshots.decode(read_file(path / SNAPSHOT), lenient=True)
    except FileNotFoundError:
        found.damage.append(Damage(SNAPSHOT, 0, 0, f"{SNAPSHOT} is missing"))
        snap = snapshots.Snapshot(0, "", GENESIS_HASH, {})
    except StoreUnreadable as error:
        found.damage.append(_damage_of_unreadable(SNAPSHOT, error))
        snap = snapshots.Snapshot(0, "", GENESIS_HASH, {})
    except snapshots.SnapshotDamaged as error:  # an old-format snapshot that does not decode
        found.damage.append(error.damage)
        snap = snapshots.Snapshot(0, "", GENESIS_HASH, {})
    found.damage += snap.damage
    bad = {d.record for d in snap.damage}
    found.intact[SNAPSHOT] = [n for n in range(2, snap.records + 2) if n not in bad]
    found.tables = snap.tables
    found.headed = not snap.legacy
    found.seq, found.snapshot_head = snap.seq, snap.audit_head or GENESIS_HASH
    found.stored_head = found.snapshot_head
    present = journals(path)
    if snap.journal in present and (path / snap.journal).is_file():
        found.journal = snap.journal
        return
    if snap.journal:
        found.damage.append(Damage(snap.journal, 0, 0, f"the journal that {SNAPSHOT} names is missing"))
    if present and not snap.journal:  # the header was lost: the newest journal follows the newest snapshot
        found.journal = present[-1]
        if not found.seq:
            found.seq = int(present[-1].removeprefix("journal-").removesuffix(".jsonl"))


def _records(path: Path, name: str, found: Salvage) -> list[Line]:
    try:
        data = read_file(path / name)
    except FileNotFoundError:
        return []
    except StoreUnreadable as error:
        found.damage.append(_damage_of_unreadable(name, error))
        return []
    got, tail = lines(data)
    spot = tail_damage(name, tail, len(data) - len(tail), len(got) + 1)
    if spot is not None:
        found.damage.append(spot)
    return got


def _readable(line: Line) -> dict[str, Any] | None:
    """What a damaged journal record still says: its seq, the table and key of each write, its event count."""
    try:
        record = orjson.loads(line.raw[line.raw.index(b"{") :])
        return {
            "seq": record.get("seq"),
            "writes": [{"table": op[1], "key": op[2]} for op in record.get("ops", [])],
            "events": len(record.get("audit", [])),
        }
    except (ValueError, orjson.JSONDecodeError, AttributeError, TypeError, IndexError):
        return None


def _salvage_trail(path: Path, found: Salvage) -> list[dict[str, Any]]:
    events, numbers = [], []
    for line in _records(path, AUDIT, found):
        if line.reason is None and isinstance(line.record, dict) and isinstance(line.record.get("hash"), str):
            events.append(line.record)
            numbers.append(line.number)
        else:
            found.damage.append(Damage(AUDIT, line.offset, line.number, line.reason or "not an audit event"))
            found.lost_events[line.number] = 1
    found.intact[AUDIT] = numbers
    return events


def _salvage_journal(path: Path, found: Salvage, trail: list[dict[str, Any]]) -> None:
    name, intact = found.journal, []
    by_seq: dict[int, dict[str, Any]] = {}  # seq -> its record
    after_damage = False  # a seq that jumps right after a damaged record is that record's gap, not more damage
    found_lines = _records(path, name, found) if name else []
    if found_lines and is_journal_header(found_lines[0].record, name):
        intact.append(found_lines.pop(0).number)
    elif name and found.headed and not any(d.file == name for d in found.damage):
        found.damage.append(Damage(name, 0, 1, "the journal's header record is gone: it was emptied, cut or replaced"))
        found.lost_events[1] = None
    for line in found_lines:
        record = line.record
        if line.reason is not None or not (
            isinstance(record, dict) and isinstance(record.get("seq"), int) and isinstance(record.get("ops"), list)
        ):
            readable = _readable(line)
            found.damage.append(Damage(name, line.offset, line.number, line.reason or "not a journal record", readable))
            found.lost_events[line.number] = readable["events"] if readable else None
            after_damage = True
            continue
        jumped, after_damage = after_damage, False
        seq = record["seq"]
        if seq <= found.seq:
            found.damage.append(Damage(name, line.offset, line.number, f"seq {seq} is already in the snapshot (a stray copy)"))
            continue
        if seq in by_seq:
            same = by_seq[seq] == record
            found.damage.append(
                Damage(name, line.offset, line.number, f"a second record with seq {seq}" + (" (a duplicated line)" if same else ""))
            )
            if not same:
                found.lost_events[line.number] = len(record.get("audit", []))
            continue
        if by_seq and seq != max(by_seq) + 1 and not (jumped and seq > max(by_seq)):
            found.damage.append(
                Damage(
                    name,
                    line.offset,
                    line.number,
                    f"out of sequence: seq {seq} follows seq {max(by_seq)} (a record lost or moved; kept, in seq order)",
                    dropped=False,
                )
            )
        by_seq[seq] = record
        intact.append(line.number)
    if name:
        found.intact[name] = intact
    seen = {e["hash"] for e in trail}
    events = list(trail)
    for seq in sorted(by_seq):
        record = by_seq[seq]
        for op in record["ops"]:
            table = found.tables.setdefault(op[1], {})
            if op[0] == "put":
                table[op[2]] = op[3]
            else:
                table.pop(op[2], None)
        fresh = [e for e in record.get("audit", []) if isinstance(e, dict) and e.get("hash") not in seen]
        events += fresh
        if record.get("audit"):
            found.stored_head = record["audit"][-1].get("hash", found.stored_head)
        found.seq = seq
    found.events = events


def gaps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the salvaged trail's chain jumps: the hash before and the ``prev`` after each gap."""
    out, prev = [], GENESIS_HASH
    for i, event in enumerate(events):
        if event.get("prev") != prev:
            out.append({"after": prev, "resumes": event.get("prev"), "at_seq": event.get("seq"), "index": i})
        prev = event.get("hash", prev)
    return out


def check(path: Path) -> tuple[CheckReport, Salvage]:
    """Every file read, every record checked, the chain verified against the stored head."""
    found = salvage(path)
    report = verify_chain(found.events, expected_head=found.stored_head)
    audit = {"events": len(found.events), "head": report.head, "intact": report.ok}
    if not report.ok:
        audit["reason"] = report.describe()
    records = {name: len(numbers) for name, numbers in found.intact.items()}
    return CheckReport(found.damage, records, audit), found


def rewrite(path: Path, found: Salvage, now: datetime | None = None) -> Path:
    """Copy the store's files aside, then lay the salvaged store down.  Returns the backup folder."""
    path = Path(path)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    backup = path / f"damaged-{stamp}"
    n = 1
    while backup.exists():
        n += 1
        backup = path / f"damaged-{stamp}-{n}"
    backup.mkdir(mode=0o700)
    os.chmod(backup, 0o700 | (file_mode(path) & 0o070 and 0o070))
    for name in [*store_files(path), *([LOCK] if found.stray_lock else [])]:
        source = path / name
        if source.is_dir() and not source.is_symlink():
            source.rename(backup / name)  # a directory where the lock should be: moved, not copied
        else:
            shutil.copy2(source, backup / name, follow_symlinks=False)
    fsync_dir(backup)
    if found.stray_lock and os.path.lexists(path / LOCK):
        os.unlink(path / LOCK)
    with FileLock(str(path / LOCK), mode=file_mode(path)):
        lay_down(path, found.seq, found.head, found.tables, found.events)
    return backup


def lay_down(path: Path, seq: int, head: str, tables: dict[str, dict[str, dict[str, Any]]], events: list[dict[str, Any]]) -> None:
    """A store's files holding ``tables`` as of commit ``seq`` and the trail ``events`` (head ``head``): what a
    repair and a migration write (the caller holds the lock).  Other journals in ``path`` are removed."""
    journal = f"journal-{seq}.jsonl"
    write_atomic(path / AUDIT, b"".join(encode_line(e) for e in events))
    write_atomic(path / journal, encode_line(journal_header(journal, seq)))
    write_atomic(path / SNAPSHOT, snapshots.encode(seq, journal, head, tables))
    write_head(path, seq, head)
    for stale in journals(path):
        if stale != journal:
            (path / stale).unlink()
    fsync_dir(path)
