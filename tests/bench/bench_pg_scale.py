"""Benchmark: a directory of a million people on PostgreSQL (#19), built through the HR CSV import, and what a
console on it costs, each figure beside its floor measured in the same run.

    python tests/bench/bench_pg_scale.py [--users 1000000] [--groups 2000] [--rules 100] [--apps 20]
                                         [--opens 3] [--commits 200] [--json]

The build (one throwaway PostgreSQL: a Unix socket, fsync off, as the tests run it; ``--shared-buffers``, 2GB
by default, a quarter of what PostgreSQL's guidance gives a server of this machine's 24 GB): the HR CSV of
bench_import.py with ``--users`` rows, imported in one run (dry run, then the apply: one commit); ``--groups``
groups of which ``--rules`` are filled by rules (department and title), the others by ``add_members`` (each
person in one); ``--apps`` SCIM apps (never called), each assigned to one rule group, so their members' keys
are queued; then ``VACUUM ANALYZE`` (what autovacuum does within a minute of such a change).  Then:

- the console's first frame with rows: `provtui` (the console, as the admin who built it) started in a new
  80x24 tmux session until the first user's login shows, median of ``--opens``, with the console process's
  peak resident memory (VmHWM) read before ctrl+q; floors: a shell's echo, and a bare Textual app showing a
  row (tests/bench/textual_floor.py) in the same terminal;
- a search's page: the directory screen's ``search`` (a keystroke's page of 200, how many match up to 10,000,
  everyone, the queue: tui/screens/directory.py) on a store opened as the console opens it, p50/p95 over needles from everyone to no one, beside the bare SQL of
  the same first page;
- one committed change: ``update_user`` p50/p95 beside a bare one-row ``INSERT`` + ``COMMIT``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from provtui.domain.rules import RuleState  # noqa: E402
from provtui.service import Service, current_os_user  # noqa: E402
from provtui.testing.postgres import PostgresProcess  # noqa: E402
from tests.bench.bench_console import ms, p95  # noqa: E402
from tests.bench.bench_import import DEPARTMENTS, TITLES, csv_rows  # noqa: E402
from tests.bench.bench_postgres import insert_floor  # noqa: E402
from tests.bench.terminal import FLOOR_APP, TMUX, Terminal  # noqa: E402

# Everyone, one letter, two, a common name, a rarer one, words no one has (two letters: no trigram to look up).
NEEDLES = ("", "e", "sm", "smith", "james.smith", "e0001", "engineering", "zq", "nobody-at-all")
PAGE = 200
TARGETS = {"first_frame_ms": 1000, "search_p95_ms": 150, "commit_p50_ms": 10, "console_rss_mb": 250}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(url: str, args: argparse.Namespace) -> dict:
    timings: dict[str, float] = {}
    service = Service.init(url, actor=current_os_user())
    started = time.perf_counter()
    data = csv_rows(args.users)
    planned = service.import_csv(data, dry_run=True)
    timings["import_dry_run_s"] = time.perf_counter() - started
    t = time.perf_counter()
    imported = service.import_csv(data)
    timings["import_apply_s"] = time.perf_counter() - t
    log(f"imported {imported['created']:,} people in {time.perf_counter() - started:.1f} s")
    assert planned["created"] == imported["created"] == args.users, (planned, imported)
    del data

    t = time.perf_counter()
    static = args.groups - args.rules
    logins = [u["login"] for u in service.list_users("", limit=None)[1]]
    for g in range(static):
        service.create_group(f"group-{g:04d}")
        service.add_members(f"group-{g:04d}", logins[g::static])
    del logins
    timings["groups_s"] = time.perf_counter() - t
    log(f"{static:,} groups filled in {timings['groups_s']:.0f} s; {args.rules} rules next")
    t = time.perf_counter()
    rules = service.rules()
    for r in range(args.rules):
        department, title = DEPARTMENTS[r % len(DEPARTMENTS)], TITLES[(r // len(DEPARTMENTS)) % len(TITLES)]
        service.create_group(f"rule-group-{r:03d}")
        rules.create(
            f"rule-{r:03d}",
            groups=[f"rule-group-{r:03d}"],
            expr=f'user.department == "{department}" and user.title == "{title}"',
            exclude=[],
        )
        rules.change(f"rule-{r:03d}", state=RuleState.ACTIVE, confirm=True)
    timings["rules_s"] = time.perf_counter() - t
    log(f"{args.rules} rules active in {timings['rules_s']:.0f} s; {args.apps} apps next")
    t = time.perf_counter()
    for a in range(args.apps):
        service.create_app(f"app-{a:02d}", scim_url="http://127.0.0.1:9/v2", token_env="PROVTUI_BENCH_NOWHERE")
        service.assign(f"app-{a:02d}", group=f"rule-group-{a % max(1, args.rules):03d}" if args.rules else f"group-{a:04d}")
    timings["apps_s"] = time.perf_counter() - t
    queued = service.pending_work()
    service.store.close()
    return {"timings": {k: round(v, 1) for k, v in timings.items()}, "queued": queued}


def console_first_frame(url: str, first_login: str, args: argparse.Namespace, work: Path) -> dict:
    """Median time to the first user's row in tmux, the console's peak RSS, and the floors."""
    if TMUX is None:
        return {"reason": "tmux is not installed"}
    # Bytecode cached, as an installed provtui has it (pip compiles it; the floor's Textual has it): with
    # PYTHONDONTWRITEBYTECODE (set where the tests run) every start would compile provtui's source anew.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    python = shlex.quote(sys.executable)
    console = f"{python} -m provtui --store {shlex.quote(url)}"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "provtui")], env=env, check=True)
    floors = {
        "echo": ("echo shell-ready; sleep 30", "shell-ready"),
        "textual": (f"{python} {shlex.quote(str(FLOOR_APP))}", "textual-ready"),
    }
    terminal = Terminal(work / "tmux.sock", env)
    runs: dict[str, list[float]] = {"console": [], **{key: [] for key in floors}}
    rss: list[float] = []
    try:
        for _ in range(args.opens):
            for key, (command, text) in floors.items():
                took, name = terminal.first_shown(command, text, 60)
                runs[key].append(took)
                terminal.end(name)
            took, name = terminal.first_shown(console, first_login, 120)
            runs["console"].append(took)
            time.sleep(1.0)  # the directory screen's workers settle
            rss.append(peak_rss_mb(terminal, name))
            terminal.end(name)
    finally:
        terminal.close()
    return {
        "first_frame_ms": ms(statistics.median(runs["console"])),
        "runs_ms": [ms(t) for t in runs["console"]],
        "echo_floor_ms": ms(statistics.median(runs["echo"])),
        "textual_floor_ms": ms(statistics.median(runs["textual"])),
        "console_rss_mb": round(max(rss), 1),
    }


def peak_rss_mb(terminal: Terminal, name: str) -> float:
    """VmHWM of the process the session runs (its pane's process)."""
    pid = terminal.tmux("display-message", "-p", "-t", name, "#{pane_pid}").stdout.strip()
    if b"provtui" not in Path(f"/proc/{pid}/cmdline").read_bytes():  # the pane's shell did not exec it: its child
        pid = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0]
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def searches(url: str) -> dict:
    from provtui.tui.screens.directory import QUERIED_COUNT, search  # what the directory screen asks on a keystroke

    service = Service.open(url, actor=current_os_user())
    times, by_needle = [], {needle: [] for needle in NEEDLES}
    for _ in range(3):
        for needle in NEEDLES:
            started = time.perf_counter()
            search(service, needle, None, limit=PAGE, count_up_to=QUERIED_COUNT)  # the page, how many match, everyone, the queue
            times.append(time.perf_counter() - started)
            by_needle[needle].append(ms(times[-1]))
    with service.store._conn.cursor() as cur:  # the floor: the same first page, bare (its keys in login order, their documents)
        bare = []
        for _ in range(9):
            started = time.perf_counter()
            cur.execute(
                "SELECT d.doc FROM (SELECT key, login FROM user_search ORDER BY login LIMIT %s) s"
                " JOIN docs d ON d.tbl = 'users' AND d.key = s.key ORDER BY s.login",
                (PAGE,),
            )
            cur.fetchall()
            bare.append(time.perf_counter() - started)
    service.store.close()
    return {
        "search_p50_ms": ms(statistics.median(times)),
        "search_p95_ms": ms(p95(times)),
        "page_floor_ms": ms(statistics.median(bare)),
        "search_by_needle_ms": by_needle,  # each needle's three rounds (the first one cold)
    }


def commits(url: str, count: int) -> dict:
    service = Service.open(url, actor=current_os_user())
    logins = [u["login"] for u in service.list_users("", limit=100)[1]]
    times = []
    for n in range(count):
        started = time.perf_counter()
        service.update_user(logins[n % len(logins)], {"nickName": f"Nick {n}"})  # (the HR export masters the rest)
        times.append(time.perf_counter() - started)
    service.store.close()
    return {"commit_p50_ms": ms(statistics.median(times)), "commit_p95_ms": ms(p95(times))}


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="provtui-bench-pgscale-"))
    with PostgresProcess(settings={"shared_buffers": args.shared_buffers}) as postgres:
        url = postgres.create_database("scale")
        built = build(url, args)
        with postgres.connect("scale") as conn:  # what autovacuum does within a minute of a big import
            t = time.perf_counter()
            conn.execute("VACUUM ANALYZE")  # (every table: user_search's statistics and visibility map too)
            built["timings"]["vacuum_analyze_s"] = round(time.perf_counter() - t, 1)
        first_login = Service.open(url, actor=current_os_user()).list_users("", limit=1)[1][0]["login"]
        with postgres.connect("scale") as conn:
            size_mb = conn.execute("SELECT pg_database_size('scale')").fetchone()[0] / 1e6
        log("built: measuring the console, searches and commits")
        console = console_first_frame(url, first_login, args, work)
        searched = searches(url)
        committed = commits(url, args.commits)
        floor = insert_floor(postgres, "scale", args.commits)
    return {
        "users": args.users,
        "groups": args.groups,
        "rules": args.rules,
        "apps": args.apps,
        "shared_buffers": args.shared_buffers,
        "database_mb": round(size_mb),
        **built,
        "console": console,
        **searched,
        **committed,
        "commit_floor_p50_ms": ms(statistics.median(floor)),
        "bench_s": round(time.perf_counter() - started),
    }


def report(r: dict) -> str:
    c = r["console"]
    lines = [
        f"{r['users']:,} people, {r['groups']:,} groups ({r['rules']} by rules), {r['apps']} apps on PostgreSQL: a {r['database_mb']:,} MB"
        f" database, {r['queued']:,} keys queued ({os.cpu_count()} cores, Python {platform.python_version()})",
        "build: " + ", ".join(f"{k} {v}" for k, v in r["timings"].items()),
        "",
        f"{'':46}{'provtui':>10}{'floor':>10}{'target':>9}",
    ]
    if "reason" in c:
        lines.append(f"console first frame: not measured ({c['reason']})")
    else:
        lines.append(
            f"{'console first frame with rows, tmux (ms)':46}{c['first_frame_ms']:>10}{c['textual_floor_ms']:>10}{TARGETS['first_frame_ms']:>9}"
        )
        lines.append(f"{'  (a shell echo in the same terminal, ms)':46}{'':>10}{c['echo_floor_ms']:>10}")
        lines.append(f"{'console peak resident memory (MB)':46}{c['console_rss_mb']:>10}{'':>10}{TARGETS['console_rss_mb']:>9}")
    lines.append(f"{'search, a page of 200, p50 (ms)':46}{r['search_p50_ms']:>10}{r['page_floor_ms']:>10}")
    lines.append(f"{'search, a page of 200, p95 (ms)':46}{r['search_p95_ms']:>10}{'':>10}{TARGETS['search_p95_ms']:>9}")
    lines.append(f"{'one committed change p50 (ms)':46}{r['commit_p50_ms']:>10}{r['commit_floor_p50_ms']:>10}{TARGETS['commit_p50_ms']:>9}")
    lines.append(f"{'one committed change p95 (ms)':46}{r['commit_p95_ms']:>10}")
    lines.append(f"\nThe bench took {r['bench_s']} s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--opens", type=int, default=3)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument(
        "--shared-buffers",
        default="2GB",
        help="the server's shared_buffers (default 2GB: PostgreSQL's guidance is a quarter of the machine's memory; "
        "its own default, 128MB, is for a small machine and holds neither the search rows nor their indexes at a million)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.users < 100 or not 0 <= args.rules < args.groups or args.apps < 1 or min(args.opens, args.commits) < 1:
        parser.error("--users >= 100, 0 <= --rules < --groups, --apps, --opens and --commits >= 1")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
