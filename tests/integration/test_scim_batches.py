"""The SCIM endpoint's group commit (provtui/server/scim/batch.py): calls arriving together run in one turn of the
server's lock, each with its own outcome, after its own check: on the event loop when the lock is free, else by
the one thread that waits for it (the loop never blocks on the lock)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from provtui.domain.errors import InvalidInput
from provtui.server.hub import ServiceHub
from provtui.server.scim.batch import Batches
from provtui.service import Service


@pytest.fixture
def batches(tmp_path):
    service = Service.init(tmp_path / "store")
    return Batches(ServiceHub(service)), service.actor


def test_calls_together_keep_their_own_results_errors_and_checks(batches):
    runs, actor = batches
    served_by: set[int] = set()

    def create(n: int):
        def fn(service):
            served_by.add(threading.get_ident())
            return service.create_user(f"b{n}", f"b{n}@example.com", "B", str(n))["login"]

        return fn

    def refuse():
        raise PermissionError("checked and refused")

    async def push():
        calls = [runs.run(actor, "create", create(n)) for n in range(20)]
        calls.append(runs.run(actor, "create", create(3)))  # taken: its own error
        calls.append(runs.run(actor, "create", create(99), refuse))  # its check refuses: never run
        return await asyncio.gather(*calls, return_exceptions=True)

    first = asyncio.run(push())
    assert first[:20] == [f"b{n}" for n in range(20)]
    assert isinstance(first[20], InvalidInput)
    assert isinstance(first[21], PermissionError)
    assert served_by == {threading.get_ident()}  # the lock was free: on the event loop
    served_by.clear()
    runs.hub.lock.acquire()  # (an admin's call, say, holds it)
    threading.Timer(0.3, runs.hub.lock.release).start()
    second = asyncio.run(push())  # (another event loop: its answers reach it)
    assert all(isinstance(outcome, Exception) for outcome in second[:21]) and isinstance(second[21], PermissionError)
    assert len(served_by) == 1 and threading.get_ident() not in served_by  # the thread that waited for the lock
    logins = {u["login"] for u in runs.hub.root.list_users("", limit=None)[1]}
    assert {f"b{n}" for n in range(20)} <= logins and "b99" not in logins
