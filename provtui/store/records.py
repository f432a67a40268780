"""The line format every store file is made of, and how damage in it is told from a torn end.

A record is one line: ``<crc32 hex8> <json>\\n``.  Appends write a whole line at once and
fsync it before acknowledging, so the only thing a crash can leave is a *torn end*: the
file's last bytes, with no newline, that are the start of a record.  That record was
never acknowledged and may be dropped.  Anything else that does not decode -- a checksum
mismatch, bytes that are not a record, zeros, two records merged on one line, a complete
last line that fails its checksum -- is *damage*: a disk error, a bad copy or an edit.
Damage is named (file, byte offset, record number, reason) and never repaired silently.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
_HEX = frozenset(b"0123456789abcdef")
_RECORD_START = b'{"'  # every record is a JSON object


@dataclass(frozen=True)
class Damage:
    """One damaged spot.  ``record`` counts lines from 1 in ``file``; ``offset`` is the line's first byte."""

    file: str
    offset: int
    record: int
    reason: str
    readable: dict[str, Any] | None = None  # what can still be read of it (table and key, seq), for the repair's list
    dropped: bool = True  # whether a repair loses the record (False: it is kept, only its place was wrong)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["readable"] is None:
            del data["readable"]
        return data

    def describe(self) -> str:
        return f"{self.file} at byte {self.offset} (record {self.record}): {self.reason}"


@dataclass(frozen=True)
class Line:
    """One line of a store file: its record, or why it is not one."""

    offset: int
    number: int
    record: dict[str, Any] | list[Any] | None
    reason: str | None = None
    raw: bytes = b""


def encode_line(record: dict[str, Any] | list[Any]) -> bytes:
    body = orjson.dumps(record)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def journal_header(name: str, follows: int) -> dict[str, Any]:
    """A journal's first record: which file it is and the snapshot seq it follows.  Without it an
    emptied journal would look like one with no commits yet."""
    return {"journal": name, "follows": follows}


def is_journal_header(record: object, name: str) -> bool:
    return isinstance(record, dict) and record.get("journal") == name and "ops" not in record


def audit_hash(prev: str, event: dict[str, Any]) -> str:
    body = orjson.dumps({k: v for k, v in event.items() if k != "hash"}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + body).hexdigest()


def _decode(line: bytes) -> tuple[dict[str, Any] | list[Any] | None, str | None]:
    if len(line) >= 10 and line[8:9] == b" " and _HEX.issuperset(line[:8]):
        body = line[9:]
        if int(line[:8], 16) == zlib.crc32(body):
            try:
                return orjson.loads(body), None
            except orjson.JSONDecodeError:
                return None, "checksum matches but the record is not JSON"
        return None, "two records on one line (a newline was lost)" if _merged(body) else "checksum mismatch"
    if not line.strip(b"\x00"):
        return None, "zero bytes where a record should be"
    return None, "not a record (no checksum)"


def _merged(body: bytes) -> bool:
    """Whether a line holds a record followed by another's checksum: ``...}xxxxxxxx {...``."""
    cut = body.find(b" {", 9)
    while cut >= 8:
        if _HEX.issuperset(body[cut - 8 : cut]):
            return True
        cut = body.find(b" {", cut + 1)
    return False


def complete_record(tail: bytes) -> dict[str, Any] | list[Any] | None:
    """The record in an unfinished last line whose checksum holds: all was written but its newline
    (a cut of one byte, or a write that stopped just short).  Kept, not dropped: it may have been acknowledged."""
    if len(tail) >= 11 and tail[8:9] == b" " and _HEX.issuperset(tail[:8]) and int(tail[:8], 16) == zlib.crc32(tail[9:]):
        try:
            record: dict[str, Any] | list[Any] = orjson.loads(tail[9:])
            return record
        except orjson.JSONDecodeError:
            return None
    return None


def is_torn_start(tail: bytes) -> bool:
    """Whether the bytes after the last newline are the start of a record an append left unfinished."""
    if b"\x00" in tail or b"\n" in tail:
        return False
    if not _HEX.issuperset(tail[:8]):
        return False
    if len(tail) > 8 and tail[8:9] != b" ":
        return False
    body = tail[9:]
    if body[: len(_RECORD_START)] != _RECORD_START[: len(body)]:
        return False
    # A whole record followed by more bytes (its newline damaged) is not the start of one.
    crc, end = int(tail[:8], 16) if len(tail) >= 8 else None, body.rfind(b"}")
    while crc is not None and end >= 0:
        if zlib.crc32(body[: end + 1]) == crc:
            return False
        end = body.rfind(b"}", 0, end)
    return True


def lines(data: bytes, *, base_offset: int = 0, first_number: int = 1) -> tuple[list[Line], bytes]:
    """Every complete line of ``data`` decoded, and the bytes after the last newline."""
    out: list[Line] = []
    pos, number = 0, first_number
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            tail = data[pos:]
            record = complete_record(tail)
            if record is None:
                return out, tail
            out.append(Line(base_offset + pos, number, record, None, tail))
            return out, b""
        raw = data[pos:end]
        record, reason = _decode(raw)
        out.append(Line(base_offset + pos, number, record, reason, raw))
        pos, number = end + 1, number + 1


def tail_damage(file: str, tail: bytes, offset: int, number: int) -> Damage | None:
    """The unfinished last line: None when it is a torn end (drop it), else the damage it is."""
    if not tail or is_torn_start(tail):
        return None
    reason = "zero bytes at the end" if not tail.strip(b"\x00") else "the file ends inside something that is not a record"
    return Damage(file, offset, number, reason)


def scan(data: bytes, file: str, *, base_offset: int = 0, first_number: int = 1) -> tuple[list[Any], int, Damage | None]:
    """The intact records of ``data`` up to the first damage, the bytes they span, and that damage.

    The fast path for reading: stops at the first bad line.  A torn end is not damage;
    ``used`` stops before it.
    """
    records: list[Any] = []
    pos, number = 0, first_number
    crc, loads = zlib.crc32, orjson.loads
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            record = complete_record(data[pos:])
            if record is not None:  # whole but for its newline: ``used`` then covers it, without a newline
                records.append(record)
                return records, len(data), None
            damage = tail_damage(file, data[pos:], base_offset + pos, number)
            return records, pos, damage
        line = data[pos:end]
        body = line[9:]
        try:
            if line[8:9] == b" " and int(line[:8], 16) == crc(body) and body[:1] in (b"{", b"["):
                records.append(loads(body))
                pos, number = end + 1, number + 1
                continue
        except ValueError:
            pass
        _, reason = _decode(line)
        return records, pos, Damage(file, base_offset + pos, number, reason or "not a record")


def decode_lines(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """Intact records of ``data`` up to the first bad or unfinished line, and the bytes they span."""
    records, used, _ = scan(data, "")
    return records, used
