"""Benchmark: a provtui server on a 50,000-user store, against the same work embedded (issue #16's targets).

    python tests/bench/bench_server.py [--users 50000] [--repeat 3] [--calls 300] [--rounds 5] [--json]

The store: bench_console.py's (``--users`` users from tests/helpers/console.py's big_service, an
audit event for each, a group of a fifth of them, a manual app assigned to it with a task open
for each member), the OS user running the bench made a super admin.  One ``provtui server
--no-worker`` serves it on a Unix socket for the whole run; each figure is measured beside its
embedded baseline in the same run, the two sides interleaved (one server run, then one embedded
run, …), so a noisy moment on the machine lands on both:

- console first frame in a real terminal (tmux, 80x24): from starting ``python -m provtui
  --server SOCK`` in a new tmux session to the first capture-pane showing the first user's row
  (``user000000``), against ``python -m provtui --store STORE``; median of ``--repeat`` runs each,
  the console quit with ctrl+q between runs.  The floors: the same for a shell's ``echo``, and for a bare
  Textual app showing one table row (textual_floor.py: Python, Textual and http.client imported, nothing of provtui);
- request overhead: ``user_view(login)`` over ``--calls`` logins spread over the store, through
  ``RemoteService`` vs. a warmed in-process ``Service``; p50/p95 and their difference;
- ``provtui user list --json`` of everyone, as a subprocess (stdout to a file): through the server
  vs. embedded, median of ``--repeat``.  The floor: ``python -m provtui --help``;
- search: what the console's directory asks on each keystroke (``directory.search``: every match,
  no page limit, then the user count and the queue length) over needles from every user to none,
  ``--rounds`` rounds; and the same needles as one page of 200 (``list_users(needle, limit=200)``).

Ratios are server / embedded: below 1 the server is faster.  ``--users 500000`` works (slowly).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import pwd
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from provtui.client.remote import RemoteService
from provtui.service import Service
from tests.bench import terminal as in_tmux
from tests.bench.bench_console import build_store as build_console_store
from tests.bench.bench_console import ms, needles, p95  # the same searches and figures as the console's bench
from tests.helpers.server import wait_for_server

ACTOR = "admin"  # big_service's actor, who made the store
OS_USER = pwd.getpwuid(os.geteuid()).pw_name  # who runs the server, the consoles and the CLI: made a super admin
PAGE = 200  # the page a paging client would ask for
TARGETS = {  # issue #16
    "terminal_server_ms": 1000.0,  # console first frame through the server: at most 1 s
    "user_view_overhead_p50_ms": 2.0,  # a call's cost over the in-process call
    "user_list_ratio": 1.5,  # `user list --json` through the server / embedded
    "search_server_p95_ms": 100.0,
}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def clean_env() -> dict[str, str]:
    """The environment for every process started: no PROVTUI_SERVER or PROVTUI_STORE of the caller's."""
    return {k: v for k, v in os.environ.items() if k not in ("PROVTUI_SERVER", "PROVTUI_STORE")}


# -- the store and the server ------------------------------------------------------------------------


def build_store(path: Path, users: int) -> dict:
    """bench_console.py's store (its figures compare with these), the OS user made a super admin."""
    built = build_console_store(path, users)
    if OS_USER != ACTOR:  # the server runs as the store's super admin
        Service.open(path, actor=ACTOR).grant(OS_USER, "super-admin")
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return {**built, "store_mb": round(size / 1e6, 1)}


def start_server(store: Path, socket_path: Path, log: Path, timeout: float) -> tuple[subprocess.Popen, float]:
    """``provtui server --no-worker`` (tests/helpers/server.py's start_server_process has no --no-worker); its log
    goes to a file (a pipe nobody reads could fill).  Returns it and how long it took to answer."""
    command = [sys.executable, "-m", "provtui", "server", "--store", str(store), "--socket", str(socket_path), "--no-worker"]
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    try:
        wait_for_server(socket_path, process=process, timeout=timeout)
    except BaseException:
        stop_server(process)
        raise AssertionError(f"the server did not start: {log.read_text()}") from None
    return process, time.perf_counter() - started


def stop_server(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


# -- 1. the console's first frame in a real terminal ----------------------------------------------------


def measure_terminal(workdir: Path, store: Path, socket_path: Path, repeat: int, timeout: float) -> dict:
    """The console attached and embedded, to big_service's first login in its list, beside the floors."""
    python = shlex.quote(sys.executable)
    sides = {
        "server": f"{python} -m provtui --server {shlex.quote(str(socket_path))}",
        "embedded": f"{python} -m provtui --store {shlex.quote(str(store))}",
    }
    measured = in_tmux.measure_terminal(workdir, store, sides, "user000000", repeat, timeout, clean_env())
    server, embedded = (measured["median_ms"].get(side) for side in sides)
    return {
        **{k: measured[k] for k in ("floor_ms", "textual_floor_ms", "store_floor_ms", "reason")},
        "server_ms": server,
        "embedded_ms": embedded,
        "ratio": ratio(server, embedded),
        "server_runs_ms": measured["runs_ms"].get("server", []),
        "embedded_runs_ms": measured["runs_ms"].get("embedded", []),
        **{k: measured[k] for k in ("shown", "exit_codes") if k in measured},
    }


# -- 2. and 4. calls through the server vs. in process -------------------------------------------------------


def timed_pairs(calls: list[tuple[str, Callable[[], object], Callable[[], object]]]) -> dict[str, dict[str, list[float]]]:
    """Each (label, through the server, in process) pair timed back to back: samples per side and label."""
    samples: dict[str, dict[str, list[float]]] = {"server": {}, "embedded": {}}
    for label, remote, local in calls:
        for side, fn in (("server", remote), ("embedded", local)):
            started = time.perf_counter()
            fn()
            samples[side].setdefault(label, []).append(time.perf_counter() - started)
    return samples


def summary(samples: dict[str, dict[str, list[float]]]) -> dict:
    server = [t for ts in samples["server"].values() for t in ts]
    embedded = [t for ts in samples["embedded"].values() for t in ts]
    s50, s95, e50, e95 = statistics.median(server), p95(server), statistics.median(embedded), p95(embedded)
    return {
        "calls": len(server),
        "server_p50_ms": ms(s50),
        "server_p95_ms": ms(s95),
        "embedded_p50_ms": ms(e50),
        "embedded_p95_ms": ms(e95),
        "overhead_p50_ms": ms(s50 - e50),
        "overhead_p95_ms": ms(s95 - e95),
        "ratio_p50": ratio(s50, e50),
        "ratio_p95": ratio(s95, e95),
    }


def measure_user_view(remote: RemoteService, local: Service, users: int, calls: int) -> dict:
    step = max(1, users // calls)
    logins = [f"user{n:06d}" for n in range(0, users, step)][:calls]
    for login in logins[:10]:  # warm both: the first calls pay for connections and lazy caches
        remote.user_view(login)
        local.user_view(login)
    assert remote.user_view(logins[0]) == local.user_view(logins[0])  # sanity: the same answer either way
    pairs = [(login, lambda who=login: remote.user_view(who), lambda who=login: local.user_view(who)) for login in logins]
    return summary(timed_pairs(pairs))


def measure_search(remote: RemoteService, local: Service, users: int, rounds: int) -> tuple[dict, dict, dict]:
    """(the console's search to its first rows, one page of PAGE, every match) over ``rounds`` rounds of the needles.
    Through a server the console shows a search's first FIRST_PAGE rows, then fetches the rest."""
    from provtui.tui.screens.directory import FIRST_PAGE, search  # what the directory runs on each keystroke

    words = needles(users)
    counts = {needle: local.list_users(needle, limit=0)[0] for needle in words}
    for needle in words:  # sanity: the same matches either way
        assert search(remote, needle, None)[0] == search(local, needle, None)[0], needle
        assert list(remote.list_users(needle, limit=PAGE)) == list(local.list_users(needle, limit=PAGE)), needle  # a list, a tuple
    console = [(n, lambda n=n: search(remote, n, None, limit=FIRST_PAGE), lambda n=n: search(local, n, None)) for n in words]
    full = [(n, lambda n=n: search(remote, n, None), lambda n=n: search(local, n, None)) for n in words]
    paged = [(n, lambda n=n: remote.list_users(n, limit=PAGE), lambda n=n: local.list_users(n, limit=PAGE)) for n in words]
    results = []
    for pairs in (console, paged, full):
        samples = timed_pairs(pairs * rounds)
        slowest = {n: ms(max(samples["server"][n])) for n in words}
        results.append({**summary(samples), "matches": counts, "server_slowest_ms": slowest})
    return {**results[0], "limit": FIRST_PAGE}, {**results[1], "limit": PAGE}, {**results[2], "limit": None}


# -- 3. `provtui user list --json` as a subprocess -------------------------------------------------------


def measure_user_list(workdir: Path, store: Path, socket_path: Path, users: int, repeat: int) -> dict:
    env = clean_env()
    python = [sys.executable, "-m", "provtui"]
    sides = {
        "server": [*python, "user", "list", "--json", "--server", str(socket_path)],
        "embedded": [*python, "user", "list", "--json", "--store", str(store)],
    }
    out = workdir / "user-list.json"

    def timed(command: list[str]) -> float:
        with open(out, "wb") as stdout:
            started = time.perf_counter()
            done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, env=env, check=False)
            took = time.perf_counter() - started
        if done.returncode != 0:
            raise AssertionError(f"{shlex.join(command)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
        return took

    floor = [timed([*python, "--help"]) for _ in range(repeat)]
    runs: dict[str, list[float]] = {side: [] for side in sides}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        for side, command in sides.items():
            runs[side].append(timed(command))
            sizes[side] = out.stat().st_size
    listed = json.loads(out.read_bytes())  # sanity: everyone, both ways the same size
    assert len(listed) == users and sizes["server"] == sizes["embedded"], (len(listed), sizes)
    server, embedded = statistics.median(runs["server"]), statistics.median(runs["embedded"])
    return {
        "server_s": round(server, 3),
        "embedded_s": round(embedded, 3),
        "ratio": ratio(server, embedded),
        "floor_s": round(statistics.median(floor), 3),
        "server_runs_s": [round(t, 3) for t in runs["server"]],
        "embedded_runs_s": [round(t, 3) for t in runs["embedded"]],
        "output_mb": round(sizes["server"] / 1e6, 1),
    }


# -- running and reporting -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="provtui-bench-server-"))
    sockets = Path(tempfile.mkdtemp(prefix="pvb-"))  # a socket's path is at most 107 bytes: keep it short
    socket_path = sockets / "s.sock"
    timeout = 60.0 + args.users / 1000  # seconds: longer than this is broken, not slow (500,000 users: 9 minutes)
    server = None
    try:
        store = workdir / "store"
        built = build_store(store, args.users)
        gc.collect()
        progress(f"store built in {built['build_s']} s")
        server, ready = start_server(store, socket_path, workdir / "server.log", timeout)
        progress(f"server answering after {ready:.2f} s")

        terminal = measure_terminal(workdir, store, socket_path, args.repeat, timeout)
        progress("console first frames measured" if terminal["reason"] is None else f"console first frames skipped: {terminal['reason']}")
        listed = measure_user_list(workdir, store, socket_path, args.users, args.repeat)
        progress("user list measured")

        opened = time.perf_counter()
        local = Service.open(store, actor=OS_USER)  # as the server serves us
        local.list_users(limit=1)  # warm as the server warms itself (run.py's _warm)
        local.prepare_history()
        opened = time.perf_counter() - opened
        # The in-process store's heap is this process's, not a console client's: out of the collector's way, so a
        # collection set off by decoding a remote result does not scan it (the server's process never decodes one).
        gc.collect()
        gc.freeze()
        remote = RemoteService.connect(socket_path)
        try:
            viewed = measure_user_view(remote, local, args.users, args.calls)
            progress("user_view measured")
            searched, paged, every = measure_search(remote, local, args.users, args.rounds)
            progress("searches measured")
        finally:
            remote.close()
        stopped = stop_server(server)
        server = None
        if stopped != 0:
            raise AssertionError(f"the server exited {stopped}: {(workdir / 'server.log').read_text()}")
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(sockets, ignore_errors=True)
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "store": built,
        "server_ready_s": round(ready, 2),
        "embedded_open_s": round(opened, 2),
        "repeat": args.repeat,
        "terminal": terminal,
        "user_view": viewed,
        "user_list": listed,
        "search": searched,
        "search_page": paged,
        "search_all": every,
        "targets": TARGETS,
        "bench_s": round(time.perf_counter() - started, 1),
    }


def fmt(value: float | None, unit: str = "ms") -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.2f} ms"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def verdict(what: str, value: float | None, limit: float, unit: str = "", *, below: bool = False) -> str:
    """``what ≤ limit: met`` (``below``: strictly below), or MISSED; nothing measured: not measured."""
    op = "<" if below else "≤"
    if value is None:
        return f"{what} {op} {limit:,g}{unit}: not measured"
    met = value < limit if below else value <= limit
    return f"{what} {op} {limit:,g}{unit}: {'met' if met else 'MISSED'}"


def report(result: dict) -> str:
    store, term, view, listed, search, paged = (result[k] for k in ("store", "terminal", "user_view", "user_list", "search", "search_page"))
    targets = result["targets"]
    lines = [
        (
            f"provtui server vs embedded — {store['users']:,} users, {store['audit_events']:,} audit events, a group of "
            f"{store['group_members']:,}, {store['open_tasks']:,} open tasks, a {store['store_mb']} MB store; Python {result['python']}, {result['cpus']} CPUs; server answering "
            f"after {result['server_ready_s']:.2f} s (open + caches), embedded open + warm {result['embedded_open_s']:.2f} s"
        ),
        "",
        f"{'metric':<44}{'server':>12}{'embedded':>12}{'ratio':>9}{'overhead':>11}   target",
        "-" * 108,
    ]

    def row(label: str, a, b, r, extra: str = "", target: str = "", unit: str = "ms") -> None:
        lines.append(f"{label:<44}{fmt(a, unit):>12}{fmt(b, unit):>12}{fmt_ratio(r):>9}{extra:>11}   {target}")

    row(
        f"console first row, tmux 80x24 (median of {len(term['server_runs_ms']) or result['repeat']})",
        term["server_ms"],
        term["embedded_ms"],
        term["ratio"],
        target=verdict("server", term["server_ms"], targets["terminal_server_ms"], " ms")
        if term["reason"] is None
        else f"skipped: {term['reason']}",
    )
    for q in ("p50", "p95"):
        row(
            f"user_view {q} ({view['calls']} calls)",
            view[f"server_{q}_ms"],
            view[f"embedded_{q}_ms"],
            view[f"ratio_{q}"],
            f"{view[f'overhead_{q}_ms']:+.2f} ms",
            verdict("overhead", view["overhead_p50_ms"], targets["user_view_overhead_p50_ms"], " ms") if q == "p50" else "",
        )
    row(
        f"`user list --json`, {store['users']:,} users (median of {len(listed['server_runs_s'])})",
        listed["server_s"],
        listed["embedded_s"],
        listed["ratio"],
        f"{listed['server_s'] - listed['embedded_s']:+.2f} s",
        verdict("ratio", listed["ratio"], targets["user_list_ratio"]),
        unit="s",
    )
    for label, figures, target in (
        ("search, keystroke to the console's first rows", search, True),
        (f"search, a page of {PAGE}", paged, False),
        ("search, every match (the rest follows the first rows)", result["search_all"], False),
    ):
        for q in ("p50", "p95"):
            row(
                f"{label} {q}",
                figures[f"server_{q}_ms"],
                figures[f"embedded_{q}_ms"],
                figures[f"ratio_{q}"],
                f"{figures[f'overhead_{q}_ms']:+.2f} ms",
                verdict("server", figures["server_p95_ms"], targets["search_server_p95_ms"], " ms", below=True)
                if target and q == "p95"
                else "",
            )
    lines += [
        "",
        (
            f"floors: a tmux session's first capture {fmt(term['floor_ms'])}; a bare Textual app's first row "
            f"{fmt(term['textual_floor_ms'])} (the attached console's floor), after reading and parsing the store's "
            f"files {fmt(term['store_floor_ms'])} (the embedded console's: {fmt_ratio(ratio(term['embedded_ms'], term['store_floor_ms']))} "
            f"of it); `python -m provtui --help` "
            f"{fmt(listed['floor_s'], 's')}; `user list --json` writes {listed['output_mb']} MB"
        ),
    ]
    if term["reason"] is None:
        lines.append(
            f"console runs (ms): server {', '.join(f'{t:,.0f}' for t in term['server_runs_ms'])}; "
            f"embedded {', '.join(f'{t:,.0f}' for t in term['embedded_runs_ms'])}"
        )
    lines.append(f"searches: {search['calls']} each way; matches " + ", ".join(f"{n!r} {c:,}" for n, c in search["matches"].items()))
    lines.append(
        "slowest search through the server, by needle: " + ", ".join(f"{n!r} {fmt(v)}" for n, v in search["server_slowest_ms"].items())
    )
    lines += ["", f"ratio = server / embedded: below 1 the server is faster. The bench took {result['bench_s']:.0f} s."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="console starts and `user list` runs per side (median)")
    parser.add_argument("--calls", type=int, default=300, help="user_view calls per side")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the search needles")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.users < 10 or min(args.repeat, args.calls, args.rounds) < 1:
        parser.error("--users: at least 10; --repeat, --calls, --rounds: at least 1")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
