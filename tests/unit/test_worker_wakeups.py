"""When an idle worker looks again (#19): at the earliest deferred retry, at another host's lease expiry, and
within seconds for a lease held by a process on this host (it is free the moment that process dies)."""

from __future__ import annotations

import socket
from datetime import timedelta

from provtui.clock import utc_now
from provtui.engine.worker import LOCAL_LEASE_SECONDS, SWEEP_SECONDS, _next_due
from provtui.model.schema import DIRTY
from provtui.service import Service


def leased(service: Service, key: str, owner: str, minutes: float) -> None:
    until = (utc_now() + timedelta(minutes=minutes)).isoformat()
    with service.store.transaction() as tx:
        tx.put(DIRTY, key, {"app": "a", "user": key, "lease": {"owner": owner, "until": until}})


def test_an_idle_worker_looks_again_when_a_lease_may_be_taken_over(tmp_path):
    service = Service.init(tmp_path / "s", actor="admin")
    assert _next_due(service) is None  # nothing queued: the sweep
    leased(service, "far", "db-host-2:4242:ab12", minutes=1.5)
    assert 80 < _next_due(service) <= 90  # another host's worker: at its lease's expiry (it may be alive)
    leased(service, "near", f"{socket.gethostname()}:999999:cd34", minutes=10)
    assert _next_due(service) <= LOCAL_LEASE_SECONDS < SWEEP_SECONDS  # one of ours may have died: look soon
