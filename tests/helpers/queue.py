"""The provisioning queue in tests."""

from __future__ import annotations

from provtui.model.schema import DIRTY
from provtui.store.contract import StoreBackend


def empty_the_queue(store: StoreBackend) -> None:
    """Drop every queued key, committed (as if a sync had worked them all): on any backend, the other
    processes and the database see it too."""
    with store.transaction() as tx:
        for key in list(store.all(DIRTY)):
            tx.delete(DIRTY, key)
