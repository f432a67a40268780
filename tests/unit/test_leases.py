"""Claiming queued keys (provtui.engine.leases): a batch takes the apps in turn, each app's keys oldest first,
and never a key another live process holds."""

from __future__ import annotations

from datetime import timedelta

from provtui.clock import utc_now
from provtui.engine import leases
from provtui.engine.leases import Leases
from provtui.model.schema import APPS, DIRTY
from provtui.store.memory_store import MemoryStore


def new_store() -> MemoryStore:
    store = MemoryStore()
    store.add_index(DIRTY, "app")  # as the read model declares it (provtui.model.schema.INDEXES)
    return store


def queue(store: MemoryStore, app: str, count: int, **extra) -> list[str]:
    keys = [f"{app}|u{n:03d}" for n in range(count)]
    with store.transaction() as tx:
        tx.put(APPS, app, {"id": app, "name": app})
        for key in keys:
            tx.put(DIRTY, key, {"app": app, "user": key.split("|")[1], **extra})
    return keys


def claimed_keys(store: MemoryStore, leases_: Leases | None = None) -> list[str]:
    return [item["key"] for item in (leases_ or Leases(store)).claim(lambda key, doc: True)]


def test_a_batch_takes_the_apps_in_turn_each_oldest_first(monkeypatch):
    monkeypatch.setattr(leases, "CLAIM_BATCH", 6)
    store = new_store()
    a = queue(store, "a", 10)  # all of a's keys were queued before any of b's
    b = queue(store, "b", 2)
    assert claimed_keys(store) == [a[0], b[0], a[1], b[1], a[2], a[3]]


def test_a_second_claimer_takes_what_the_first_left_and_nothing_it_holds(monkeypatch):
    monkeypatch.setattr(leases, "CLAIM_BATCH", 4)
    store = new_store()
    a, b = queue(store, "a", 5), queue(store, "b", 5)
    first = claimed_keys(store)
    second = claimed_keys(store)
    assert first == [a[0], b[0], a[1], b[1]]
    assert second == [a[2], b[2], a[3], b[3]]
    assert not set(first) & set(second)


def test_keys_not_due_or_not_wanted_are_left_and_a_full_app_does_not_starve_the_others(monkeypatch):
    monkeypatch.setattr(leases, "CLAIM_BATCH", 3)
    store = new_store()
    later = (utc_now() + timedelta(hours=1)).isoformat()
    queue(store, "a", 3, not_before=later)  # a's keys are deferred: none is due
    b = queue(store, "b", 4)
    c = queue(store, "c", 1)
    got = Leases(store).claim(lambda key, doc: not key.startswith("c|"))  # c is paused, say
    assert [item["key"] for item in got] == b[:3]
    assert c[0] not in {item["key"] for item in got}
    assert all(store.get(DIRTY, key)["lease"]["owner"] for key in b[:3])
