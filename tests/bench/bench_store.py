"""Benchmark: provtui's store against stock TinyDB (JSONStorage), on the same users.

    python tests/bench/bench_store.py [--sizes 5000,50000] [--commits 200] [--quick] [--json]

For each size it builds a provtui store (users shaped as ``Service.create_user``
writes them, one audit event each, written in batched transactions, then
compacted) and a stock TinyDB file holding the same user documents
(``insert_multiple``: inserting one at a time is quadratic, ~157 s at 5,000), and
measures:

- cold open: a fresh Python process opens the store and runs its first search
  (``Service.open`` + ``list_users("smith")`` / ``TinyDB(path)`` + ``search``);
  imports are excluded, the files are in the OS page cache;
- one committed change: ``service.update_user`` vs ``table.update(..., doc_ids=[id])``
  (both fsync before returning), median and p95 over ``--commits`` calls; stock
  TinyDB only at sizes up to ``--stock-commit-max`` (each of its writes rewrites
  the whole file);
- one created user: ``service.create_user`` vs ``table.insert`` (median);
- a search: ``list_users("smith")`` vs ``table.search`` with the same substring
  match (its query cache cleared first, as any write would), median.

Ratios are stock / provtui: above 1 means provtui is faster.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tinydb import Query, TinyDB  # noqa: E402

from provtui.clock import utc_now_iso  # noqa: E402
from provtui.domain.users import search_text, validate_profile  # noqa: E402
from provtui.model.schema import USERS
from provtui.service import Service  # noqa: E402

ACTOR = "bench"
NEEDLE = "smith"
FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
)
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Associate", "Specialist")


def make_user(n: int, now: str) -> dict:
    """A user document as Service.create_user writes it (with a few extra profile attributes)."""
    first, last = FIRST[n % len(FIRST)], LAST[(n * 7 + n // len(FIRST)) % len(LAST)]
    login = f"{first}.{last}{n}".lower()
    profile = validate_profile(
        {
            "login": login,
            "email": f"{login}@example.com",
            "firstName": first,
            "lastName": last,
            "department": DEPARTMENTS[n % len(DEPARTMENTS)],
            "title": TITLES[n % len(TITLES)],
            "employeeNumber": f"E{n:07d}",
            "costCenter": f"CC-{n % 97:03d}",
        }
    )
    uid = f"u{n:011d}"
    return {"id": uid, "login": login, "state": "active", "source": "provtui", "profile": profile, "created": now, "state_changed": now}


def users(count: int) -> list[dict]:
    now = utc_now_iso()
    return [make_user(n, now) for n in range(count)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def p95(samples: list[float]) -> float:
    return sorted(samples)[max(0, int(len(samples) * 0.95 + 0.5) - 1)]


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


# -- building ----------------------------------------------------------------------------


def build_provtui(path: Path, docs: list[dict], batch: int = 5000) -> float:
    t = time.perf_counter()
    service = Service.init(path, actor=ACTOR)
    it = iter(docs)
    while chunk := list(itertools.islice(it, batch)):
        with service.store.transaction() as tx:
            for doc in chunk:
                tx.put(USERS, doc["id"], doc)
                tx.audit(
                    {
                        "actor": ACTOR,
                        "action": "user.create",
                        "target": doc["login"],
                        "before": None,
                        "after": {"state": doc["state"], "profile": doc["profile"]},
                    }
                )
    service.store.compact()
    return time.perf_counter() - t


def build_stock(path: Path, docs: list[dict]) -> float:
    t = time.perf_counter()
    db = TinyDB(path)
    db.table("users").insert_multiple(docs)
    db.close()
    return time.perf_counter() - t


# -- cold open, in a fresh process -------------------------------------------------------

COLD_PROVTUI = """
import sys, time, json
from provtui.service import Service
t = time.perf_counter()
service = Service.open(sys.argv[1], actor="bench")
opened = time.perf_counter()
total, _ = service.list_users(sys.argv[2])
done = time.perf_counter()
print(json.dumps({"open": opened - t, "ready": done - t, "matches": total}))
"""

COLD_STOCK = """
import sys, time, json
from tinydb import TinyDB, Query
from provtui.domain.users import search_text
t = time.perf_counter()
db = TinyDB(sys.argv[1])
table = db.table("users")
opened = time.perf_counter()
needle = sys.argv[2]
found = table.search(Query().profile.test(lambda p: needle in search_text(p)))
done = time.perf_counter()
print(json.dumps({"open": opened - t, "ready": done - t, "matches": len(found)}))
"""


def cold_open(code: str, path: Path, runs: int) -> tuple[float, int]:
    samples, matches = [], None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code, str(path), NEEDLE], capture_output=True, text=True, check=True, env=env)
        result = json.loads(out.stdout)
        samples.append(result["ready"])
        matches = result["matches"]
    return statistics.median(samples), matches


# -- one size ------------------------------------------------------------------------------


def bench_size(size: int, args: argparse.Namespace, workdir: Path) -> dict:
    docs = users(size)
    logins = [d["login"] for d in docs]
    store_path, stock_path = workdir / f"provtui-{size}", workdir / f"stock-{size}.json"
    r: dict = {"size": size}
    r["build_provtui_s"] = round(build_provtui(store_path, docs), 3)
    r["build_stock_s"] = round(build_stock(stock_path, docs), 3)
    r["snapshot_bytes"] = (store_path / "snapshot.json").stat().st_size
    r["stock_bytes"] = stock_path.stat().st_size
    del docs

    # Cold open + first search, fresh processes.
    seconds, m1 = cold_open(COLD_PROVTUI, store_path, args.opens)
    r["open_provtui_ms"] = ms(seconds)
    seconds, m2 = cold_open(COLD_STOCK, stock_path, args.opens)
    r["open_stock_ms"] = ms(seconds)
    assert m1 == m2, f"the two searches disagree: {m1} vs {m2}"
    r["matches"] = m1

    # Warm search.
    service = Service.open(store_path, actor=ACTOR)
    service.list_users(NEEDLE)  # builds the search cache, as the cold open did
    r["search_provtui_ms"] = ms(statistics.median(timed(lambda: service.list_users(NEEDLE), args.searches)))
    db = TinyDB(stock_path)
    table = db.table("users")
    query = Query().profile.test(lambda p: NEEDLE in search_text(p))

    def stock_search():
        table.clear_cache()  # any write clears it; a cached repeat would time nothing
        return table.search(query)

    r["search_stock_ms"] = ms(statistics.median(timed(stock_search, args.stock_searches)))

    # One committed change: update one user's title, on distinct users.
    picks = [logins[(i * 7919) % size] for i in range(args.commits)]
    it = iter(picks)
    samples = timed(lambda: service.update_user(next(it), {"title": f"Title {time.perf_counter_ns()}"}), args.commits)
    r["commit_provtui_p50_ms"], r["commit_provtui_p95_ms"] = ms(statistics.median(samples)), ms(p95(samples))
    n = 0

    def create():
        nonlocal n
        n += 1
        service.create_user(f"bench.new{n}", f"bench.new{n}@example.com", "Bench", "New")

    r["create_provtui_ms"] = ms(statistics.median(timed(create, args.creates)))

    if size <= args.stock_commit_max:
        ids = [(i * 7919) % size + 1 for i in range(args.commits)]  # TinyDB doc ids count from 1
        it2 = iter(ids)

        def stock_update():
            doc_id = next(it2)
            title = f"Title {time.perf_counter_ns()}"
            table.update(lambda doc: doc["profile"].__setitem__("title", title), doc_ids=[doc_id])

        samples = timed(stock_update, args.commits)
        r["commit_stock_p50_ms"], r["commit_stock_p95_ms"] = ms(statistics.median(samples)), ms(p95(samples))
        m = 0

        def stock_insert():
            nonlocal m
            m += 1
            table.insert(make_user(10_000_000 + m, utc_now_iso()))

        r["create_stock_ms"] = ms(statistics.median(timed(stock_insert, args.creates)))
    db.close()
    shutil.rmtree(store_path)
    stock_path.unlink()
    return r


# -- reporting -------------------------------------------------------------------------------

ROWS = (
    ("cold open + first search", "open_provtui_ms", "open_stock_ms"),
    ("search 'smith' (median)", "search_provtui_ms", "search_stock_ms"),
    ("commit: update_user p50", "commit_provtui_p50_ms", "commit_stock_p50_ms"),
    ("commit: update_user p95", "commit_provtui_p95_ms", "commit_stock_p95_ms"),
    ("commit: create_user p50", "create_provtui_ms", "create_stock_ms"),
)


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.2f} ms"


def table(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"provtui store vs stock TinyDB {__import__('tinydb').__version__} JSONStorage — "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {args.commits} commits, {args.creates} creates",
        "",
        f"{'metric':<28}{'users':>8}{'provtui':>14}{'stock':>14}{'stock/provtui':>16}",
        "-" * 80,
    ]
    for r in results:
        for label, mine, stock in ROWS:
            a, b = r.get(mine), r.get(stock)
            ratio = f"{b / a:,.1f}x" if a and b is not None else "—"
            lines.append(f"{label:<28}{r['size']:>8,}{fmt_ms(a):>14}{fmt_ms(b):>14}{ratio:>16}")
        lines.append(
            f"{'(build, file size)':<28}{r['size']:>8,}{r['build_provtui_s']:>12.2f} s{r['build_stock_s']:>12.2f} s"
            f"{'':>4}{r['snapshot_bytes'] / 1e6:.1f} MB / {r['stock_bytes'] / 1e6:.1f} MB"
        )
        lines.append("")
    lines.append(
        "stock/provtui ratio: above 1 means provtui is faster.  Stock commits are measured only up to "
        f"{args.stock_commit_max:,} users (each rewrites the whole file); provtui builds in batched transactions, "
        "stock with insert_multiple."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,50000", help="comma-separated user counts")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer samples")
    parser.add_argument("--commits", type=int, default=200, help="single committed changes timed per size")
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--stock-searches", type=int, default=5)
    parser.add_argument("--opens", type=int, default=5, help="cold-open processes per size (median)")
    parser.add_argument("--stock-commit-max", type=int, default=5000, help="largest size at which stock commits are timed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.quick:
        sizes = [min(s, q) for s, q in zip(sizes, (1000, 5000, 5000), strict=False)]
        args.commits, args.creates, args.searches, args.opens = min(args.commits, 50), min(args.creates, 10), 10, 1

    workdir = Path(tempfile.mkdtemp(prefix="provtui-bench-"))
    try:
        results = []
        for size in sizes:
            results.append(bench_size(size, args, workdir))
            if not args.json:
                print(f"… {size:,} users done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), "results": results}, indent=2))
    else:
        print(table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
