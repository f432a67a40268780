"""Damage to the store's files is detected and named, never turned into silent data loss.

Through the real CLI in a subprocess: every broken state of the files exits 5 with one
line and no traceback, and leaves every file as it was; `store check` names each spot;
`store repair` keeps a backup and every intact record; `audit verify` then names the gap.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provtui.service import Service
from provtui.store import AUDIT, LOCK, SNAPSHOT


def provtui(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provtui", "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def digest(store: Path) -> dict[str, str]:
    """Every file's content (a directory's name only), to show a command changed nothing."""
    out = {}
    for p in sorted(store.rglob("*")):
        out[str(p.relative_to(store))] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def journal_of(store: Path) -> Path:
    [journal] = store.glob("journal-*.jsonl")
    return journal


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def build(store: Path, users: int = 10, compact_after: int | None = None) -> Service:
    service = Service.init(store, actor="root")
    for n in range(users):
        service.create_user(f"u{n}", f"u{n}@example.com", "U", f"N{n}")
        if compact_after is not None and n == compact_after:
            service.store.compact()
    return service


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# -- the issue's own case: one flipped byte in the fifth record ---------------------------------


def test_one_flipped_byte_loses_nothing_and_is_named(tmp_path):
    store = tmp_path / "s"
    build(store)  # records: the journal's header, init, then ten users (u0 to u9)
    journal = journal_of(store)
    offset = sum(len(line) + 1 for line in lines_of(journal)[:4])  # the fifth record
    flip(journal, offset + 40)
    before = digest(store)
    for args in (
        ("user", "list"),
        ("user", "show", "u0"),
        ("audit",),
        ("audit", "verify"),
        ("report", "orphans"),
        ("user", "create", "x", "--email", "x@example.com", "--first", "X", "--last", "Y"),
    ):
        done = provtui(store, *args)
        assert done.returncode == 5, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert f"{journal.name} at byte {offset} (record 5): checksum mismatch" in done.stderr
        assert "store repair" in done.stderr
        assert digest(store) == before, args  # nothing truncated, nothing rewritten
    check = provtui(store, "store", "check", "--json")
    assert check.returncode == 5
    report = json.loads(check.stdout)
    assert report["intact"] is False and report["audit"]["intact"] is False
    [spot] = report["damage"]
    assert (spot["file"], spot["offset"], spot["record"], spot["reason"]) == (journal.name, offset, 5, "checksum mismatch")
    assert (spot["intact_before"], spot["intact_after"]) == (4, 7)  # records 6..12 are intact and kept
    assert digest(store) == before

    repaired = provtui(store, "store", "repair", "--json")
    assert repaired.returncode == 0, repaired.stderr
    result = json.loads(repaired.stdout)
    backup = Path(result["backup"])
    assert backup.parent == store and (backup / journal.name).read_bytes() == before_journal_bytes(before, journal, backup)
    [dropped] = result["dropped"]
    assert dropped["record"] == 5 and dropped["readable"]["writes"][0]["table"] == "users"
    assert result["kept"][journal.name] == 11 and result["events_lost"] == 1
    listed = json.loads(provtui(store, "user", "list", "--json").stdout)
    assert sorted(u["login"] for u in listed) == sorted(f"u{n}" for n in range(10) if n != 2)  # only the 5th record's user
    verify = provtui(store, "audit", "verify")
    assert verify.returncode == 0
    assert "intact since the repair at" in verify.stdout and f"1 event(s) lost at record 5 of {journal.name}" in verify.stdout
    assert provtui(store, "store", "check").returncode == 0
    assert provtui(store, "store", "repair").returncode == 2  # nothing damaged now
    events = json.loads(provtui(store, "audit", "--json", "--action", "store.repaired").stdout)
    assert events and events[0]["after"]["backup"] == str(backup)


def before_journal_bytes(before: dict, journal: Path, backup: Path) -> bytes:
    """The backup holds the damaged journal exactly as it was."""
    data = (backup / journal.name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == before[journal.name]
    return data


# -- every state of the files: exit 5, one line, no traceback, nothing changed --------------------


def _zero(path: Path) -> None:
    path.write_bytes(b"\x00" * max(1, path.stat().st_size))


def _to_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


STATES = {
    "snapshot missing": lambda s: (s / SNAPSHOT).unlink(),
    "journal missing": lambda s: journal_of(s).unlink(),
    "snapshot empty": lambda s: (s / SNAPSHOT).write_bytes(b""),
    "journal empty": lambda s: journal_of(s).write_bytes(b""),
    "snapshot zero-filled": lambda s: _zero(s / SNAPSHOT),
    "journal zero-filled": lambda s: _zero(journal_of(s)),
    "audit zero-filled": lambda s: _zero(s / AUDIT),
    "snapshot a directory": lambda s: _to_dir(s / SNAPSHOT),
    "journal a directory": lambda s: _to_dir(journal_of(s)),
    "lock a directory": lambda s: _to_dir(s / LOCK),
    "snapshot cut short": lambda s: os.truncate(s / SNAPSHOT, (s / SNAPSHOT).stat().st_size // 2),
    "snapshot byte flipped": lambda s: flip(s / SNAPSHOT, (s / SNAPSHOT).stat().st_size // 2),
    "snapshot lines swapped": lambda s: (s / SNAPSHOT).write_bytes(_swap(lines_of(s / SNAPSHOT), 2, 3)),
    "journal line duplicated": lambda s: journal_of(s).write_bytes(
        b"\n".join([*lines_of(journal_of(s)), lines_of(journal_of(s))[0]]) + b"\n"
    ),
}


def _swap(lines: list[bytes], a: int, b: int) -> bytes:
    lines[a], lines[b] = lines[b], lines[a]
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    store = tmp_path_factory.mktemp("integrity") / "s"
    build(store, users=6, compact_after=3)  # the snapshot holds documents, audit.jsonl events, the journal records
    return store


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_broken_state_exits_5_with_one_line(template, tmp_path, state):
    import shutil

    store = tmp_path / "s"
    shutil.copytree(template, store)
    STATES[state](store)
    before = digest(store)
    command = ("audit",) if state.startswith("audit") else ("user", "list")
    done = provtui(store, *command)
    assert done.returncode == 5, (state, done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1 and done.stderr.startswith("provtui: error: store:"), done.stderr
    assert digest(store) == before
    check = provtui(store, "store", "check", "--json")
    assert check.returncode == 5 and json.loads(check.stdout)["damage"], check.stdout
    assert digest(store) == before
    repaired = provtui(store, "store", "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert provtui(store, "store", "check").returncode == 0
    assert provtui(store, "user", "list").returncode == 0
    assert provtui(store, "audit", "verify").returncode == 0


def test_the_console_says_the_same_and_exits_5(template, tmp_path):
    import shutil

    store = tmp_path / "s"
    shutil.copytree(template, store)
    flip(journal_of(store), 20)
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "TERM": "xterm"},
    )
    assert done.returncode == 5 and "the store is damaged" in done.stderr and "Traceback" not in done.stderr


def test_no_store_at_all_is_bad_input_not_damage(tmp_path):
    done = provtui(tmp_path / "nothing", "user", "list")
    assert done.returncode == 2 and "no store at" in done.stderr and "provtui init" in done.stderr


@pytest.mark.parametrize("present", [SNAPSHOT, "journal-0.jsonl", AUDIT])
def test_init_never_creates_a_store_over_an_existing_one(tmp_path, present):
    store = tmp_path / "s"
    store.mkdir()
    (store / present).write_bytes(b"old data")
    done = subprocess.run([sys.executable, "-m", "provtui", "init", "--store", str(store)], capture_output=True, text=True)
    assert done.returncode == 2 and "already exists" in done.stderr and present in done.stderr
    assert sorted(p.name for p in store.iterdir()) == [present] and (store / present).read_bytes() == b"old data"


def test_store_check_on_an_intact_store(template):
    done = provtui(template, "store", "check", "--json")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["intact"] is True and report["damage"] == []
    assert set(report) >= {"intact", "damage", "records", "audit"} and set(report["audit"]) >= {"events", "head", "intact"}
    assert report["records"][SNAPSHOT] > 0 and report["records"][AUDIT] > 0
    head = json.loads(provtui(template, "audit", "head", "--json").stdout)
    assert head == {"events": report["audit"]["events"], "head": report["audit"]["head"]}


def test_repair_needs_a_super_admin(template, tmp_path):
    import shutil

    store = tmp_path / "s"
    shutil.copytree(template, store)
    service = Service.open(store, actor="root")
    service.grant("desk", "helpdesk")
    flip(journal_of(store), 20)
    before = digest(store)
    with pytest.raises(Exception) as refused:
        Service.repair_store(store, actor="desk")
    assert type(refused.value).__name__ == "NotAllowed" and "super-admin" in str(refused.value)
    assert digest(store) == before  # no backup, no rewrite: nothing happened
