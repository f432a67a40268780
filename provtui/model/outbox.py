"""Pending downstream work: the dirty keys the engine reconciles.

A key is ``app|user`` for an account or ``app|group:id`` for a pushed group.
Each marking gets a fresh token, so a worker that finishes a key can tell
whether it was marked again while it worked (then it stays queued).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from provtui.clock import utc_now_iso
from provtui.model.schema import DIRTY


class Queueing(Protocol):
    """What queueing asks of a change: a store transaction (provtui.store.StoreTransaction), or the service's Change over one."""

    @property
    def correlation(self) -> str | None: ...
    def get(self, table: str, key: str) -> dict[str, Any] | None: ...
    def put(self, table: str, key: str, doc: dict[str, Any]) -> None: ...


def queue(tx: Queueing, key: str, fields: dict[str, Any]) -> None:
    previous = tx.get(DIRTY, key)
    # A lease survives re-marking: its holder may have a call in flight (or have died after sending one),
    # so no one else may start on the key, and whoever takes it over after a crash must look up first.
    lease = {"lease": previous["lease"]} if previous and previous.get("lease") else {}
    tx.put(
        DIRTY,
        key,
        {
            **fields,
            **lease,
            "token": uuid.uuid4().hex[:12],
            "correlation": tx.correlation,
            "since": previous["since"] if previous else utc_now_iso(),
        },
    )
