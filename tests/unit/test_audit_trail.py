"""The audit trail, read: filters, JSON-lines and CSV exports, and the hash-chain check.

Tampering is done as an attacker would: edit, delete or swap lines of the store's
audit.jsonl and journal, re-computing each line's CRC (store.encode_line) so the
store still reads them and only the hash chain can tell.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.model.audit_trail import COLUMNS, csv_cell, csv_text, filter_events, from_jsonl, parse_time, to_csv, to_jsonl, verify_chain
from provtui.service import Service
from provtui.store import AUDIT, GENESIS_HASH, StoreDamaged, audit_hash, decode_lines, encode_line

# -- helpers -----------------------------------------------------------------------------


def chain(*events: dict) -> list[dict]:
    """Hash-chain hand-made events as the store does."""
    out, prev = [], GENESIS_HASH
    for seq, event in enumerate(events, 1):
        event = {
            "seq": seq,
            "time": f"2024-05-0{min(seq, 9)}T10:00:00.000Z",
            "actor": "alice",
            "action": "x",
            "target": "t",
            "before": None,
            "after": None,
            "correlation": None,
            **event,
            "prev": prev,
        }
        event["hash"] = prev = audit_hash(prev, event)
        out.append(event)
    return out


EVENTS = chain(
    {"actor": "alice", "action": "user.create", "target": "ada", "time": "2024-05-01T09:00:00.000Z"},
    {"actor": "bob", "action": "user.update", "target": "adam", "time": "2024-05-02T09:00:00.000Z"},
    {"actor": "alice", "action": "app.assign", "target": "user:ada", "time": "2024-05-03T09:00:00.000Z"},
    {"actor": "engine", "action": "downstream.call", "target": "Slack", "time": "2024-05-04T09:00:00Z"},
    {"actor": "alice", "action": "userx.odd", "target": "Group:Eng", "time": "2024-05-05T09:00:00.000+02:00"},
)


def rewrite(path, transform) -> None:
    """Rewrite a store file's lines (audit.jsonl or a journal) with valid CRCs: the attacker's way."""
    records, used = decode_lines(path.read_bytes())
    assert used == len(path.read_bytes())
    path.write_bytes(b"".join(encode_line(r) for r in transform(records)))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with 6 entries in audit.jsonl (compacted) and 3 more still in the journal; built once, copied per test."""
    service = Service.init(tmp_path_factory.mktemp("template") / "store", actor="alice")
    for login in ("ada", "bob"):
        service.create_user(login, f"{login}@example.com", login.title(), "T", activate=True)
    service.create_group("eng")
    service.add_members("eng", ["ada", "bob"])
    service.update_user("ada", {"title": "Chief"})
    service.store.compact()
    service.change_state("bob", "suspend")
    service.set_config("smtp.host", "mail.example.com")
    service.create_group("ops")
    return service.location


@pytest.fixture
def org(template, tmp_path):
    shutil.copytree(template, tmp_path / "store")
    return Service.open(tmp_path / "store", actor="alice")


def reopen(service: Service) -> Service:
    return Service.open(service.location, actor="alice")


def journal(service: Service):
    return service.location / service.store._journal_name


# -- filters -----------------------------------------------------------------------------


def test_filter_by_actor_is_exact():
    assert [e["seq"] for e in filter_events(EVENTS, actor="alice")] == [1, 3, 5]
    assert filter_events(EVENTS, actor="ali") == []


def test_filter_by_action_exact_or_dotted_prefix():
    assert [e["action"] for e in filter_events(EVENTS, action="user")] == ["user.create", "user.update"]
    assert [e["action"] for e in filter_events(EVENTS, action="user.")] == ["user.create", "user.update"]
    assert [e["action"] for e in filter_events(EVENTS, action="user.create")] == ["user.create"]
    assert filter_events(EVENTS, action="user.cre") == []  # a prefix ends at a dot


def test_filter_by_target_exact_kind_name_or_glob():
    assert [e["target"] for e in filter_events(EVENTS, target="ada")] == ["ada", "user:ada"]  # not adam
    assert [e["target"] for e in filter_events(EVENTS, target="user:ada")] == ["user:ada"]
    assert [e["target"] for e in filter_events(EVENTS, target="ENG")] == ["Group:Eng"]  # case-insensitive
    assert [e["target"] for e in filter_events(EVENTS, target="ad*")] == ["ada", "adam"]


def test_filter_by_time_and_limit():
    since = datetime(2024, 5, 3, 9, tzinfo=UTC)
    assert [e["seq"] for e in filter_events(EVENTS, since=since)] == [3, 4, 5]
    assert [e["seq"] for e in filter_events(EVENTS, since=datetime(2024, 5, 3, 9))] == [3, 4, 5]  # naive is UTC
    assert [e["seq"] for e in filter_events(EVENTS, since=since, until=datetime(2024, 5, 4, 9, tzinfo=UTC))] == [3]
    # 09:00+02:00 is 07:00Z: before 08:00Z
    assert [e["seq"] for e in filter_events(EVENTS, since=datetime(2024, 5, 5, 8, tzinfo=UTC))] == []
    assert [e["seq"] for e in filter_events(EVENTS, limit=2)] == [4, 5]  # the newest two, oldest first
    assert [e["seq"] for e in filter_events(EVENTS, actor="alice", limit=2)] == [3, 5]
    assert filter_events(EVENTS, limit=0) == []


def test_parse_time():
    assert parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_time("2024-05-01T12:00:00+02:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidInput) as error:
        parse_time("last tuesday", "--since")
    assert error.value.field == "--since"


def test_service_audit_filters(org):
    assert [e["action"] for e in org.audit(action="group")] == ["group.create", "group.add-member", "group.create"]
    assert [e["target"] for e in org.audit(target="bob")] == ["bob", "bob"]
    assert len(org.audit(2)) == 2 and org.audit(2) == org.audit()[-2:]
    assert org.audit(since=datetime.now(UTC) + timedelta(days=1)) == []
    assert org.audit(actor="alice") == org.audit()
    with pytest.raises(NotAllowed):
        Service.open(org.location, actor="mallory").audit()


def test_the_newest_events_are_read_from_the_trails_end_across_the_file_and_the_journal(org):
    org.update_user("ada", {"title": "x" * 999, "city": "y" * 999, "office": "z" * 999})  # a line longer than the smallest block below
    org.store.compact()  # ...into audit.jsonl, and newer events in the journal again
    org.change_state("bob", "unsuspend")
    everything = org.audit()
    for block in (64, 1000, 1 << 20):  # every line split across blocks, some, none
        assert list(org.store.audit_events_newest_first(block=block)) == everything[::-1]
    for n in range(len(everything) + 2):
        assert org.audit(n or None) == (everything[-n:] if n else everything)
    assert org.audit(2, action="group") == [e for e in everything if e["action"].startswith("group.")][-2:]


def test_downstream_calls_can_be_left_out(org):
    with org.store.transaction() as tx:
        tx.audit({"actor": "engine", "action": "downstream.call", "target": "Slack", "before": None, "after": {}})
    assert org.audit(1)[0]["action"] == "downstream.call"
    assert org.audit(1, calls=False) == [org.audit()[-2]]
    assert "downstream.call" not in {e["action"] for e in org.audit(calls=False)}


# -- exports -----------------------------------------------------------------------------


def test_jsonl_export_keeps_every_field_and_verifies():
    data = to_jsonl(EVENTS)
    assert data.count(b"\n") == len(EVENTS)
    assert from_jsonl(data) == EVENTS
    assert verify_chain(from_jsonl(data)).ok


INJECTIONS = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1:A9)", "\tx", "\rx", "\uff1d1+1"]


def test_csv_escapes_cells_a_spreadsheet_would_run():
    events = chain(
        *({"target": text, "after": text} for text in INJECTIONS),
        {"target": "ada", "before": {"state": "active"}, "after": {"users": ["=x", "b"]}},
    )
    rows = list(csv.reader(io.StringIO(to_csv(events), newline="")))
    assert rows[0] == COLUMNS
    for row, text in zip(rows[1:], INJECTIONS, strict=False):
        cells = dict(zip(COLUMNS, row, strict=True))
        assert cells["target"] == "'" + text and cells["after"] == "'" + text
        assert cells["before"] == ""
    last = dict(zip(COLUMNS, rows[-1], strict=True))
    assert last["target"] == "ada"
    assert last["before"] == '{"state":"active"}' and last["after"] == '{"users":["=x","b"]}'  # compact JSON
    assert last["seq"] == str(len(INJECTIONS) + 1)


def test_csv_cell_leaves_numbers_and_plain_text():
    assert csv_cell(-1) == -1 and csv_cell(2.5) == 2.5 and csv_cell(True) == "true" and csv_cell(None) == ""
    assert csv_cell("ada") == "ada" and csv_cell("a=b") == "a=b" and csv_cell("-1") == "'-1"
    text = csv_text([{"a": '=HYPERLINK("http://x","y")', "b": 'say "hi", then go'}], ["a", "b"])
    assert text == 'a,b\r\n"\'=HYPERLINK(""http://x"",""y"")","say ""hi"", then go"\r\n'


# -- the chain: pure -----------------------------------------------------------------------


def test_verify_pure_cases():
    assert verify_chain([]).ok and verify_chain([], expected_head=GENESIS_HASH).ok
    report = verify_chain(EVENTS, expected_head=EVENTS[-1]["hash"])
    assert report.ok and report.entries == 5 and report.first_broken is None and report.head == EVENTS[-1]["hash"]

    edited = [dict(e) for e in EVENTS]
    edited[2]["target"] = "user:eve"
    assert verify_chain(edited).first_broken | {"reason": ""} == {"seq": 3, "index": 2, "kind": "edited", "reason": ""}

    deleted = EVENTS[:1] + EVENTS[2:]
    assert verify_chain(deleted).first_broken["kind"] == "deleted" and verify_chain(deleted).first_broken["index"] == 1
    first = verify_chain(EVENTS[1:]).first_broken  # the very first entry deleted
    assert first["kind"] == "deleted" and first["index"] == 0

    swapped = [EVENTS[0], EVENTS[2], EVENTS[1], *EVENTS[3:]]
    broken = verify_chain(swapped).first_broken
    assert broken["kind"] == "reordered" and broken["index"] == 1 and broken["seq"] == 3

    truncated = verify_chain(EVENTS[:-2], expected_head=EVENTS[-1]["hash"])
    assert verify_chain(EVENTS[:-2]).ok  # a chain alone cannot tell
    assert not truncated.ok and truncated.first_broken["kind"] == "truncated" and truncated.first_broken["index"] == 3

    extra = verify_chain(EVENTS, expected_head=EVENTS[2]["hash"])
    assert extra.first_broken["kind"] == "extra" and extra.first_broken["index"] == 3

    assert verify_chain([{"seq": 1, "action": "x"}]).first_broken["kind"] == "edited"


# -- the chain: the store's files ---------------------------------------------------------


def test_intact_store_verifies(org):
    assert len(decode_lines((org.location / AUDIT).read_bytes())[0]) == 6  # the fixture is what it says
    report = reopen(org).audit_verify()
    assert report.ok and report.entries == len(org.audit()) == 9 and report.first_broken is None
    assert report.head == org.store.audit_head == report.expected_head
    assert org.audit_verify().ok  # the live service too


def test_edited_entry_in_audit_file_is_named(org):
    def edit(records):
        assert records[4]["action"] == "group.add-member"
        records[4]["after"] = {"users": ["ada", "bob", "mallory"]}  # seq 5
        return records

    rewrite(org.location / AUDIT, edit)
    report = reopen(org).audit_verify()
    assert not report.ok
    assert report.first_broken["seq"] == 5 and report.first_broken["index"] == 4 and report.first_broken["kind"] == "edited"
    assert "seq 5" in report.describe() and "edited" in report.describe()


def test_edited_entry_in_journal_is_named(org):
    def edit(records):
        for record in records:
            for event in record.get("audit", []):  # the journal's header has none
                if event["action"] == "config.set":
                    event["after"] = "evil.example.com"
        return records

    seq = next(e["seq"] for e in org.audit() if e["action"] == "config.set")
    rewrite(journal(org), edit)
    report = reopen(org).audit_verify()
    assert report.first_broken["seq"] == seq and report.first_broken["kind"] == "edited" and report.first_broken["index"] == 7


def test_deleted_entry_is_named(org):
    rewrite(org.location / AUDIT, lambda records: records[:2] + records[3:])  # seq 3 (bob created) gone
    report = reopen(org).audit_verify()
    broken = report.first_broken
    assert broken["kind"] == "deleted" and broken["index"] == 2 and broken["seq"] == 4
    assert "seq 2" in broken["reason"] and "seq 4" in broken["reason"]  # between which entries


def test_deleted_journal_line_is_damage_named_by_record(org):
    rewrite(journal(org), lambda records: records[:2] + records[3:])  # header, then the config.set commit gone, data and all
    with pytest.raises(StoreDamaged, match=r"journal-\d+\.jsonl at byte \d+ \(record 3\): out of sequence"):
        reopen(org)


def test_swapped_entries_are_named(org):
    rewrite(org.location / AUDIT, lambda r: [r[0], r[1], r[3], r[2], *r[4:]])
    broken = reopen(org).audit_verify().first_broken
    assert broken["kind"] == "reordered" and broken["index"] == 2 and broken["seq"] == 4


def test_truncated_tail_is_caught_by_the_head(org):
    org.store.compact()  # everything in audit.jsonl; the head in the snapshot
    rewrite(org.location / AUDIT, lambda records: records[:-2])
    reopened = reopen(org)
    assert len(reopened.audit()) == 7
    assert verify_chain(reopened.audit()).ok  # the chain alone cannot tell
    report = reopened.audit_verify()
    assert not report.ok and report.first_broken["kind"] == "truncated" and report.first_broken["index"] == 7


def test_edit_without_fixing_the_crc_is_damage(org):
    path = org.location / AUDIT
    before = path.read_bytes()
    path.write_bytes(before.replace(b'"bob"', b'"eve"', 1))
    with pytest.raises(StoreDamaged, match=r"audit.jsonl at byte \d+ \(record 3\): checksum mismatch"):
        reopen(org).audit_verify()
    assert path.read_bytes() == before.replace(b'"bob"', b'"eve"', 1)  # nothing cut away


def test_verify_needs_read_access(org):
    with pytest.raises(NotAllowed):
        Service.open(org.location, actor="mallory").audit_verify()


def test_downstream_call_events_are_chained_like_any_other(org):
    with org.store.transaction() as tx:  # what the engine writes for one call
        tx.audit(
            {
                "actor": "provtui-engine",
                "action": "downstream.call",
                "target": "Slack",
                "before": None,
                "after": {"method": "POST", "path": "/Users", "status": 201, "duration_ms": 12.5},
                "correlation": "c1",
            }
        )
    assert reopen(org).audit_verify().ok
    assert orjson.loads(to_jsonl(org.audit(action="downstream")))["after"]["status"] == 201
