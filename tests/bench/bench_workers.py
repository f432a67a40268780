"""Benchmark: several `provtui worker` processes on one PostgreSQL store against two SCIM apps (#19), beside a
bare httpx client sending the same creates at the same total concurrency.

    python tests/bench/bench_workers.py [--users 1000] [--workers 2] [--concurrency 4] [--repeat 3] [--json]

Each run starts two fresh scim2-server processes (apps A and B) per side, so no side pays for users another
stored.

- ``bare``: one process, a bare ``httpx.AsyncClient`` per server POSTing the ``--users`` create payloads to each
  (tests/bench/bench_provision.py's client: provtui's own bytes, headers and connection limits), at
  ``workers x concurrency`` per server: the total concurrency the workers have, since an app's
  ``concurrency`` limits each worker process on its own.
- ``provtui``: a PostgreSQL database (copied from a template holding the users, all in one group, and the two
  apps, each with ``concurrency``); ``--workers`` `provtui worker` processes are started and wait (each
  LISTENs for commits); the clock starts at the commit assigning both apps to the group (its planning and
  queueing count; two commits, one an app) and stops when the database holds every account active with a remote id.

Checked after every run: each server holds exactly ``--users`` users; on provtui's side every account has its
own remote id and the queue is empty.  The table shows the median run of each side, the sides interleaved;
the target is provtui >= 0.8 of the bare client's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_provision import FIRST, LAST, TOKEN, TOKEN_ENV, bare_client, payloads, server_users  # noqa: E402

from provtui.model.schema import USERS  # noqa: E402
from provtui.service import Service, current_os_user  # noqa: E402
from provtui.testing.postgres import PostgresProcess  # noqa: E402
from provtui.testing.scim_server import ScimServerProcess  # noqa: E402

ACTOR = "bench"
GROUP = "everyone"
APPS = ("App A", "App B")
TEMPLATE = "bench_template"
TARGET = 0.8
ACCOUNTS_DONE = """
    SELECT count(*) FROM docs
    WHERE tbl = 'accounts' AND (doc->>'active')::boolean AND coalesce(doc->>'remote_id', '') <> ''
"""


def build_template(postgres: PostgresProcess, count: int) -> list[tuple[str, dict]]:
    """The template database: ``count`` active users in one group, the two apps (pointing nowhere yet)."""
    service = Service.init(postgres.create_database(TEMPLATE), actor=ACTOR)
    service.grant(current_os_user(), "super-admin")  # the workers run as this OS user: provisioning needs a role
    logins = []
    for n in range(count):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        login = f"{first}.{last}.{n}".lower()
        service.create_user(login, f"{login}@example.com", first, last, {}, activate=True)
        logins.append(login)
    service.create_group(GROUP)
    for i in range(0, count, 100):
        service.add_members(GROUP, logins[i : i + 100])
    users = service.store.all(USERS)
    result = [(uid, users[uid]["profile"]) for uid in sorted(users, key=lambda u: users[u]["login"])]
    service.store.close()
    return result


def start_worker(url: str) -> subprocess.Popen:
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "provtui", "worker", "--store", url], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_listening(postgres: PostgresProcess, dbname: str, workers: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """Until ``count`` sessions on the database LISTEN for commits: the workers are open and idle."""
    deadline = time.monotonic() + timeout
    with postgres.connect() as conn:
        while time.monotonic() < deadline:
            for worker in workers:
                if worker.poll() is not None:
                    raise RuntimeError(f"a worker exited: {worker.stderr.read().decode() if worker.stderr else ''}")
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query ILIKE 'LISTEN%%'", (dbname,)).fetchone()
            if row and row[0] >= len(workers):
                return
            time.sleep(0.05)
    raise RuntimeError(f"the workers did not start within {timeout} s")


def provtui_side(postgres: PostgresProcess, run: int, args: argparse.Namespace) -> dict:
    dbname = f"bench_run_{run}"
    with postgres.connect() as conn:
        conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{TEMPLATE}"')
    url = postgres.url(dbname)
    with ScimServerProcess(TOKEN) as a, ScimServerProcess(TOKEN) as b:
        service = Service.open(url, actor=ACTOR)
        for name, server in zip(APPS, (a, b), strict=True):
            service.create_app(name, scim_url=server.url, token_env=TOKEN_ENV, concurrency=args.concurrency)
        workers = [start_worker(url) for _ in range(args.workers)]
        try:
            wait_listening(postgres, dbname, workers)
            expected = 2 * args.users
            with postgres.connect(dbname) as conn:
                started = time.perf_counter()
                for name in APPS:  # two commits: the workers start on A while B is being assigned
                    service.assign(name, group=GROUP)
                deadline = started + 600
                while (done := conn.execute(ACCOUNTS_DONE).fetchone()[0]) < expected and time.perf_counter() < deadline:
                    time.sleep(0.01)
                seconds = time.perf_counter() - started
                remote_ids = conn.execute("SELECT count(DISTINCT doc->>'remote_id') FROM docs WHERE tbl = 'accounts'").fetchone()[0]
                queued = conn.execute("SELECT count(*) FROM docs WHERE tbl = 'dirty'").fetchone()[0]
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=60)
        service.store.close()
        stored = (server_users(a), server_users(b))
    postgres.drop_database(dbname)
    return {
        "seconds": seconds,
        "rate": done / seconds,
        "done": done,
        "verified": done == expected and remote_ids == expected and queued == 0 and stored == (args.users, args.users),
        "server_users": stored,
    }


def bare_side(bodies: list[tuple[str, bytes]], args: argparse.Namespace) -> dict:
    concurrency = args.workers * args.concurrency
    with ScimServerProcess(TOKEN) as a, ScimServerProcess(TOKEN) as b:

        async def both() -> list[int]:
            results = await asyncio.gather(*(bare_client(server, bodies, concurrency, lookup=False) for server in (a, b)))
            return [done for done, _ in results]

        started = time.perf_counter()
        done = sum(asyncio.run(both()))
        seconds = time.perf_counter() - started
        stored = (server_users(a), server_users(b))
    return {
        "seconds": seconds,
        "rate": done / seconds,
        "done": done,
        "verified": done == 2 * args.users and stored == (args.users, args.users),
        "server_users": stored,
    }


def median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["rate"])
    return {**ordered[len(ordered) // 2], "rates": [round(r["rate"], 1) for r in runs], "verified": all(r["verified"] for r in runs)}


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    with PostgresProcess() as postgres:
        t = time.perf_counter()
        users = build_template(postgres, args.users)
        built = time.perf_counter() - t
        bodies = payloads(users)
        sides: dict[str, list[dict]] = {"bare": [], "provtui": []}
        for n in range(args.repeat):
            sides["bare"].append(bare_side(bodies, args))
            sides["provtui"].append(provtui_side(postgres, n, args))
    bare, ours = median_run(sides["bare"]), median_run(sides["provtui"])
    return {
        "users": args.users,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "build_s": round(built, 1),
        "bare": bare,
        "provtui": ours,
        "ratio": round(ours["rate"] / bare["rate"], 2) if bare["rate"] else 0.0,
        "bench_s": round(time.perf_counter() - started, 1),
    }


def report(r: dict) -> str:
    total = r["workers"] * r["concurrency"] * 2
    lines = [
        f"{r['workers']} workers on one PostgreSQL store, 2 SCIM apps x {r['users']:,} creates, total concurrency {total}"
        f" ({os.cpu_count()} cores, Python {platform.python_version()}; template built in {r['build_s']} s)",
        "",
        f"{'':34}{'creates/s':>10}{'seconds':>9}  runs (creates/s)            verified",
    ]
    for side, label in (("bare", "bare httpx, same creates"), ("provtui", f"provtui, {r['workers']} workers")):
        s = r[side]
        lines.append(f"{label:34}{s['rate']:>10.1f}{s['seconds']:>9.2f}  {', '.join(map(str, s['rates'])):28}{s['verified']}")
    lines.append(f"\nratio provtui / bare: {r['ratio']} (target >= {TARGET}); the bench took {r['bench_s']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000, help="creates per app")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="each app's concurrency (per worker process)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.users, args.workers, args.concurrency, args.repeat) < 1:
        parser.error("--users, --workers, --concurrency and --repeat: at least 1")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["bare"]["verified"] and result["provtui"]["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
