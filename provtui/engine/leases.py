"""Leases on dirty keys: a console and a worker on one store never work on the same key at once.

A process claims a batch of keys with a lease in the store (LEASE_SECONDS), renews it at half-time while it works
on the batch, and releases each key as its result is written.  A lease whose holder is gone (its expiry past, or
its process dead on this host) may be taken over; the key is then *suspect*: its holder may have sent a create it
never heard back from.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from provtui.clock import parse_iso, utc_now
from provtui.model.schema import APPS, DIRTY
from provtui.store import Store

LEASE_SECONDS = 120
CLAIM_BATCH = 500

Wanted = Callable[[str, dict], bool]  # (key, dirty doc): whether this run would work on the key


def owner_alive(owner: str) -> bool:
    """Whether the process holding a lease may still be alive (True unless it is known dead on this host)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # can't tell: trust the lease's expiry
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Leases:
    """This process's leases on dirty keys."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self.held: set[str] = set()  # keys claimed and not yet flushed
        self._until = utc_now()

    def held_by_another(self, doc: dict, now: datetime) -> bool:
        lease = doc.get("lease")
        return bool(lease) and lease["owner"] != self.owner and parse_iso(lease["until"]) > now and owner_alive(lease["owner"])

    def ours(self, dirty: dict) -> bool:
        return (dirty.get("lease") or {}).get("owner") == self.owner

    def claim(self, wanted: Wanted) -> list[dict]:
        """Lease up to CLAIM_BATCH keys that are ``wanted``, due and not another's (one commit); each is returned
        with its key and whether it is suspect.  The batch takes the apps in turn, each app's keys oldest first:
        a batch of one app's keys would leave every other app's connections idle until it is done."""
        now = utc_now()
        until = (now + timedelta(seconds=LEASE_SECONDS)).isoformat()
        claimed = []
        with self.store.transaction() as tx:
            for key, doc in _in_turn(self._claimable(wanted, now)):
                # Someone else held it and never finished: they may have sent a create we never heard back.
                lease = doc.get("lease")
                suspect = bool(lease) and lease["owner"] != self.owner
                doc = {**doc, "lease": {"owner": self.owner, "until": until}}
                tx.put(DIRTY, key, doc)
                claimed.append({**doc, "key": key, "suspect": suspect})
        self.held = {item["key"] for item in claimed}
        self._until = now + timedelta(seconds=LEASE_SECONDS)
        return claimed

    def _claimable(self, wanted: Wanted, now: datetime) -> dict[str, list[tuple[str, dict]]]:
        """App id -> up to CLAIM_BATCH of its keys this claim may take, oldest first.  Stops reading the queue
        once every app with queued keys has that many."""
        queued = {app for app in self.store.all(APPS) if self.store.lookup(DIRTY, "app", app)}
        found: dict[str, list[tuple[str, dict]]] = {}
        full = 0
        for key, doc in self.store.all(DIRTY).items():
            if not wanted(key, doc) or (doc.get("not_before") and parse_iso(doc["not_before"]) > now):
                continue
            if self.held_by_another(doc, now):
                continue
            app = doc.get("app", "")
            bucket = found.setdefault(app, [])
            if len(bucket) < CLAIM_BATCH:
                bucket.append((key, doc))
                if len(bucket) == CLAIM_BATCH and app in queued:
                    full += 1
                    if full == len(queued):
                        break
        return found

    def later(self, wanted: Wanted, now: datetime) -> list[tuple[str, dict]]:
        """Deferred keys (not_before set) that are ``wanted`` and not another's: claimable once due."""
        return [
            (key, doc)
            for key, doc in self.store.all(DIRTY).items()
            if doc.get("not_before") and wanted(key, doc) and not self.held_by_another(doc, now)
        ]

    def release(self, key: str) -> None:
        self.held.discard(key)

    def renew(self, tx) -> None:
        """Extend our leases at half-time, so a long batch is never taken over while we work on it."""
        now = utc_now()
        if not self.held or now < self._until - timedelta(seconds=LEASE_SECONDS / 2):
            return
        self._until = now + timedelta(seconds=LEASE_SECONDS)
        until = self._until.isoformat()
        for key in self.held:
            dirty = tx.get(DIRTY, key)
            if dirty is not None and self.ours(dirty):
                tx.put(DIRTY, key, {**dirty, "lease": {"owner": self.owner, "until": until}})


def _in_turn(buckets: dict[str, list[tuple[str, dict]]]) -> list[tuple[str, dict]]:
    """Up to CLAIM_BATCH keys, one of each app in turn (apps by id, so every claimer takes them alike)."""
    taken: list[tuple[str, dict]] = []
    for row in itertools.zip_longest(*(buckets[app] for app in sorted(buckets))):
        for item in row:
            if item is not None:
                taken.append(item)
                if len(taken) == CLAIM_BATCH:
                    return taken
    return taken
