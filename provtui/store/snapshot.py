"""The snapshot file: the tables as of one commit, checksummed line by line and as a whole.

Format (version 2), each line a record (provtui.store.records)::

    {"format": "provtui-snapshot", "version": 2, "seq": S, "journal": NAME, "audit_head": H}
    ["table", "key", {document}]            one line per document
    {"end": true, "documents": N, "checksum": "<crc32 of every line before this one>"}

A line per document keeps damage local: a flipped byte costs one document, which
``store repair`` names, not the whole snapshot.  The trailer's count and checksum catch
what per-line checks cannot: a line lost, duplicated or moved, or a file cut short.
A version 1 snapshot (one JSON object, no checksum, written before provtui 0.2) is still
read; the next compaction writes version 2.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import orjson

from provtui.store.records import Damage, Line, encode_line, lines

NAME = "snapshot.json"
FORMAT = "provtui-snapshot"
VERSION = 2


@dataclass
class Snapshot:
    seq: int
    journal: str
    audit_head: str
    tables: dict[str, dict[str, dict]]
    documents: int = 0
    damage: list[Damage] = field(default_factory=list)  # filled only by a lenient read (salvage)
    legacy: bool = False


def encode(seq: int, journal: str, audit_head: str, tables: dict[str, dict[str, dict]]) -> bytes:
    header = encode_line({"format": FORMAT, "version": VERSION, "seq": seq, "journal": journal, "audit_head": audit_head})
    parts = [header]
    crc = zlib.crc32(header)
    count = 0
    for table, docs in tables.items():
        for key, doc in docs.items():
            line = encode_line([table, key, doc])
            crc = zlib.crc32(line, crc)
            parts.append(line)
            count += 1
    parts.append(encode_line({"end": True, "documents": count, "checksum": f"{crc:08x}"}))
    return b"".join(parts)


class SnapshotDamaged(Exception):
    def __init__(self, damage: Damage):
        super().__init__(damage.describe())
        self.damage = damage


def decode(data: bytes, *, lenient: bool = False) -> Snapshot:
    """The snapshot in ``data``.  Strict: raises SnapshotDamaged at the first damage.  Lenient
    (for repair): keeps every intact document and lists the damage in ``Snapshot.damage``."""
    if data[:1] == b"{":
        return _legacy(data)
    found, tail = lines(data)
    damage: list[Damage] = []

    def bad(spot: Damage) -> None:
        if not lenient:
            raise SnapshotDamaged(spot)
        damage.append(spot)

    if not found:
        bad(Damage(NAME, 0, 1, "empty or zero-filled snapshot" if not data.strip(b"\x00") else "no header record"))
        return Snapshot(0, "", "", {}, damage=damage)
    header = found[0].record if _is_header(found[0]) else None
    if header is None:
        bad(_spot(found[0], "the first record is not the snapshot's header"))
    trailer_line = found[-1] if len(found) > 1 and _is_trailer(found[-1]) else None
    if tail:
        bad(Damage(NAME, len(data) - len(tail), len(found) + 1, "the snapshot ends mid-record (cut short)"))
    elif trailer_line is None:
        bad(Damage(NAME, len(data), len(found) + 1, "the snapshot has no end record (cut short)"))
    body = found[1 if header is not None else 0:-1 if trailer_line is not None else None]
    tables: dict[str, dict[str, dict]] = {}
    for line in body:
        entry = line.record
        if header is None and _is_header(line):  # a lenient read finds the header where it was moved to
            header = entry
            continue
        if line.reason is not None or not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], dict)):
            bad(_spot(line, line.reason or "not a document record"))
            continue
        table, key, doc = entry
        docs = tables.setdefault(table, {})
        if key in docs:
            bad(_spot(line, f"a second copy of {table} {key}", {"table": table, "key": key}))
            continue
        docs[key] = doc
    header = header or {}
    documents = sum(len(d) for d in tables.values())
    if trailer_line is not None:
        trailer = trailer_line.record
        assert isinstance(trailer, dict)
        crc = zlib.crc32(memoryview(data)[:trailer_line.offset])
        if trailer.get("checksum") != f"{crc:08x}" or trailer.get("documents") != len(found) - 2:
            bad(Damage(NAME, trailer_line.offset, trailer_line.number,
                       f"the snapshot's whole-content checksum or count does not match ({len(found) - 2} document records, "
                       f"{trailer.get('documents')} written): records were lost, added or moved", dropped=False))
    return Snapshot(header.get("seq", 0), header.get("journal", ""), header.get("audit_head", ""), tables, documents, damage)


def readable_parts(line: Line) -> dict | None:
    """What can still be read of a damaged document line: its table and key."""
    try:
        start = line.raw.index(b"[")
        table, _, rest = line.raw[start + 1:].partition(b",")
        key = rest.partition(b",")[0]
        return {"table": orjson.loads(table), "key": orjson.loads(key)}
    except (ValueError, orjson.JSONDecodeError):
        return None


def _spot(line: Line, reason: str, readable: dict | None = None) -> Damage:
    return Damage(NAME, line.offset, line.number, reason, readable if readable is not None else readable_parts(line))


def _is_header(line: Line) -> bool:
    r = line.record
    return isinstance(r, dict) and r.get("format") == FORMAT and isinstance(r.get("seq"), int) and isinstance(r.get("journal"), str)


def _is_trailer(line: Line) -> bool:
    return isinstance(line.record, dict) and line.record.get("end") is True


def _legacy(data: bytes) -> Snapshot:
    try:
        snap = orjson.loads(data)
        return Snapshot(snap["seq"], snap["journal"], snap["audit_head"], snap["tables"],
                        sum(len(t) for t in snap["tables"].values()), legacy=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise SnapshotDamaged(Damage(NAME, 0, 1, "an old-format snapshot that does not decode")) from None
