"""Two `provtui worker` processes on one PostgreSQL store share the work (#19): their claims are leases
written in the store's transactions, which take turns on the head row whatever the host, so no account is
worked on by two at once; one SIGKILLed mid-run loses nothing (the other, or the next sync, takes its keys
over, looking up before creating what it may have sent).  0 duplicates, 0 lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from tests.integration.test_faults import assert_provisioned_once, fault_server, hire, make_org, server, sync_env, wait_idle  # noqa: F401  (the fault server's fixtures)

USERS = 60


def worker(url: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "provtui", "worker", "--store", url], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def test_two_workers_share_the_work_and_one_killed_loses_nothing(pg_url, server, monkeypatch):  # noqa: F811
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    env = sync_env(server)
    monkeypatch.setenv("PROVTUI_TEST_FAULT_TOKEN", server.token)
    org = make_org(pg_url, server)
    server.set_faults(slow={"delay_ms": 40})  # the run lasts seconds: the kill lands mid-way
    logins = hire(org, USERS)
    workers = [worker(pg_url, env), worker(pg_url, env)]
    victim = rng.choice(workers)
    deadline = time.monotonic() + 60
    while server.stats()["creates_committed"] < rng.randrange(5, USERS // 2) and time.monotonic() < deadline:
        time.sleep(0.02)
    in_flight = server.stats()["in_flight"]  # sent by the victim or not, these may be sent again: then 409 and linked
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    survivor = next(w for w in workers if w is not victim)
    while server.stats()["creates_committed"] < USERS and time.monotonic() < deadline:
        time.sleep(0.05)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0, survivor.stderr.read() if survivor.stderr else ""
    server.clear_faults()
    done = subprocess.run(
        [sys.executable, "-m", "provtui", "sync", "--store", pg_url], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (seed, done.stdout, done.stderr)
    stats = wait_idle(server)
    org.refresh()  # the workers' commits, made in other processes
    assert_provisioned_once(org, server, logins)  # every one there, none twice (seed in the message if not)
    # one create each, but for what was in flight at the kill (answered 409, then linked): no key worked twice at once
    assert USERS <= stats["requests"].get("POST /Users", 0) <= USERS + in_flight, (seed, in_flight, stats["requests"])
