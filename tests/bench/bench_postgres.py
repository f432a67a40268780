"""Benchmark: the PostgreSQL store against the embedded one on the same directory (#19), each beside its floor.

    python tests/bench/bench_postgres.py [--users 50000] [--commits 200] [--opens 3] [--json]

One throwaway PostgreSQL (provtui/testing/postgres.py: a Unix socket, fsync off, as the tests run it) and
one store directory, both filled with tests/helpers/console.py's big_service (``--users`` users). Then:

- cold open: a fresh process runs ``Service.open`` and its first page of users, median of ``--opens``, with
  its peak RSS;
- one committed change: ``update_user`` p50/p95, against the floor of each backend in the same run: for the
  directory a bare ``write`` + ``fsync`` of 2 KB, for PostgreSQL a bare one-row ``INSERT`` and ``COMMIT`` over
  the same socket;
- a search's first page (``list_users(needle, limit=200)``) p50/p95 over needles from every user to none.

Ratios are PostgreSQL / embedded.  The embedded store loads the directory at open; on PostgreSQL the process
opens as a console does, reading people, memberships, accounts and the queue by query (provtui.store.queried).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from provtui.service import Service  # noqa: E402
from provtui.testing.postgres import PostgresProcess  # noqa: E402
from tests.bench.bench_console import ms, p95  # noqa: E402
from tests.helpers.console import big_service  # noqa: E402

NEEDLES = ("u", "user0", "user0049", "first499", "last4999", "nobody")
OPEN = """
import json, resource, sys, time
started = time.perf_counter()
from provtui.service import Service
service = Service.open(sys.argv[1], actor="admin")
service.list_users("", limit=200)
print(json.dumps({"open_s": time.perf_counter() - started, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cold_open(location: str, runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = [
        json.loads(subprocess.run([sys.executable, "-c", OPEN, location], capture_output=True, text=True, check=True, env=env).stdout)
        for _ in range(runs)
    ]
    return {"open_s": round(statistics.median(r["open_s"] for r in results), 3), "rss_mb": round(max(r["rss_mb"] for r in results), 1)}


def commits(service: Service, count: int) -> list[float]:
    times = []
    for n in range(count):
        started = time.perf_counter()
        service.update_user(f"user{n % 100:06d}", {"title": f"Title {n}"})
        times.append(time.perf_counter() - started)
    return times


def fsync_floor(directory: Path, count: int) -> list[float]:
    path, line, times = directory / "floor.bin", b"x" * 2047 + b"\n", []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, line)
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    return times


def insert_floor(postgres: PostgresProcess, dbname: str, count: int) -> list[float]:
    times = []
    with postgres.connect(dbname) as conn:
        conn.execute("CREATE TABLE floor (n int, body text)")
        for n in range(count):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute("INSERT INTO floor VALUES (%s, %s)", (n, "x" * 2047))
            times.append(time.perf_counter() - started)
    return times


def searches(service: Service) -> list[float]:
    times = []
    for _ in range(3):
        for needle in NEEDLES:
            started = time.perf_counter()
            service.list_users(needle, limit=200)
            times.append(time.perf_counter() - started)
    return times


def figures(samples: list[float]) -> dict:
    return {"p50_ms": ms(statistics.median(samples)), "p95_ms": ms(p95(samples))}


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="provtui-bench-pg-"))
    with PostgresProcess() as postgres:
        url = postgres.create_database("bench")
        built = {}
        for side, location in (("embedded", str(work / "store")), ("postgres", url)):
            t = time.perf_counter()
            big_service(location if side == "postgres" else Path(location), args.users)  # type: ignore[arg-type]
            built[side] = round(time.perf_counter() - t, 2)
        locations = {"embedded": str(work / "store"), "postgres": url}
        opened = {side: cold_open(location, args.opens) for side, location in locations.items()}
        services = {side: Service.open(location, actor="admin") for side, location in locations.items()}
        committed = {side: figures(commits(service, args.commits)) for side, service in services.items()}
        floors = {"embedded": figures(fsync_floor(work, args.commits)), "postgres": figures(insert_floor(postgres, "bench", args.commits))}
        searched = {side: figures(searches(service)) for side, service in services.items()}
    return {
        "users": args.users,
        "build_s": built,
        "open": opened,
        "commit": committed,
        "commit_floor": floors,
        "search_page": searched,
        "bench_s": round(time.perf_counter() - started, 1),
    }


def report(result: dict) -> str:
    o, c, f, s = result["open"], result["commit"], result["commit_floor"], result["search_page"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "—"

    rows = [
        f"PostgreSQL store vs embedded, {result['users']:,} users (built in {result['build_s']['postgres']} s / {result['build_s']['embedded']} s)",
        "",
        f"{'':44}{'postgres':>12}{'embedded':>12}{'ratio':>9}",
        f"{'cold open + first page (s)':44}{o['postgres']['open_s']:>12}{o['embedded']['open_s']:>12}{ratio(o['postgres']['open_s'], o['embedded']['open_s']):>9}",
        f"{'peak RSS of that process (MB)':44}{o['postgres']['rss_mb']:>12}{o['embedded']['rss_mb']:>12}",
    ]
    for q in ("p50_ms", "p95_ms"):
        rows.append(
            f"{'one commit ' + q[:3] + ' (ms)':44}{c['postgres'][q]:>12}{c['embedded'][q]:>12}{ratio(c['postgres'][q], c['embedded'][q]):>9}"
        )
        rows.append(f"{'  its floor ' + q[:3] + ' (ms): INSERT+COMMIT / fsync':44}{f['postgres'][q]:>12}{f['embedded'][q]:>12}")
    for q in ("p50_ms", "p95_ms"):
        rows.append(
            f"{'search, a page of 200 ' + q[:3] + ' (ms)':44}{s['postgres'][q]:>12}{s['embedded'][q]:>12}{ratio(s['postgres'][q], s['embedded'][q]):>9}"
        )
    rows.append(f"\nThe bench took {result['bench_s']:.0f} s.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--opens", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.users < 100 or min(args.commits, args.opens) < 1:
        parser.error("--users: at least 100; --commits, --opens: at least 1")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
