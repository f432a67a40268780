"""The audit trail's hash chain, checked: each event's hash covers it and chains the one before.

Part of the store (the chain is how the store's trail is written), so the store's own check
(integrity) and the read model's `audit verify` use the one verifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provtui.store.records import GENESIS_HASH, audit_hash

REPAIRED = "store.repaired"  # its ``after.gaps`` name where the chain jumps over records a repair dropped


@dataclass
class ChainReport:
    """What ``verify_chain`` found.  ``first_broken``: {"seq", "index", "kind", "reason"} or None.

    ``index`` counts from 0 in the list checked; ``seq`` is that entry's commit
    number (one commit's events share a seq, so the index is what pins it down).
    ``kind`` is one of: edited, deleted, inserted, reordered, truncated, extra.
    """

    ok: bool
    entries: int
    first_broken: dict[str, Any] | None = None
    head: str = GENESIS_HASH  # the last entry's hash
    expected_head: str | None = None
    repairs: list[dict[str, Any]] = field(default_factory=list)  # store.repaired events whose declared gaps the chain crossed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_broken": self.first_broken,
            "head": self.head,
            "expected_head": self.expected_head,
            "repairs": self.repairs,
        }

    def describe(self) -> str:
        if self.ok and self.repairs:
            last = self.repairs[-1]
            lost = "; ".join(_lost_text(r) for r in self.repairs)
            return f"audit trail intact since the repair at {last['time']}: {lost}; {self.entries} entries, head {self.head[:12]}"
        if self.ok:
            return f"audit trail intact: {self.entries} entries, head {self.head[:12]}"
        b = self.first_broken or {}
        if b.get("index") is None:
            return f"audit trail not vouched for: {b.get('reason')}"
        where = f"seq {b.get('seq')}" if b.get("seq") is not None else "the end"
        return f"audit trail broken at {where} (entry {b.get('index', 0) + 1} of {self.entries}): {b.get('reason')}"


def _lost_text(repair: dict[str, Any]) -> str:
    lost = repair.get("events_lost")
    where = ", ".join(f"record {d.get('record')} of {d.get('file')}" for d in repair.get("dropped", []) if d.get("record"))
    count = "an unknown number of" if lost is None else str(lost)
    return f"{count} event(s) lost at {where or 'the repair'}"


def _declared_gaps(events: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The chain's gaps that a ``store.repaired`` event declares: (hash before, prev after) -> that event."""
    declared = {}
    for event in events:
        if isinstance(event, dict) and event.get("action") == REPAIRED and isinstance(event.get("after"), dict):
            for gap in event["after"].get("gaps", []):
                declared[(gap.get("after"), gap.get("resumes"))] = event
    return declared


def _label(event: dict[str, Any]) -> str:
    return f"seq {event.get('seq')} ({event.get('time')} {event.get('actor')} {event.get('action')} {event.get('target')})"


def verify_chain(events: Sequence[dict[str, Any]], expected_head: str | None = None) -> ChainReport:
    """Check that each entry's hash covers its content and chains the hash of the one before.

    Finds, and names the first of: an edited entry (its content no longer gives
    its hash), a deleted entry (an entry's ``prev`` is a hash no entry here has:
    something between it and the entry before is gone), reordered entries (an
    entry's ``prev`` is the hash of an entry found elsewhere in the list).

    A chain alone cannot show that its newest entries were cut off: what is left
    is still a valid chain.  Pass ``expected_head`` (the store keeps the newest
    hash as ``audit_head`` in its snapshot and journal) to catch that too.  Nor
    can it catch an attacker who rewrites an entry *and* re-hashes every entry
    after it *and* the head; keep exports, or the head, somewhere else for that.
    """
    events = list(events)
    by_hash: dict[str, int] = {}
    for i, event in enumerate(events):
        if isinstance(event, dict) and isinstance(event.get("hash"), str):
            by_hash.setdefault(event["hash"], i)

    def broken(i: int, kind: str, reason: str, seq: Any = None, head: str = GENESIS_HASH) -> ChainReport:
        return ChainReport(False, len(events), {"seq": seq, "index": i, "kind": kind, "reason": reason}, head, expected_head)

    declared = _declared_gaps(events)
    prev = GENESIS_HASH
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("hash"), str) or not isinstance(event.get("prev"), str):
            seq = event.get("seq") if isinstance(event, dict) else None
            return broken(i, "edited", f"entry {i + 1} has no hash or prev: it is not an entry the store wrote", seq, prev)
        seq = event.get("seq")
        if audit_hash(event["prev"], event) != event["hash"]:
            return broken(i, "edited", f"{_label(event)} was edited: its content does not match its hash", seq, prev)
        if event["prev"] != prev and declared.get((prev, event["prev"]), {}).get("seq", -1) >= seq:
            pass  # a gap a later repair declared: the records it dropped are named in its event
        elif event["prev"] != prev:
            before = "the start of the trail" if i == 0 else _label(events[i - 1])
            following = events[i + 1] if i + 1 < len(events) and isinstance(events[i + 1], dict) else None
            if following is not None and following.get("prev") == prev and event["prev"] not in by_hash:
                return broken(i, "inserted", f"{_label(event)} was inserted: the entry after it follows {before}", seq, prev)
            if i >= 2 and event["prev"] == events[i - 2].get("hash") and events[i - 1].get("prev") == events[i - 2].get("hash"):
                return broken(
                    i - 1,
                    "inserted",
                    f"{_label(events[i - 1])} was inserted: {_label(event)} follows {_label(events[i - 2])}",
                    events[i - 1].get("seq"),
                    prev,
                )
            found = by_hash.get(event["prev"])
            if found is not None and found != i - 1:
                kind = "reordered"
                reason = (
                    f"{_label(event)} is out of order: it should follow {_label(events[found])}, "
                    f"which is entry {found + 1}, but follows {before}"
                )
            else:
                kind = "deleted"
                reason = f"an entry is missing between {before} and {_label(event)}: it was deleted"
            return broken(i, kind, reason, seq, prev)
        prev = event["hash"]
    if expected_head is not None and prev != expected_head:
        last = events[-1] if events else None
        found = by_hash.get(expected_head)
        if found is None:
            after = _label(last) if last else "the start of the trail"
            return broken(
                len(events),
                "truncated",
                f"the trail ends at {after} but the store's newest entry is {expected_head[:12]}: entries after it were cut off",
                None,
                prev,
            )
        return broken(
            found + 1,
            "extra",
            f"entries after {_label(events[found])} are not vouched for by the store's head: added outside the store",
            events[found + 1].get("seq") if found + 1 < len(events) else None,
            prev,
        )
    repairs = [{"time": e.get("time"), **e["after"]} for e in events if e.get("action") == REPAIRED and isinstance(e.get("after"), dict)]
    return ChainReport(True, len(events), None, prev, expected_head, repairs)


def vouch_for(report: ChainReport, events: Sequence[dict[str, Any]], head: str) -> ChainReport:
    """``report`` (of an intact chain) checked against a head kept elsewhere: the trail must still
    hold the event with that hash (a prefix of 12 or more hex digits will do)."""
    head = head.strip().lower()
    matches = [i for i, e in enumerate(events) if str(e.get("hash", "")).startswith(head)] if len(head) >= 12 else []
    if len(matches) == 1:
        return report
    reason = (
        f"the head {head[:12]} kept elsewhere is not in the trail: events up to it were changed, removed or re-chained since it was taken"
        if not matches
        else f"the head {head} matches {len(matches)} events: give more of it"
    )
    return ChainReport(
        False, report.entries, {"seq": None, "index": None, "kind": "head-not-found", "reason": reason}, report.head, report.expected_head
    )
