"""Tampering with the audit trail, as a hostile colleague with write access to the files would,
through the real CLI: an event edited, deleted, moved or inserted, in audit.jsonl and in the
journal, with checksums fixed up (only the hash chain can tell: exit 1, the event named by seq,
time and action) and without (the record is damage: exit 5, the spot named).  A forgery that
re-chains everything after it and rewrites the stored head is caught by a head kept elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from provtui.service import Service
from provtui.store import AUDIT, HEAD, SNAPSHOT, audit_hash, decode_lines, encode_line
from provtui.store import snapshot as snapshots
from provtui.store.files import write_head


def provtui(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provtui", "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    store = tmp_path_factory.mktemp("tamper") / "s"
    service = Service.init(store, actor="root")
    for n in range(8):
        service.create_user(f"u{n}", f"u{n}@example.com", "U", f"N{n}")
        if n == 3:
            service.store.compact()  # events 1-5 in audit.jsonl, 6-9 still in the journal
    return store


@pytest.fixture
def store(template, tmp_path):
    shutil.copytree(template, tmp_path / "s")
    return tmp_path / "s"


def journal(store: Path) -> Path:
    [path] = store.glob("journal-*.jsonl")
    return path


def rewrite(path: Path, transform) -> None:
    """Rewrite a file's records with their checksums recomputed: the careful attacker's way."""
    records = decode_lines(path.read_bytes())[0]
    path.write_bytes(b"".join(encode_line(r) for r in transform(records)))


def forged(after: dict, seq: int, prev: str) -> dict:
    event = {
        "seq": seq,
        "time": after["time"],
        "actor": "mallory",
        "action": "admin.grant",
        "target": "mallory",
        "before": None,
        "after": {"role": "super-admin"},
        "correlation": None,
        "prev": prev,
    }
    event["hash"] = audit_hash(prev, event)
    return event


def edit_trail(records):
    records[2]["target"] = "eve"
    return records


def edit_journal(records):
    records[2]["audit"][0]["target"] = "eve"
    return records


def insert_trail(records):
    return [*records[:3], forged(records[2], records[2]["seq"], records[2]["hash"]), *records[3:]]


def insert_journal(records):
    """A forged commit with the next seq, every later record renumbered so the journal reads as in sequence
    (their events left as they were: renumbering those would break their hashes, named as edited)."""
    base = records[2]
    fake = {
        "seq": base["seq"] + 1,
        "time": base["time"],
        "ops": [],
        "audit": [forged(base["audit"][-1], base["seq"] + 1, base["audit"][-1]["hash"])],
    }
    later = [{**r, "seq": r["seq"] + 1} for r in records[3:]]
    return [*records[:3], fake, *later]


CHAIN_CASES = {  # (file, transform, the kind audit verify names)
    "trail edited": (AUDIT, edit_trail, "edited"),
    "trail event deleted": (AUDIT, lambda r: r[:2] + r[3:], "deleted"),
    "trail events swapped": (AUDIT, lambda r: [r[0], r[2], r[1], *r[3:]], "reordered"),
    "trail event inserted": (AUDIT, insert_trail, "inserted"),
    "journal event edited": ("journal", edit_journal, "edited"),
}


@pytest.mark.parametrize("case", sorted(CHAIN_CASES))
def test_tampering_with_checksums_fixed_is_named_by_the_chain(store, case):
    name, transform, kind = CHAIN_CASES[case]
    path = journal(store) if name == "journal" else store / name
    rewrite(path, transform)
    done = provtui(store, "audit", "verify", "--json")
    assert done.returncode == 1, (done.stdout, done.stderr)
    broken = orjson.loads(done.stdout)["first_broken"]
    assert broken["kind"] == kind, broken
    assert "seq " in done.stderr and "T" in done.stderr  # named by seq and time (and actor, action, target)


def test_a_forged_journal_commit_renumbered_into_sequence_is_named_inserted(store):
    rewrite(journal(store), insert_journal)
    done = provtui(store, "audit", "verify", "--json")
    assert done.returncode == 1
    broken = orjson.loads(done.stdout)["first_broken"]
    assert broken["kind"] == "inserted" and "mallory" in broken["reason"] and "admin.grant" in broken["reason"]


@pytest.mark.parametrize(
    "transform",
    [lambda r: r[:2] + r[3:], lambda r: [r[0], r[2], r[1], *r[3:]], lambda r: [*r[:3], r[2], *r[3:]]],
    ids=["deleted", "swapped", "duplicated"],
)
def test_journal_records_deleted_moved_or_duplicated_are_damage_even_with_checksums_fixed(store, transform):
    rewrite(journal(store), transform)
    done = provtui(store, "audit", "verify")
    assert done.returncode == 5 and "out of sequence" in done.stderr and journal(store).name in done.stderr


@pytest.mark.parametrize("name", [AUDIT, "journal"])
def test_an_edit_without_fixing_the_checksum_is_damage_named_by_file_and_record(store, name):
    path = journal(store) if name == "journal" else store / name
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b'"u', b'"e', 1)  # the third record, its checksum left as it was
    path.write_bytes(b"\n".join(lines))
    done = provtui(store, "audit", "verify")
    assert done.returncode == 5, done.stderr
    assert f"{path.name} at byte {len(lines[0]) + len(lines[1]) + 2} (record 3): checksum mismatch" in done.stderr


def test_a_rechained_forgery_passes_alone_but_not_against_a_head_kept_elsewhere(store):
    Service.open(store, actor="root").store.compact()  # every event in audit.jsonl; the head in the snapshot
    kept = provtui(store, "audit", "head", "--json")
    assert kept.returncode == 0
    head = orjson.loads(kept.stdout)["head"]

    events = decode_lines((store / AUDIT).read_bytes())[0]
    events[2]["target"] = "eve"  # rewrite history, then re-chain everything after it, as a careful forger would
    prev = events[1]["hash"]
    for event in events[2:]:
        event["prev"] = prev
        event["hash"] = prev = audit_hash(prev, event)
    (store / AUDIT).write_bytes(b"".join(encode_line(e) for e in events))
    snap = snapshots.decode((store / SNAPSHOT).read_bytes())
    (store / SNAPSHOT).write_bytes(snapshots.encode(snap.seq, snap.journal, prev, snap.tables))
    write_head(store, snap.seq, prev)
    assert (store / HEAD).exists()

    assert provtui(store, "audit", "verify").returncode == 0  # nothing on this machine can tell
    done = provtui(store, "audit", "verify", "--head", head)
    assert done.returncode == 1 and "not in the trail" in done.stderr
    assert provtui(store, "audit", "verify", "--head", head[:12]).returncode == 1
    assert provtui(store, "audit", "verify", "--head", "xyz").returncode == 2


def test_verify_against_the_head_passes_on_an_honest_trail_that_grew(store):
    head = orjson.loads(provtui(store, "audit", "head", "--json").stdout)["head"]
    Service.open(store, actor="root").create_user("later", "later@example.com", "L", "A")
    done = provtui(store, "audit", "verify", "--head", head)
    assert done.returncode == 0, done.stderr


def test_store_check_says_the_records_are_intact_but_the_chain_is_not(store):
    rewrite(store / AUDIT, edit_trail)
    done = provtui(store, "store", "check", "--json")
    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    assert report["damage"] == [] and report["audit"]["intact"] is False and report["intact"] is False
    assert "edited" in report["audit"]["reason"]
    assert provtui(store, "store", "repair").returncode == 2  # tampering is not damage a repair could mend
