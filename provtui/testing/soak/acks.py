"""The acknowledgement log: what a writer was told succeeded, fsync'd after each change, and reading it back."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path


class AckLog:
    """Append-only JSON lines, fsync'd after each: "start" per incarnation, "intent" before a change, then "ack" or "refused"."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the writer's life

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def read_acknowledged(path: Path) -> tuple[list[dict], Counter, int]:
    """The acknowledged changes in a writer's log, for invariants.check_acknowledged; with the counts by
    operation and how many were refused.

    A change is the last word on its key unless a later one to the same key was acknowledged, or was
    started by an incarnation that was killed before hearing the answer (then it may have happened).
    """
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else ():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the torn last line of a killed writer
            continue
    acked: list[dict] = []
    last: dict[str, int] = {}  # key -> index in acked of its latest acknowledgement
    pending: dict[int, dict] = {}
    refused = 0

    def unresolved_in_flight() -> None:
        for intent in pending.values():  # the answer never came: the change may or may not have happened
            if intent["key"] in last:
                acked[last.pop(intent["key"])]["holds"] = None
        pending.clear()

    for record in records:
        if record["kind"] == "start":
            unresolved_in_flight()
        elif record["kind"] == "intent":
            pending[record["n"]] = record
        elif record["kind"] == "refused":
            pending.pop(record["n"], None)
            refused += 1
        elif record["kind"] == "ack":
            intent = pending.pop(record["n"])
            if intent["key"] in last:
                acked[last[intent["key"]]]["holds"] = None  # superseded by this one
            last[intent["key"]] = len(acked)
            acked.append({"op": intent["op"], "audit": intent["audit"], "holds": intent["holds"]})
    unresolved_in_flight()
    return acked, Counter(c["op"] for c in acked), refused
