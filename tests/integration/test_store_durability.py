"""The store's crash and concurrency proofs, with real processes and real SIGKILLs.

The contract under test (see provtui/store.py and DESIGN.md "The store"):

- an acknowledged change survives kill -9 at any moment;
- the store is never left unreadable;
- two processes writing the same store lose neither's change;
- the audit trail is append-only and its hash chain stays consistent.

The writer (tests/integration/store_writer.py) prints each key only after its commit returned,
so every key it printed must be in the store after the kill.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provtui.model.schema import USERS
from provtui.service import Service
from provtui.store import AUDIT, GENESIS_HASH, HEAD, LOCK, SNAPSHOT, Store, audit_hash

WRITER = Path(__file__).with_name("store_writer.py")
DOCS = "docs"
ACTOR = "tester"


# -- helpers ---------------------------------------------------------------------------


def start_writer(store: Path, prefix: str, *args: str, compact_every: int | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("PROVTUI_TEST_COMPACT_EVERY", None)
    if compact_every is not None:
        env["PROVTUI_TEST_COMPACT_EVERY"] = str(compact_every)
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(store), "--prefix", prefix, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if line != b"READY\n":
        proc.kill()
        raise AssertionError(f"writer did not start: {line!r} {proc.stderr.read().decode()}")


def acknowledged(output: bytes) -> list[tuple[str, str]]:
    """(kind, key) for every complete line the writer printed (a torn last line is not an ack)."""
    lines = output.decode().split("\n")[:-1]
    return [tuple(line.split(" ", 1)) for line in lines if line != "READY"]


def finish(proc: subprocess.Popen, timeout: float = 60) -> list[tuple[str, str]]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return acknowledged(out)


def kill_at_random(proc: subprocess.Popen, rng: random.Random) -> list[tuple[str, str]]:
    wait_ready(proc)
    time.sleep(rng.uniform(0.005, 0.150))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the writer died on its own: {err.decode()}"
    return acknowledged(out)


def check_chain(events: list[dict]) -> None:
    prev = GENESIS_HASH
    for i, event in enumerate(events):
        assert event["prev"] == prev, f"audit event {i} (seq {event['seq']}) does not follow its predecessor"
        assert event["hash"] == audit_hash(prev, event), f"audit event {i} (seq {event['seq']}) hash mismatch"
        prev = event["hash"]
    assert len({e["hash"] for e in events}) == len(events), "duplicate audit events"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs), "audit events out of order"


def check_store(path: Path, acked: list[tuple[str, str]]) -> Store:
    """Open the store afresh and check it holds every acknowledged key, with its audit event."""
    store = Store.open(path)
    store.add_index(USERS, "login")
    missing = [key for kind, key in acked if (store.get(DOCS, key) is None if kind == "doc" else not store.lookup(USERS, "login", key))]
    assert not missing, f"{len(missing)} acknowledged changes lost, e.g. {missing[:5]}"
    events = store.audit_events()
    check_chain(events)
    assert store.audit_head == (events[-1]["hash"] if events else GENESIS_HASH)
    audited = {e["target"] for e in events}
    unaudited = [key for _, key in acked if key not in audited]
    assert not unaudited, f"acknowledged changes without an audit event: {unaudited[:5]}"
    return store


def init_store(path: Path, padding_docs: int = 0) -> None:
    service = Service.init(path, actor=ACTOR)
    if padding_docs:
        # Bulk so that snapshots (and so compactions) take a while: a wider window to kill in.
        with service.store.transaction() as tx:
            for n in range(padding_docs):
                tx.put("padding", f"p{n}", {"n": n, "text": "lorem ipsum dolor sit amet " * 4})


# -- kill -9 while committing ----------------------------------------------------------


def test_acknowledged_commits_survive_sigkill(tmp_path):
    """45 writers, each SIGKILLed 5-150 ms after it starts committing; nothing acknowledged is lost."""
    rng = random.Random(20260115)
    path = tmp_path / "store"
    init_store(path)
    acked: list[tuple[str, str]] = []
    kills = 0
    for round_ in range(45):
        proc = start_writer(path, f"k{round_}", "--mode", "mixed", compact_every=rng.choice((7, 25, 100)))
        got = kill_at_random(proc, rng)
        kills += 1
        acked += got
        check_store(path, acked)
    assert kills >= 40
    assert len(acked) > 200, "the writers barely committed anything before being killed"
    # The store still takes commits after all that, and keeps them.
    final = finish(start_writer(path, "after", "--count", "20", "--mode", "mixed"))
    check_store(path, acked + final)


def test_sigkill_during_compaction(tmp_path):
    """A writer that compacts after every commit (or often, with big audit batches) is killed repeatedly."""
    rng = random.Random(7)
    path = tmp_path / "store"
    init_store(path, padding_docs=3000)  # a ~0.5 MB snapshot: compaction is most of each commit's time
    acked: list[tuple[str, str]] = []
    for round_ in range(30):
        if round_ % 2:
            # Compact in _commit after every record, and explicitly too.
            proc = start_writer(path, f"c{round_}", "--compact-every-call", "2", compact_every=1)
        else:
            # Fewer, bigger compactions: each moves ~30 padded events (~30 KB) to audit.jsonl.
            proc = start_writer(path, f"c{round_}", "--audit-pad", "1000", compact_every=30)
        acked += kill_at_random(proc, rng)
        store = check_store(path, acked)
        assert len(store.all("padding")) == 3000
    assert len(acked) > 100
    final = finish(start_writer(path, "after", "--count", "40", compact_every=5))
    store = check_store(path, acked + final)
    # The debris of killed compactions (new journals, temp snapshots) is swept by the next one.
    assert sorted(p.name for p in path.iterdir()) == sorted([AUDIT, HEAD, LOCK, SNAPSHOT, store._journal_name])


# -- several processes at once ---------------------------------------------------------


def test_concurrent_writers_lose_nothing(tmp_path):
    """Three processes, 300 commits each, one through Service.create_user; compactions interleave."""
    path = tmp_path / "store"
    init_store(path)
    procs = [
        start_writer(path, "svc", "--count", "300", "--mode", "service", compact_every=64),
        start_writer(path, "tx", "--count", "300", "--mode", "tx", "--compact-every-call", "50", compact_every=64),
        start_writer(path, "mix", "--count", "300", "--mode", "mixed", "--compact-every-call", "70", compact_every=64),
    ]
    results = [finish(p) for p in procs]
    assert [len(r) for r in results] == [300, 300, 300]
    acked = [a for r in results for a in r]
    store = check_store(path, acked)

    assert len(store.all(DOCS)) == 300 + 200
    assert len(store.all(USERS)) == 300 + 100
    # One commit for the init, then 900: seq numbers are contiguous, one audit event each.
    assert store.seq == 901
    events = store.audit_events()
    assert [e["seq"] for e in events] == list(range(1, 902))
    assert sorted(e["target"] for e in events[1:]) == sorted(key for _, key in acked)
    # Each writer's own commits are in its own order.
    for prefix, result in zip(("svc", "tx", "mix"), results, strict=False):
        mine = [e["target"] for e in events if e["target"].startswith(prefix + "-")]
        assert mine == [key for _, key in result]
    # And the service over it sees every user.
    service = Service.open(path, actor=ACTOR)
    total, _ = service.list_users("svc-")
    assert total == 300


def test_reader_refreshes_while_another_process_writes(tmp_path):
    """refresh() in a loop never errors, never goes back, and ends up with everything."""
    path = tmp_path / "store"
    init_store(path)
    reader = Service.open(path, actor=ACTOR)
    store = reader.store
    writer = start_writer(path, "w", "--count", "600", "--mode", "mixed", "--compact-every-call", "45", compact_every=16)
    seen_seq = store.seq
    refreshes = changed = 0
    deadline = time.monotonic() + 60
    while True:
        done = writer.poll() is not None
        if reader.refresh():
            changed += 1
        refreshes += 1
        assert store.seq >= seen_seq
        seen_seq = store.seq
        # What the reader sees is a consistent prefix of the writer's commits.
        docs, users = store.all(DOCS), store.all(USERS)
        assert len(docs) + len(users) == store.seq - 1
        total, _ = reader.list_users("w-")
        assert total == len(users)
        for user in list(users.values())[-3:]:
            assert reader.user_view(user["login"])["id"] == user["id"]
        # The audit trail has no gaps; it may run ahead of the reader (audit.jsonl is read afresh).
        seqs = [e["seq"] for e in store.audit_events()]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= store.seq
        if done:
            break
        assert time.monotonic() < deadline
    acked = finish(writer)
    assert len(acked) == 600
    reader.refresh()
    assert store.seq == 601
    missing = [
        key for kind, key in acked if (store.get(DOCS, key) if kind == "doc" else store.lookup(USERS, "login", key)) in (None, set())
    ]
    assert not missing
    assert reader.list_users("w-")[0] == 200
    check_chain(store.audit_events())
    assert changed > 3, f"the reader saw the writer only {changed} times in {refreshes} refreshes"


@pytest.mark.parametrize("compact_every", [3, 1000])
def test_writers_killed_while_another_keeps_writing(tmp_path, compact_every):
    """A steady writer runs while others are killed mid-commit beside it; all acknowledged keys stay."""
    rng = random.Random(compact_every)
    path = tmp_path / "store"
    init_store(path)
    steady = start_writer(path, "steady", "--count", "400", "--mode", "mixed", compact_every=compact_every)
    acked: list[tuple[str, str]] = []
    for round_ in range(6):
        acked += kill_at_random(start_writer(path, f"v{round_}", compact_every=compact_every), rng)
    acked += finish(steady)
    check_store(path, acked)
