"""Benchmark: provtui at scale: 50,000 users, 500 groups, 50 apps, 50 rules.

    python tests/bench/bench_scale.py [--users 50000] [--groups 500] [--apps 50] [--rules 50] [--commits 200] [--json]

Builds one organisation: users (put in batched transactions, as bench_store.py does), groups
(``--rules`` of them rule-set, the rest each holding about 2/``--groups`` of the users), SCIM
apps pointing nowhere (nothing here calls them), active rules on department and title, and
assignments (each app to a run of static groups and to one rule group) so that most users are
entitled to several apps and every entitlement is queued work.  Then, each beside a baseline
measured in the same run on the same files or pairs:

- store open, cold: a fresh process runs ``Service.open`` (snapshot + journal, checksums,
  indexes, directory) vs. reading the same files and parsing them with orjson (each line past
  its checksum prefix, no checksum checked), nothing else;
- the snapshot's checks: decoding it as the store does (each line's checksum, the whole
  content's checksum and count, duplicate keys) vs. the same parse with no check at all;
- one committed change: ``service.update_user`` (authorise, validate, re-evaluate the rules,
  queue the apps, audit, fsync'd journal append) p50/p95 vs. a bare ``write`` + ``fsync`` of the
  same bytes to a file in the same directory;
- a full plan of what to reconcile: for every queued (user, app) key, the account the user
  should have (``Directory.desired``: entitlement paths, mappings, assignment values) and the
  difference from the known account (``plan_account``) vs. the same loop doing only the reads a
  plan cannot avoid (the user, the app and the known account from the in-memory tables):
  the ratio is the cost of deciding over the cost of looking; with ``--postgres``, the same organisation
  built on a throwaway PostgreSQL and planned there too (every table held, as a worker holds them);
- memory: peak RSS of the process that opened the store vs. that of the baseline process, and
  what tracemalloc counts as allocated by the open.

Ratios are provtui / baseline (how many times the bare work it costs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_store import DEPARTMENTS, TITLES, make_user, ms, p95

from provtui.clock import utc_now, utc_now_iso
from provtui.domain.plan import DeletionPolicy, KnownAccount, plan_account
from provtui.domain.rules import RuleState
from provtui.model.schema import ACCOUNTS, APPS, DIRTY, USERS
from provtui.service import Service

ACTOR = "bench"
BATCH = 5000
STATIC_PER_USER = 2  # static groups each user is in


def rule_expression(n: int) -> str:
    department, title = DEPARTMENTS[n % len(DEPARTMENTS)], TITLES[(n // len(DEPARTMENTS)) % len(TITLES)]
    if n < len(DEPARTMENTS) * len(TITLES):
        return f'user.department == "{department}" and user.title == "{title}"'
    return f'user.department == "{department}" and user.costCenter != "CC-{n % 97:03d}"'


def build(path: Path, args: argparse.Namespace) -> dict:
    """The organisation; returns how long each part took and how much work it queued."""
    timings = {}
    t = time.perf_counter()
    service = Service.init(path, actor=ACTOR)
    now = utc_now_iso()
    docs = [make_user(n, now) for n in range(args.users)]
    for start in range(0, len(docs), BATCH):
        with service.store.transaction() as tx:
            for doc in docs[start : start + BATCH]:
                tx.put(USERS, doc["id"], doc)
    timings["users_s"] = time.perf_counter() - t

    t = time.perf_counter()
    static = args.groups - args.rules
    for g in range(args.groups):
        service.create_group(f"group-{g:03d}" if g < static else f"rule-group-{g - static:03d}")
    members: dict[int, list[str]] = {}
    for n, doc in enumerate(docs):
        for k in range(STATIC_PER_USER):
            members.setdefault((n * (7 * k + 1) + k) % static, []).append(doc["login"])
    for g, logins in sorted(members.items()):
        service.add_members(f"group-{g:03d}", logins)
    rules = service.rules()
    for r in range(args.rules):
        rules.create(f"rule-{r:02d}", groups=[f"rule-group-{r:03d}"], expr=rule_expression(r), exclude=[])
        rules.change(f"rule-{r:02d}", state=RuleState.ACTIVE, confirm=True)
    timings["groups_and_rules_s"] = time.perf_counter() - t

    t = time.perf_counter()
    per_app = max(1, static // args.apps)
    for a in range(args.apps):
        service.create_app(f"app-{a:02d}", scim_url="http://127.0.0.1:9/v2", token_env="PROVTUI_BENCH_NOWHERE")
        for g in range(a * per_app, min(static, (a + 1) * per_app)):
            service.assign(f"app-{a:02d}", group=f"group-{g:03d}")
        if args.rules:
            service.assign(f"app-{a:02d}", group=f"rule-group-{a % args.rules:03d}")
    timings["apps_and_assignments_s"] = time.perf_counter() - t
    service.store.compact()
    entitled = len(service.store.all(DIRTY))
    return {"timings": timings, "queued": entitled, "per_user": entitled / max(1, args.users)}


def commits(path: Path, count: int) -> dict:
    """``count`` update_user commits, then the same bytes appended and fsync'd bare."""
    service = Service.open(path, actor=ACTOR)
    logins = [doc["login"] for doc in list(service.store.all(USERS).values())[:count]]
    journal = path / service.store._journal_name
    samples, appended = [], []
    for n, login in enumerate(logins):
        size = journal.stat().st_size
        t = time.perf_counter()
        service.update_user(login, {"title": TITLES[(n + 1) % len(TITLES)]})
        samples.append(time.perf_counter() - t)
        with open(journal, "rb") as f:
            f.seek(size)
            appended.append(f.read())
    bare = []
    target = path / "bench-bare-append"
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        for data in appended:
            t = time.perf_counter()
            os.write(fd, data)
            os.fsync(fd)
            bare.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        target.unlink()
    return {
        "commit_p50_ms": ms(statistics.median(samples)),
        "commit_p95_ms": ms(p95(samples)),
        "append_p50_ms": ms(statistics.median(bare)),
        "append_p95_ms": ms(p95(bare)),
        "commit_bytes": round(statistics.median(len(d) for d in appended)),
    }


PEAK_RSS = """
import resource
def peak_rss_kb():
    # VmHWM is this process's own peak; ru_maxrss would carry over the parent's from before the exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

OPEN_PROVTUI = (
    PEAK_RSS
    + """
import json, sys, time, tracemalloc
from provtui.service import Service
t = time.perf_counter()
service = Service.open(sys.argv[1], actor="bench")
took = time.perf_counter() - t
rss = peak_rss_kb()
del service
tracemalloc.start()
service = Service.open(sys.argv[1], actor="bench")
allocated = tracemalloc.get_traced_memory()[0]
print(json.dumps({"open": took, "rss_kb": rss, "allocated": allocated}))
"""
)

OPEN_BASELINE = (
    PEAK_RSS
    + """
import json, sys, time
from pathlib import Path
import orjson
t = time.perf_counter()
path = Path(sys.argv[1])
lines = (path / "snapshot.json").read_bytes().splitlines()
header, tables = orjson.loads(lines[0][9:]), {}
for line in lines[1:-1]:  # a few documents of one table a line (no checksum checked)
    table, docs = orjson.loads(line[9:])
    tables.setdefault(table, {}).update(docs)
records = [orjson.loads(line[9:]) for line in (path / header["journal"]).read_bytes().splitlines() if line.strip()]
took = time.perf_counter() - t
print(json.dumps({"open": took, "rss_kb": peak_rss_kb(), "records": len(records)}))
"""
)


def cold(code: str, path: Path, runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    results = [
        json.loads(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env).stdout)
        for _ in range(runs)
    ]
    return {**results[-1], "open": statistics.median(r["open"] for r in results)}


def plan(path: Path | str) -> dict:
    """Every queued key planned, vs. the same loop doing only the unavoidable reads (on PostgreSQL, with every
    table held, as a worker holds them: it plans every key)."""
    service = Service.open(path, actor=ACTOR)
    service.store.hold()
    store, directory = service.store, service.directory
    pairs = [(doc["app"], doc["user"], key) for key, doc in store.all(DIRTY).items() if "user" in doc]
    policies = {app_id: DeletionPolicy(app["settings"].get("delete_after_days")) for app_id, app in store.all(APPS).items()}
    now = utc_now()

    t = time.perf_counter()
    changes = 0
    for app_id, user_id, key in pairs:
        desired = directory.desired(app_id, user_id)
        if plan_account(desired, KnownAccount.from_doc(store.get(ACCOUNTS, key)), policies[app_id], now) is not None:
            changes += 1
    planned = time.perf_counter() - t

    t = time.perf_counter()
    found = 0
    for app_id, user_id, key in pairs:
        if store.get(USERS, user_id) is not None and store.get(APPS, app_id) is not None:
            found += store.get(ACCOUNTS, key) is None
    bare = time.perf_counter() - t
    return {
        "pairs": len(pairs),
        "changes": changes,
        "plan_s": round(planned, 3),
        "reads_s": round(bare, 4),
        "plan_us_per_pair": round(planned / max(1, len(pairs)) * 1e6, 2),
        "found": found,
    }


def rule_preview(path: Path) -> dict:
    """Previewing a rule edit that moves thousands of users, vs. only evaluating its new expression
    over everyone (what no preview can skip); and listing every rule with its member count."""
    import gc

    from provtui.domain.expressions import Population, compile_expression

    service = Service.open(path, actor=ACTOR)
    rules = service.rules()
    name = rules.list()[0]["name"]
    gc.collect()
    gc.disable()  # as timeit does: a collection of the 50,000-user heap landing in one side's timing is noise
    expr = f'user.department == "{DEPARTMENTS[1]}"'
    t = time.perf_counter()
    preview = rules.preview(name, expr=expr)
    previewed = time.perf_counter() - t
    t = time.perf_counter()
    users = list(service.store.all(USERS).values())
    compile_expression(expr).evaluate_all(Population([{"user": u["profile"]} for u in users]))
    evaluated = time.perf_counter() - t
    t = time.perf_counter()
    listed = len(rules.list())
    listing = time.perf_counter() - t
    gc.enable()
    return {
        "preview_s": round(previewed, 4),
        "evaluate_s": round(evaluated, 4),
        "preview_ratio": ratio(previewed, evaluated),
        "preview_moves": len(preview["joins"]) + len(preview["leaves"]),
        "rule_list_ms": round(listing * 1000, 2),
        "rules_listed": listed,
    }


def snapshot_checks(path: Path) -> dict:
    """What checking the snapshot costs: the store's decode vs. the same lines parsed unchecked."""
    import gc

    import orjson

    from provtui.store import snapshot

    data = (path / "snapshot.json").read_bytes()
    gc.collect()
    gc.disable()
    t = time.perf_counter()
    checked = snapshot.decode(data)
    took = time.perf_counter() - t
    t = time.perf_counter()
    tables: dict = {}
    for line in data.splitlines()[1:-1]:
        table, docs = orjson.loads(line[9:])
        tables.setdefault(table, {}).update(docs)
    bare = time.perf_counter() - t
    gc.enable()
    assert sum(map(len, tables.values())) == checked.documents
    return {
        "snapshot_decode_s": round(took, 4),
        "snapshot_parse_s": round(bare, 4),
        "snapshot_ratio": ratio(took, bare),
        "snapshot_documents": checked.documents,
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 1) if b else float("inf")


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="provtui-bench-scale-") as tmp:
        path = Path(tmp) / "store"
        built = build(path, args)
        committed = commits(path, args.commits)  # also leaves the journal non-empty: opens replay it
        opened, baseline = cold(OPEN_PROVTUI, path, args.opens), cold(OPEN_BASELINE, path, args.opens)
        checks = snapshot_checks(path)
        planned = plan(path)
        previewed = rule_preview(path) if args.rules else None
        files_mb = sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6
    on_postgres = plan_on_postgres(args) if args.postgres else {}
    return {
        "users": args.users,
        "groups": args.groups,
        "apps": args.apps,
        "rules": args.rules,
        "store_mb": round(files_mb, 1),
        "build": {k: round(v, 2) for k, v in built["timings"].items()},
        "queued": built["queued"],
        "apps_per_user": round(built["per_user"], 2),
        "open_s": round(opened["open"], 3),
        "open_baseline_s": round(baseline["open"], 3),
        "open_ratio": ratio(opened["open"], baseline["open"]),
        "rss_mb": round(opened["rss_kb"] / 1024, 1),
        "rss_baseline_mb": round(baseline["rss_kb"] / 1024, 1),
        "allocated_mb": round(opened["allocated"] / 2**20, 1),
        **checks,
        **committed,
        "commit_ratio": ratio(committed["commit_p50_ms"], committed["append_p50_ms"]),
        **planned,
        "plan_ratio": ratio(planned["plan_s"], planned["reads_s"]),
        **(previewed or {}),
        **on_postgres,
    }


def plan_on_postgres(args: argparse.Namespace) -> dict:
    """The same organisation built on a throwaway PostgreSQL, and its full plan: the planning cost on both backends."""
    from provtui.testing.postgres import PostgresProcess

    with PostgresProcess() as postgres:
        url = postgres.create_database("scale")
        build(url, args)  # type: ignore[arg-type]
        planned = plan(url)
    return {f"pg_{key}": value for key, value in planned.items()} | {"pg_plan_ratio": ratio(planned["plan_s"], planned["reads_s"])}


def table(r: dict) -> str:
    rows = [
        ("measure", "provtui", "baseline", "ratio"),
        ("store open, cold (s)", f"{r['open_s']:.3f}", f"{r['open_baseline_s']:.3f}", f"{r['open_ratio']}x"),
        (
            f"snapshot checks, {r['snapshot_documents']:,} documents (s)",
            f"{r['snapshot_decode_s']:.3f}",
            f"{r['snapshot_parse_s']:.3f}",
            f"{r['snapshot_ratio']}x",
        ),
        ("one commit p50 (ms)", f"{r['commit_p50_ms']:.2f}", f"{r['append_p50_ms']:.2f}", f"{r['commit_ratio']}x"),
        ("one commit p95 (ms)", f"{r['commit_p95_ms']:.2f}", f"{r['append_p95_ms']:.2f}", ""),
        (f"full plan, {r['pairs']:,} keys (s)", f"{r['plan_s']:.3f}", f"{r['reads_s']:.4f}", f"{r['plan_ratio']}x"),
        ("  a key (us)", f"{r['plan_us_per_pair']:.2f}", "", ""),
        *(
            [
                (
                    f"full plan on PostgreSQL, {r['pg_pairs']:,} keys (s)",
                    f"{r['pg_plan_s']:.3f}",
                    f"{r['pg_reads_s']:.4f}",
                    f"{r['pg_plan_ratio']}x",
                ),
                ("  a key (us)", f"{r['pg_plan_us_per_pair']:.2f}", "", ""),
            ]
            if "pg_plan_s" in r
            else []
        ),
        *(
            [
                (
                    f"rule preview, {r['preview_moves']:,} users move (s)",
                    f"{r['preview_s']:.3f}",
                    f"{r['evaluate_s']:.4f}",
                    f"{r['preview_ratio']}x",
                ),
                (f"list {r['rules_listed']} rules with members (ms)", f"{r['rule_list_ms']:.1f}", "", ""),
            ]
            if "preview_s" in r
            else []
        ),
        ("peak RSS after open (MB)", f"{r['rss_mb']}", f"{r['rss_baseline_mb']}", ""),
        ("allocated by the open (MB)", f"{r['allocated_mb']}", "", ""),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        (
            f"{r['users']:,} users, {r['groups']} groups ({r['rules']} rule-set), {r['apps']} apps; "
            f"{r['queued']:,} queued keys ({r['apps_per_user']} apps a user); store {r['store_mb']} MB; "
            f"Python {platform.python_version()}"
        )
    ]
    lines += ["  ".join(cell.ljust(width[i]) if i == 0 else cell.rjust(width[i]) for i, cell in enumerate(row)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--commits", type=int, default=200, help="single committed changes timed")
    parser.add_argument("--opens", type=int, default=3, help="cold-open processes (median)")
    parser.add_argument("--postgres", action="store_true", help="also build it on PostgreSQL and plan there")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not 0 <= args.rules < args.groups or args.apps < 1 or args.users < args.commits:
        parser.error("need 0 <= --rules < --groups, --apps >= 1 and --users >= --commits")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
