"""Unit tests of provtui.store: tables, indexes, transactions, journal, compaction, audit."""

from __future__ import annotations

import os
import stat

import orjson
import pytest
from tinydb import Query

import provtui.store.journal_store
from provtui.model.schema import USERS
from provtui.service import Service
from provtui.store import AUDIT, GENESIS_HASH, HEAD, LOCK, SNAPSHOT, Store, StoreDamaged, StoreError, audit_hash, decode_lines, encode_line


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def store(path):
    return Store.open(path, create=True)


def put(store: Store, table: str, key: str, doc: dict, **event) -> None:
    with store.transaction() as tx:
        tx.put(table, key, doc)
        tx.audit({"action": "put", "target": key, **event})


def check_chain(events: list[dict]) -> None:
    prev = GENESIS_HASH
    for event in events:
        assert event["prev"] == prev
        assert event["hash"] == audit_hash(prev, event)
        prev = event["hash"]
    assert len({e["hash"] for e in events}) == len(events)


def journal(store: Store):
    return store.path / store._journal_name


# -- opening ---------------------------------------------------------------------------


def test_open_missing_store_fails(path):
    with pytest.raises(StoreError):
        Store.open(path)
    assert not Store.exists(path)


def test_create_then_reopen(path):
    store = Store.open(path, create=True)
    assert Store.exists(path)
    assert store.seq == 0 and store.tables == {} and store.audit_events() == []
    put(store, "t", "a", {"x": 1})
    again = Store.open(path)
    assert again.get("t", "a") == {"x": 1}
    assert again.seq == 1
    # create=True never makes a store over an existing one (it would hide the old journal).
    with pytest.raises(StoreError, match="already exists"):
        Store.open(path, create=True)
    assert Store.open(path).get("t", "a") == {"x": 1}


def test_files_are_private(path):
    store = Store.open(path, create=True)
    put(store, "t", "a", {"x": 1})
    store.compact()
    put(store, "t", "b", {"x": 2})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    files = [SNAPSHOT, AUDIT, LOCK, HEAD, store._journal_name]
    for name in files:
        assert stat.S_IMODE(os.stat(path / name).st_mode) == 0o600, name
    assert {p.name for p in path.iterdir()} == set(files)


# -- reading and writing ---------------------------------------------------------------


def test_put_get_delete(store):
    assert store.get("t", "a") is None
    put(store, "t", "a", {"x": 1})
    put(store, "t", "b", {"x": 2})
    assert store.get("t", "a") == {"x": 1}
    assert store.all("t") == {"a": {"x": 1}, "b": {"x": 2}}
    put(store, "t", "a", {"x": 3})
    assert store.get("t", "a") == {"x": 3}
    with store.transaction() as tx:
        tx.delete("t", "a")
    assert store.get("t", "a") is None
    assert store.all("t") == {"b": {"x": 2}}
    assert store.all("nothing") == {}
    reopened = Store.open(store.path)
    assert reopened.tables == {"t": {"b": {"x": 2}}}
    assert reopened.seq == store.seq == 4


def test_tinydb_queries_run_over_live_data(store):
    put(store, "t", "a", {"dept": "Sales"})
    put(store, "t", "b", {"dept": "Finance"})
    assert [d["dept"] for d in store.table("t").search(Query().dept == "Sales")] == ["Sales"]
    put(store, "t", "c", {"dept": "Sales"})
    assert len(store.table("t").search(Query().dept == "Sales")) == 2


def test_index_follows_put_update_delete(store):
    store.add_index("users", "login")
    assert store.lookup("users", "login", "alice") == set()
    put(store, "users", "u1", {"login": "alice"})
    put(store, "users", "u2", {"login": "bob"})
    assert store.lookup("users", "login", "alice") == {"u1"}
    put(store, "users", "u1", {"login": "alicia"})  # the indexed field changes
    assert store.lookup("users", "login", "alice") == set()
    assert store.lookup("users", "login", "alicia") == {"u1"}
    put(store, "users", "u3", {"login": "bob"})
    assert store.lookup("users", "login", "bob") == {"u2", "u3"}
    put(store, "users", "u4", {"name": "no login"})  # no value: not indexed
    assert None not in store._indexes[("users", "login")].entries
    with store.transaction() as tx:
        tx.delete("users", "u2")
    assert store.lookup("users", "login", "bob") == {"u3"}
    with pytest.raises(StoreError):
        store.lookup("users", "email", "x")


def test_index_added_late_and_after_reopen(store):
    put(store, "users", "u1", {"login": "alice"})
    store.add_index("users", "login")
    assert store.lookup("users", "login", "alice") == {"u1"}
    reopened = Store.open(store.path)
    reopened.add_index("users", "login")
    assert reopened.lookup("users", "login", "alice") == {"u1"}


def test_transaction_sees_its_own_writes(store):
    store.add_index("users", "login")
    put(store, "users", "u1", {"login": "alice"})
    with store.transaction() as tx:
        assert tx.get("users", "u1") == {"login": "alice"}
        tx.put("users", "u2", {"login": "bob"})
        assert tx.get("users", "u2") == {"login": "bob"}
        assert tx.lookup("users", "login", "bob") == {"u2"}
        tx.put("users", "u1", {"login": "carol"})
        assert tx.lookup("users", "login", "alice") == set()
        assert tx.lookup("users", "login", "carol") == {"u1"}
        tx.delete("users", "u2")
        assert tx.get("users", "u2") is None
        assert tx.lookup("users", "login", "bob") == set()
        # Nothing is visible outside the transaction until it commits.
        assert store.get("users", "u1") == {"login": "alice"}
        assert store.lookup("users", "login", "carol") == set()
    assert store.get("users", "u1") == {"login": "carol"}
    assert store.get("users", "u2") is None


def test_a_block_that_raises_writes_nothing(store):
    put(store, "t", "a", {"x": 1})
    size = os.path.getsize(journal(store))
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put("t", "a", {"x": 2})
            tx.put("t", "b", {"x": 3})
            tx.audit({"action": "never"})
            raise RuntimeError("refused")
    assert store.get("t", "a") == {"x": 1} and store.get("t", "b") is None
    assert store.seq == 1
    assert os.path.getsize(journal(store)) == size
    assert [e["action"] for e in store.audit_events()] == ["put"]
    assert Store.open(store.path).tables == {"t": {"a": {"x": 1}}}
    # The lock was released: the next transaction goes through.
    put(store, "t", "b", {"x": 4})
    assert store.seq == 2


def test_empty_transaction_commits_nothing(store):
    with store.transaction():
        pass
    assert store.seq == 0
    assert decode_lines(journal(store).read_bytes())[0] == [{"journal": journal(store).name, "follows": 0}]  # its header alone


def test_journal_lines_are_checksummed():
    line = encode_line({"seq": 1})
    assert decode_lines(line * 2) == ([{"seq": 1}, {"seq": 1}], 2 * len(line))
    assert decode_lines(line + line[:-3]) == ([{"seq": 1}], len(line))  # cut inside: torn
    assert decode_lines(line + line[:-1]) == ([{"seq": 1}, {"seq": 1}], 2 * len(line) - 1)  # whole but its newline: kept
    flipped = line[:-3] + b"2" + line[-2:]
    assert decode_lines(line + flipped + line) == ([{"seq": 1}], len(line))  # bad checksum: stop there
    assert decode_lines(b"garbage\n") == ([], 0)


# -- other instances (processes) -------------------------------------------------------


def test_refresh_picks_up_another_instances_commits(store):
    other = Store.open(store.path)
    other.add_index("users", "login")
    assert other.refresh() is False
    put(store, "users", "u1", {"login": "alice"})
    put(store, "users", "u2", {"login": "bob"})
    assert other.get("users", "u1") is None
    assert other.refresh() is True
    assert other.get("users", "u1") == {"login": "alice"}
    assert other.lookup("users", "login", "bob") == {"u2"}
    assert other.seq == store.seq == 2
    assert other.refresh() is False
    # And the other way round: each transaction catches up before it writes.
    with other.transaction() as tx:
        tx.put("users", "u3", {"login": "carol"})
        tx.audit({"action": "put", "target": "u3"})
    put(store, "users", "u4", {"login": "dan"})
    assert store.seq == 4 and store.get("users", "u3") == {"login": "carol"}
    check_chain(store.audit_events())
    assert [e["seq"] for e in store.audit_events()] == [1, 2, 3, 4]


def test_on_apply_listener_hears_own_and_other_commits(store):
    heard = []
    store.on_apply(heard.append)
    put(store, "t", "a", {"x": 1})
    other = Store.open(store.path)
    put(other, "t", "b", {"x": 2})
    store.refresh()
    assert heard == [[["put", "t", "a", {"x": 1}]], [["put", "t", "b", {"x": 2}]]]


def test_refresh_picks_up_another_instances_compaction(store):
    other = Store.open(store.path)
    other.add_index("t", "x")
    put(store, "t", "a", {"x": 1})
    put(store, "t", "b", {"x": 2})
    other.refresh()
    put(store, "t", "c", {"x": 3})
    with store.transaction() as tx:
        tx.delete("t", "a")
    store.compact()
    put(store, "t", "d", {"x": 4})
    heard = []
    other.on_apply(heard.append)
    assert other.refresh() is True
    assert other.tables == store.tables
    assert other.seq == store.seq == 5
    assert other.lookup("t", "x", 1) == set() and other.lookup("t", "x", 3) == {"c"}
    # Listeners hear the net change across the compaction, then the new record.
    ops = sorted(op for batch in heard for op in batch)
    assert ops == [["del", "t", "a"], ["put", "t", "c", {"x": 3}], ["put", "t", "d", {"x": 4}]]
    assert other.audit_events() == store.audit_events()
    # The reader can write again, after the compaction.
    put(other, "t", "e", {"x": 5})
    store.refresh()
    assert store.get("t", "e") == {"x": 5}


def test_refresh_survives_a_compaction_racing_it(store):
    """Another process compacts (deleting our journal) between refresh's snapshot check and its read."""
    other = Store.open(store.path)
    put(store, "t", "a", {"x": 1})
    check = other._snapshot_identity
    raced = []

    def racing_check():
        identity = check()
        if not raced:
            raced.append(True)
            put(store, "t", "b", {"x": 2})
            store.compact()
        return identity

    other._snapshot_identity = racing_check
    assert other.refresh() is True
    assert other.tables == {"t": {"a": {"x": 1}, "b": {"x": 2}}}


def test_compact_after_another_instances_compaction(store):
    other = Store.open(store.path)
    put(other, "t", "a", {"x": 1})
    put(store, "t", "b", {"x": 2})
    store.compact()
    other.compact()  # other's journal is gone; it must reload, not fail or drop "b"
    assert other.tables == {"t": {"a": {"x": 1}, "b": {"x": 2}}}
    assert Store.open(store.path).tables == other.tables
    check_chain(other.audit_events())


def test_service_search_follows_another_processes_compaction(path):
    admin = Service.init(path, actor="admin")
    viewer = Service.open(path, actor="admin")
    admin.create_user("alice", "alice@example.com", "Alice", "Smith")
    assert viewer.list_users("smith")[0] == 0  # builds the search cache
    viewer.refresh()
    assert [u["login"] for u in viewer.list_users("smith")[1]] == ["alice"]
    admin.create_user("bob", "bob@example.com", "Bob", "Smith")
    admin.update_user("alice", {"email": "alice@corp.test"})
    admin.store.compact()
    assert viewer.refresh() is True
    assert [u["login"] for u in viewer.list_users("smith")[1]] == ["alice", "bob"]
    assert [u["login"] for u in viewer.list_users("corp.test")[1]] == ["alice"]
    assert [u["login"] for u in viewer.list_users("example.com")[1]] == ["bob"]
    assert viewer.user_view("bob")["profile"]["lastName"] == "Smith"


# -- compaction --------------------------------------------------------------------------


def test_compact_keeps_data_and_audit(store):
    store.add_index("t", "x")
    for n in range(10):
        with store.transaction() as tx:
            tx.put("t", f"k{n}", {"x": n})
            tx.audit({"action": "put", "target": f"k{n}"})
            tx.audit({"action": "also", "target": f"k{n}"})  # two events in one commit
    before = store.audit_events()
    old_journal = journal(store)
    store.compact()
    assert not old_journal.exists()
    assert len(decode_lines(journal(store).read_bytes())[0]) == 1  # the new journal holds its header alone
    assert store.audit_events() == before
    assert [p.name for p in store.path.glob("journal-*")] == [store._journal_name]
    store.compact()  # nothing new: harmless
    assert store.audit_events() == before
    for n in range(10, 15):
        put(store, "t", f"k{n}", {"x": n})
    reopened = Store.open(store.path)
    reopened.add_index("t", "x")
    assert reopened.tables == store.tables
    assert len(reopened.all("t")) == 15
    assert reopened.lookup("t", "x", 12) == {"k12"}
    events = reopened.audit_events()
    assert len(events) == 25
    assert [e["target"] for e in events[:4]] == ["k0", "k0", "k1", "k1"]
    check_chain(events)
    assert reopened.audit_head == events[-1]["hash"]


def test_automatic_compaction(store, monkeypatch):
    monkeypatch.setattr(provtui.store.journal_store, "COMPACT_EVERY", 4)
    names = set()
    for n in range(23):
        put(store, "t", f"k{n}", {"x": n}, n=n)
        names.add(store._journal_name)
    assert len(names) >= 5  # compacted every 4 records
    assert len(list(store.path.glob("journal-*"))) == 1
    events = Store.open(store.path).audit_events()
    assert [e["n"] for e in events] == list(range(23))
    assert [e["seq"] for e in events] == list(range(1, 24))
    check_chain(events)
    audit_file = decode_lines((store.path / AUDIT).read_bytes())[0]
    assert [e["n"] for e in audit_file] == list(range(20))  # the rest are still in the journal
    assert Store.open(store.path).tables == store.tables


def test_audit_trail_is_append_only(store, monkeypatch):
    monkeypatch.setattr(provtui.store.journal_store, "COMPACT_EVERY", 3)
    put(store, "t", "a", {"x": 1})
    put(store, "t", "a", {"x": 2})
    put(store, "t", "a", {"x": 3})
    first = (store.path / AUDIT).read_bytes()
    with store.transaction() as tx:
        tx.delete("t", "a")
        tx.audit({"action": "delete", "target": "a"})
    put(store, "t", "b", {"x": 1})
    put(store, "t", "c", {"x": 1})
    assert (store.path / AUDIT).read_bytes().startswith(first)
    assert [e["action"] for e in store.audit_events()] == ["put"] * 3 + ["delete"] + ["put"] * 2


def test_compaction_killed_mid_audit_append_is_repaired(store, monkeypatch):
    """A compaction dies half-way through appending to audit.jsonl, before the snapshot moves on.

    The torn line must not swallow the events appended after it, and the events of
    a commit only partly moved must not be lost (they share one seq).
    """
    for n in range(6):
        with store.transaction() as tx:
            tx.put("t", f"k{n}", {"x": n})
            for part in "abc":
                tx.audit({"action": "put", "target": f"k{n}", "part": part})
    store.compact()
    for n in range(6, 12):
        with store.transaction() as tx:
            tx.put("t", f"k{n}", {"x": n})
            for part in "abc":
                tx.audit({"action": "put", "target": f"k{n}", "part": part})
    expected = store.audit_events()
    assert len(expected) == 36
    audit_file = store.path / AUDIT
    append = Store._append_audit_file

    def dies_half_way(self, events):
        size = audit_file.stat().st_size
        append(self, events)
        # Keep the first 4 new lines and half of the 5th: seq 8's "b" survives, its "c" is torn.
        data = audit_file.read_bytes()
        lines = data[size:].split(b"\n")
        os.truncate(audit_file, size + sum(len(line) + 1 for line in lines[:4]) + len(lines[4]) // 2)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(Store, "_append_audit_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        store.compact()
    monkeypatch.setattr(Store, "_append_audit_file", append)

    reopened = Store.open(store.path)
    assert reopened.audit_events() == expected
    check_chain(reopened.audit_events())
    put(reopened, "t", "k12", {"x": 12})
    reopened.compact()
    put(reopened, "t", "k13", {"x": 13})
    events = Store.open(store.path).audit_events()
    assert events[:36] == expected
    assert [e["target"] for e in events[36:]] == ["k12", "k13"]
    check_chain(events)
    assert audit_file.read_bytes().endswith(b"\n")


def test_compaction_killed_after_audit_append_moves_nothing_twice(store, monkeypatch):
    for n in range(5):
        put(store, "t", f"k{n}", {"x": n})
    expected = store.audit_events()
    monkeypatch.setattr(provtui.store.journal_store, "_write_atomic", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        store.compact()  # audit.jsonl written, the snapshot not
    monkeypatch.undo()
    reopened = Store.open(store.path)
    assert reopened.audit_events() == expected
    reopened.compact()
    put(reopened, "t", "k5", {"x": 5})
    events = Store.open(store.path).audit_events()
    assert events[:5] == expected and len(events) == 6
    check_chain(events)
    assert len(decode_lines((store.path / AUDIT).read_bytes())[0]) == 5


# -- torn journal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        b"3f2a",  # a few bytes of a line
        encode_line({"seq": 3, "time": "t", "ops": [["put", "t", "z", {"x": 9}]], "audit": []})[:-7],  # half a line
    ],
)
def test_torn_journal_tail_is_ignored_then_cut_by_the_next_writer(store, tail):
    put(store, "t", "a", {"x": 1})
    put(store, "t", "b", {"x": 2})
    good = os.path.getsize(journal(store))
    with open(journal(store), "ab") as f:
        f.write(tail)
    reopened = Store.open(store.path)
    assert reopened.tables == {"t": {"a": {"x": 1}, "b": {"x": 2}}}
    assert reopened.seq == 2
    assert os.path.getsize(journal(store)) == good + len(tail)  # opening reads; it changes nothing
    put(reopened, "t", "c", {"x": 3})  # the writer cuts the torn end, then appends
    again = Store.open(store.path)
    assert again.tables == {"t": {"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}}}
    assert [e["seq"] for e in again.audit_events()] == [1, 2, 3]
    check_chain(again.audit_events())


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"00000000 " + orjson.dumps({"seq": 3, "ops": [], "audit": []}) + b"\n", "checksum mismatch"),  # a whole line: acknowledged once
        (b"\x00" * 300, "zero bytes at the end"),  # not the start of a record
        (b"garbage", "the file ends inside something that is not a record"),
    ],
)
def test_a_bad_last_record_that_is_not_a_torn_start_is_damage(store, tail, reason):
    put(store, "t", "a", {"x": 1})
    put(store, "t", "b", {"x": 2})
    good = os.path.getsize(journal(store))
    with open(journal(store), "ab") as f:
        f.write(tail)
    data = journal(store).read_bytes()
    with pytest.raises(StoreDamaged, match=f"at byte {good} \\(record 4\\): {reason}"):  # header, a, b, then this
        Store.open(store.path)
    with pytest.raises(StoreDamaged):
        put(store, "t", "c", {"x": 3})  # a writer that had it open refuses too
    assert journal(store).read_bytes() == data


def test_damage_before_intact_records_loses_nothing(store):
    for n in range(10):
        put(store, "t", f"k{n}", {"x": n})
    data = bytearray(journal(store).read_bytes())
    fifth = sum(len(line) + 1 for line in bytes(data).split(b"\n")[:4])  # the header is record 1
    data[fifth + 30] ^= 0x01
    journal(store).write_bytes(bytes(data))
    with pytest.raises(StoreDamaged, match=f"at byte {fifth} \\(record 5\\): checksum mismatch"):
        Store.open(store.path)
    assert journal(store).read_bytes() == bytes(data)  # records 6 to 10 are still there


def test_reader_ignores_a_half_written_line_until_it_completes(store):
    reader = Store.open(store.path)
    put(store, "t", "a", {"x": 1})
    line = encode_line({"seq": 2, "time": "t", "ops": [["put", "t", "b", {"x": 2}]], "audit": []})
    with open(journal(store), "ab") as f:
        f.write(line[:10])
    reader.refresh()
    assert reader.seq == 1 and reader.get("t", "b") is None
    with open(journal(store), "ab") as f:
        f.write(line[10:])
    assert reader.refresh() is True
    assert reader.get("t", "b") == {"x": 2}


def test_torn_tail_then_writer_commits_and_reader_follows(store):
    reader = Store.open(store.path)
    put(store, "t", "a", {"x": 1})
    with open(journal(store), "ab") as f:
        f.write(b'deadbeef {"seq": 2, "ops"')  # a writer died here
    reader.refresh()
    writer = Store.open(store.path)  # repairs on open
    put(writer, "t", "b", {"x": 2})
    assert reader.refresh() is True
    assert reader.tables == writer.tables == {"t": {"a": {"x": 1}, "b": {"x": 2}}}


def test_users_table_from_service_survives_reopen(path):
    service = Service.init(path, actor="admin")
    service.create_user("alice", "alice@example.com", "Alice", "Smith")
    service.update_user("alice", {"title": "Engineer"})
    reopened = Service.open(path, actor="admin")
    assert reopened.user_view("alice")["profile"]["title"] == "Engineer"
    assert len(reopened.store.all(USERS)) == 1
    assert [e["action"] for e in reopened.audit()] == ["store.init", "user.create", "user.update"]
    check_chain(reopened.audit())


# -- group commit ----------------------------------------------------------------------


def test_deferred_sync_makes_its_commits_durable_together_then_notes_their_head(store, path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(provtui.store.journal_store.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    noted = (path / HEAD).read_bytes()
    with store.deferred_sync():
        put(store, USERS, "u1", {"login": "ada"})
        with store.deferred_sync():  # nested: the outer one syncs
            put(store, USERS, "u2", {"login": "bob"})
        assert synced == [] and store.get(USERS, "u2") == {"login": "bob"}  # applied, written, not yet durable
        assert (path / HEAD).read_bytes() == noted  # the head never names a commit before it is durable
        assert journal(store).read_bytes().count(b"\n") == 3  # the header and both commits, written as they came
    assert len(synced) == 1 and store.seq == 2
    assert (path / HEAD).read_bytes().split()[0] == b"2"
    again = Store.open(path)
    assert again.get(USERS, "u1") == {"login": "ada"} and again.get(USERS, "u2") == {"login": "bob"}
    check_chain(again.audit_events())


def test_a_deferred_sync_with_no_commit_syncs_nothing(store, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(provtui.store.journal_store.os, "fsync", synced.append)
    with store.deferred_sync():
        assert store.get(USERS, "nobody") is None
    assert synced == []
