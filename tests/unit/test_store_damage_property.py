"""Property: whatever is done to one store file, nothing acknowledged is lost without a word.

A store is built by a few hundred random commits (with compactions, so the snapshot holds
documents, audit.jsonl holds events and the journal holds records).  Each example damages
one file: one byte flipped, a range zeroed, a truncation, a line duplicated, two lines
swapped.  Then:

- reading either gives exactly the acknowledged data or refuses with StoreDamaged naming
  that file -- and no file changes (a journal cut anywhere, even at a record boundary, is
  caught by the seq the store notes in store.head after each commit);
- `store repair` then recovers every record that was intact (counted against the
  acknowledged commits, with the damaged ones subtracted), and `store check` passes.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provtui.service import Service
from provtui.store import AUDIT, HEAD, SNAPSHOT, StoreDamaged

TABLES = ("t1", "t2")
ACTOR = "root"


def _commit(store, rng: random.Random, n: int) -> None:
    with store.transaction() as tx:
        for _ in range(rng.randint(1, 3)):
            table, key = rng.choice(TABLES), f"k{rng.randint(0, 40)}"
            if rng.random() < 0.2 and tx.get(table, key) is not None:
                tx.delete(table, key)
            else:
                tx.put(table, key, {"n": n, "v": rng.random()})
        tx.audit({"actor": ACTOR, "action": "test.change", "target": f"c{n}", "before": None, "after": {"n": n}})


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("damage") / "s"
    service = Service.init(path, actor=ACTOR)
    rng = random.Random(20261202)
    for n in range(240):
        _commit(service.store, rng, n)
        if n in (80, 160):
            service.store.compact()
    reopened = Service.open(path, actor=ACTOR)
    return Template(
        {"path": path, "tables": copy.deepcopy(reopened.store.tables), "events": reopened.audit(), "head": reopened.store.audit_head}
    )


class Template(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<store template at {self['path']}>"


def _files(path: Path) -> dict[str, Path]:
    [journal] = path.glob("journal-*.jsonl")
    return {"snapshot": path / SNAPSHOT, "journal": journal, "audit": path / AUDIT, "head": path / HEAD}


def damage(data: bytes, kind: str, a: float, b: float) -> bytes:
    """``data`` damaged as ``kind`` says, at the places ``a`` and ``b`` (0 to 1) pick."""
    n = len(data)
    i, j = sorted((int(a * (n - 1)), int(b * (n - 1))))
    if kind == "flip":
        out = bytearray(data)
        out[i] ^= 1 << int(b * 7)
        return bytes(out)
    if kind == "zero":
        j = max(j, i + 1)
        return data[:i] + b"\x00" * (j - i) + data[j:]
    if kind == "truncate":
        return data[:i]
    lines = data.split(b"\n")[:-1]
    x, y = int(a * (len(lines) - 1)), int(b * (len(lines) - 1))
    if kind == "duplicate":
        lines.insert(x + 1, lines[x])
    else:  # swap
        if x == y:
            y = (x + 1) % len(lines)
        lines[x], lines[y] = lines[y], lines[x]
    return b"\n".join(lines) + b"\n"


def digest(path: Path) -> dict:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}


def reference_after_repair(original: dict[str, bytes], damaged: dict[str, bytes], names: dict[str, str]) -> dict:
    """The acknowledged data as a repair must rebuild it: every original record whose line is still
    intact (byte for byte) in the damaged file, and nothing else."""

    def surviving(name: str) -> list[bytes]:
        left = set(damaged[name].split(b"\n"))
        return [line for line in original[name].split(b"\n")[:-1] if line in left]

    tables: dict[str, dict] = {}
    for line in surviving(names["snapshot"]):
        entry = orjson.loads(line[9:])
        if isinstance(entry, list):  # [table, {key: document, ...}]
            tables.setdefault(entry[0], {}).update(entry[1])
    records = [orjson.loads(line[9:]) for line in surviving(names["journal"])]
    for record in sorted((r for r in records if "ops" in r), key=lambda r: r["seq"]):
        for op in record["ops"]:
            if op[0] == "put":
                tables.setdefault(op[1], {})[op[2]] = op[3]
            else:
                tables.get(op[1], {}).pop(op[2], None)
    return {t: tables.get(t, {}) for t in TABLES}


@settings(
    max_examples=int(os.environ.get("PROVTUI_DAMAGE_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    which=st.sampled_from(["snapshot", "journal", "audit", "head"]),
    kind=st.sampled_from(["flip", "zero", "truncate", "duplicate", "swap"]),
    a=st.floats(0, 1),
    b=st.floats(0, 1),
)
def test_damage_is_refused_or_harmless_and_repair_keeps_every_intact_record(template, which, kind, a, b):
    root = Path(tempfile.mkdtemp(prefix="provtui-damage-"))
    try:
        path = root / "s"
        shutil.copytree(template["path"], path)
        files = _files(path)
        names = {k: p.name for k, p in files.items()}
        original = {p.name: p.read_bytes() for p in files.values()}
        target = files[which]
        damaged = damage(target.read_bytes(), kind, a, b)
        if damaged == target.read_bytes():
            return  # e.g. two identical lines swapped: nothing was damaged
        target.write_bytes(damaged)
        before = digest(path)
        now = {p.name: p.read_bytes() for p in files.values()}

        refused = _read_everything(path, template)
        assert digest(path) == before, "a read changed a file"

        report = Service.check_store(path)
        if refused:
            assert report["damage"], "the store refused to open but the check found nothing"
        if report["damage"]:
            Service.repair_store(path, actor=ACTOR)
            after = Service.open(path, actor=ACTOR)
            expected = reference_after_repair(original, now, names)
            assert {t: after.store.tables.get(t, {}) for t in TABLES} == expected
            assert Service.check_store(path)["intact"], Service.check_store(path)
            assert after.audit_verify().ok
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _read_everything(path: Path, template: dict) -> bool:
    """Open and read as every command does; True when the store refused (StoreDamaged)."""
    try:
        service = Service.open(path, actor=ACTOR)
        tables = {t: service.store.tables.get(t, {}) for t in TABLES}
        events = service.audit()
        report = service.audit_verify()
        head_report = service.audit_verify(template["head"])
    except StoreDamaged as error:
        assert error.damage.file in {p.name for p in _files(path).values()} | {SNAPSHOT}, error
        return True
    assert tables == {t: template["tables"].get(t, {}) for t in TABLES}, "data changed without a word"
    if events != template["events"]:
        assert not report.ok and not head_report.ok, "the trail changed and verify says intact"
    return False
