"""Benchmark: the console (headless ``App.run_test``) on a 50,000-user store, against a stock DataTable.

    python tests/bench/bench_console.py [--users 50000] [--repeat 3] [--gap 0.08] [--json]

The store: ``--users`` users (tests/helpers/console.py's big_service), an audit event for each, a
group holding a fifth of them (10,000 at 50,000), a manual app assigned to that group with
its tasks created by the engine.  Measured, in this order, in one console:

- first rows: from ``run_test`` starting to the directory's first frame with rows (the
  store is already open: ``Service.open`` is timed on its own, in a fresh service);
- search: each needle typed one key at a time, ``--gap`` seconds apart (a fast typist);
  the latency runs from the last keystroke to the first frame painted with its matches in
  the table and the status line saying so (p50 / p95 over ``--repeat`` rounds of needles);
- scrolling: page down ``--pages`` times in the full list, time per page;
- each top-level screen, the group's page and two users' pages (the first may build
  caches the second reuses): from the key (or the push) to the frame showing its data.

The baseline is a stock Textual ``DataTable`` app given the same 50,000 summaries: its
first frame with rows, the same searches (one round; each needle set at once, as if pasted,
refiltered in memory on the event loop: clear and add the matching rows) and the same page
downs.  Ratios are
baseline / provtui: above 1 means the console is faster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textual import events
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static
from textual.worker import WorkerState

from provtui.compose import build_engine
from provtui.domain.users import search_text
from provtui.model.schema import USERS
from provtui.service import Service
from provtui.tui.app import build_app
from provtui.tui.screens.directory import DirectoryScreen
from provtui.tui.screens.group_detail import GroupDetailScreen
from provtui.tui.screens.user_detail import UserDetailScreen
from provtui.tui.widgets.nav import NAV
from provtui.tui.widgets.user_table import COLUMNS, UserTable
from tests.helpers.console import big_service

ACTOR = "admin"
GROUP = "Everyone-sample"
MANUAL_APP = "Payroll"
SIZE = (120, 40)
TIMEOUT = 60.0  # seconds: a screen that takes longer than this is broken, not slow


def needles(users: int) -> list[str]:
    """Searches from broad (every user) to none, all valid at any size (logins are user000000…)."""
    last = users - 1
    return ["u", "user0", f"user{last // 10:05d}", f"first{last // 100}", f"last{last}", f"user{last:06d}", "nobody"]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def p95(samples: list[float]) -> float:
    return sorted(samples)[max(0, int(len(samples) * 0.95 + 0.5) - 1)]


# -- the store -----------------------------------------------------------------------------


def build_store(path: Path, users: int) -> dict:
    """The benchmark's store; returns what was built and how long it took."""
    started = time.perf_counter()
    service = big_service(path, users)
    logins = [doc["login"] for doc in sorted(service.store.all(USERS).values(), key=lambda d: d["login"])]
    batch = 5_000
    for first in range(0, users, batch):  # a trail as long as the directory, as creating them would leave
        with service.store.transaction() as tx:
            for login in logins[first : first + batch]:
                tx.audit({"actor": ACTOR, "action": "user.create", "target": login, "before": None, "after": {"state": "active"}})
    members = logins[: max(1, users // 5)]
    service.create_group(GROUP, "a fifth of everyone")
    service.add_members(GROUP, members)
    service.create_app(MANUAL_APP, manual=True, notify=["it@example.com"])
    service.assign(MANUAL_APP, group=GROUP)
    asyncio.run(build_engine(service, notify=False).run_until_idle())  # one open task per member
    service.store.compact()
    return {
        "users": users,
        "group_members": len(members),
        "open_tasks": len(service.task_list(open_only=True)),
        "audit_events": len(service.audit()),
        "build_s": round(time.perf_counter() - started, 2),
    }


# -- keys and frames ------------------------------------------------------------------------------

KEY_CHARS = {"slash": "/", "escape": None, "pagedown": None}


def send_key(app, key: str) -> None:
    """A keystroke as the terminal driver delivers it (``Pilot.press`` also waits ≥ 40 ms for idleness:
    that wait would be timed too)."""
    event = events.Key(key, KEY_CHARS.get(key, key))
    event.set_sender(app)
    app._driver.send_message(event)


class Frames:
    """Counts the frames the app paints (what a terminal would be sent), with the time of the last one."""

    def __init__(self, app) -> None:
        self.last = 0.0
        display = app._display

        def counted(screen, renderable) -> None:
            display(screen, renderable)
            self.last = time.perf_counter()

        app._display = counted


async def until(frames: Frames, done: Callable[[], bool], what: str, *, painted: bool = True) -> float:
    """Poll ``done`` every millisecond (the figures' resolution); returns the time of the first frame
    painted once it holds: when a person could see it (``painted=False``: when it holds, for waits
    not timed, whose frame may already have been painted)."""
    deadline = time.perf_counter() + TIMEOUT
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not shown within {TIMEOUT:.0f} s")
        await asyncio.sleep(0.001)
    held = time.perf_counter()
    while painted and frames.last < held:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: never painted")
        await asyncio.sleep(0.001)
    return frames.last if painted else held


def loaded(app, screen_type: type | None = None) -> bool:
    """The current screen (of ``screen_type``) has read its data and no load is under way."""
    screen = app.screen
    if screen_type is not None and not isinstance(screen, screen_type):
        return False
    if getattr(screen, "data", None) is None:
        return False
    return not any(w.group == "load" and w.node is screen and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)


def status_text(app) -> str:
    return str(app.screen.query_one("#status", Static).render())


async def type_needle(app, needle: str, gap: float) -> float:
    """Type ``needle`` a key at a time, ``gap`` seconds apart; returns the time of the last keystroke."""
    last = 0.0
    for index, key in enumerate(needle):
        if index:
            await asyncio.sleep(gap)
        last = time.perf_counter()
        send_key(app, key)
    return last


async def page_down(app, frames: Frames, cursor: Callable[[], int], pages: int) -> float:
    """Mean seconds from a page-down keystroke to the frame showing the moved cursor."""
    total = 0.0
    for _ in range(pages):
        before = cursor()
        started = time.perf_counter()
        send_key(app, "pagedown")
        total += await until(frames, lambda: cursor() != before, "page down") - started  # noqa: B023
    return total / pages


# -- provtui -------------------------------------------------------------------------------------


async def measure_console(service: Service, args: argparse.Namespace, expected: dict[str, int]) -> dict:
    r: dict = {}
    started = time.perf_counter()
    app = build_app(service, label="bench")
    frames = Frames(app)
    async with app.run_test(size=SIZE) as pilot:

        def table() -> UserTable:
            return app.screen.query_one(UserTable)

        shown = await until(frames, lambda: isinstance(app.screen, DirectoryScreen) and table().row_count > 0, "first rows")
        r["first_rows_ms"] = ms(shown - started)
        await until(frames, lambda: status_text(app).startswith(f"{args.users:,} of"), "the status line", painted=False)
        await pilot.pause()  # the first detail pane load, out of the way

        # Searches: from the last keystroke to the frame showing the matches and the status line saying so.
        samples: list[float] = []
        slowest: dict[str, float] = {}  # needle -> its slowest search, ms
        for _ in range(args.repeat):
            for needle in needles(args.users):
                await pilot.press("slash")
                last_key = await type_needle(app, needle, args.gap)
                want = f"{expected[needle]:,} of {args.users:,} users matching “{needle}”"
                count = expected[needle]
                shown = await until(frames, lambda: status_text(app).startswith(want) and table().row_count == count, needle)  # noqa: B023
                samples.append(shown - last_key)
                slowest[needle] = max(slowest.get(needle, 0.0), ms(shown - last_key))
                await pilot.press("escape")  # clear the search: back to everyone
                await until(
                    frames, lambda: table().row_count == args.users and "matching" not in status_text(app), "cleared", painted=False
                )
        r["search_p50_ms"], r["search_p95_ms"], r["searches"] = ms(statistics.median(samples)), ms(p95(samples)), len(samples)
        r["search_slowest_ms"] = slowest

        # Scrolling the whole directory.
        table().focus()
        await pilot.pause()
        r["page_down_ms"] = ms(await page_down(app, frames, lambda: table().cursor, args.pages))
        r["scrolled_to_row"] = table().cursor

        # Each top-level screen, in the line's order (the directory is already shown: it is reopened last).
        screens: dict[str, float] = {}
        for mode, key, _ in NAV:
            if mode == "directory":
                continue
            started = time.perf_counter()
            send_key(app, key)
            shown = await until(frames, lambda: app.current_mode == mode and loaded(app), mode)  # noqa: B023
            screens[mode] = ms(shown - started)
            await pilot.pause()
        started = time.perf_counter()
        send_key(app, "u")
        shown = await until(
            frames,
            lambda: (
                isinstance(app.screen, DirectoryScreen)
                and table().row_count == args.users
                and status_text(app).startswith(f"{args.users:,} of")
            ),
            "directory",
        )
        screens["directory"] = ms(shown - started)
        await pilot.pause()

        started = time.perf_counter()
        app.open_group(GROUP)
        shown = await until(frames, lambda: loaded(app, GroupDetailScreen), "the group's page")
        screens["group"] = ms(shown - started)
        await pilot.press("escape")

        for label, login in (("user", f"user{args.users // 2:06d}"), ("another user", f"user{args.users // 3:06d}")):
            started = time.perf_counter()
            app.open_user(login)
            shown = await until(frames, lambda: loaded(app, UserDetailScreen), f"{login}'s page")
            screens[label] = ms(shown - started)
            await pilot.press("escape")
        r["screens_ms"] = screens
    return r


# -- the baseline: a stock DataTable ---------------------------------------------------------------


class StockTableApp(App):
    """Every summary in a stock DataTable; a search refilters them on the loop and refills the table."""

    def __init__(self, rows: list[dict]) -> None:
        super().__init__()
        self.all_rows = rows
        self.search_index = [search_text({"login": r["login"], "email": r["email"], "displayName": r["displayName"]}) for r in rows]
        self.shown = ""  # the needle whose rows the table holds

    def compose(self) -> ComposeResult:
        yield Input(id="search")
        yield DataTable(id="users", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*(c.label for c in COLUMNS))
        self._fill(self.all_rows)
        table.focus()

    def _fill(self, rows: list[dict]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows([[r.get(c.key) or "" for c in COLUMNS] for r in rows])

    def on_input_changed(self, event: Input.Changed) -> None:
        needle = event.value.strip().lower()
        self._fill([r for r, text in zip(self.all_rows, self.search_index, strict=False) if needle in text])
        self.shown = event.value


async def measure_stock(rows: list[dict], args: argparse.Namespace, expected: dict[str, int]) -> dict:
    r: dict = {}
    started = time.perf_counter()
    app = StockTableApp(rows)
    frames = Frames(app)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        r["first_rows_ms"] = ms(await until(frames, lambda: table.row_count > 0, "first rows") - started)
        samples: list[float] = []
        field = app.query_one(Input)
        for needle in needles(args.users):  # one round: each refill of a broad search blocks the loop for seconds
            field.focus()
            await pilot.pause()
            # The whole needle at once (as if pasted): one refill, not one a keystroke, which favours the DataTable.
            last_key = time.perf_counter()
            field.value = needle
            shown = await until(frames, lambda: app.shown == needle and table.row_count == expected[needle], needle)  # noqa: B023
            samples.append(shown - last_key)
            field.value = ""
            await until(frames, lambda: app.shown == "" and table.row_count == len(rows), "cleared", painted=False)
        r["search_p50_ms"], r["search_p95_ms"], r["searches"] = ms(statistics.median(samples)), ms(p95(samples)), len(samples)
        table.focus()
        await pilot.pause()
        r["page_down_ms"] = ms(await page_down(app, frames, lambda: table.cursor_row, args.pages))
    return r


# -- running and reporting -------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="provtui-bench-console-"))
    try:
        path = workdir / "store"
        built = build_store(path, args.users)
        progress(f"store built in {built['build_s']} s")
        started = time.perf_counter()
        service = Service.open(path, actor=ACTOR)
        opened = time.perf_counter() - started
        expected = {needle: service.list_users(needle)[0] for needle in needles(args.users)}
        service = Service.open(path, actor=ACTOR)  # fresh: no search cache warmed by the counting above
        console = asyncio.run(measure_console(service, args, expected))
        progress("console measured")
        _, rows = Service.open(path, actor=ACTOR).list_users("")
        stock = asyncio.run(measure_stock(rows, args, expected))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "store": built,
        "open_ms": ms(opened),
        "gap_s": args.gap,
        "pages": args.pages,
        "provtui": console,
        "stock": stock,
    }


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def report(result: dict) -> str:
    mine, stock, store = result["provtui"], result["stock"], result["store"]
    lines = [
        (
            f"console vs stock DataTable — {store['users']:,} users, {store['audit_events']:,} audit events, "
            f"a group of {store['group_members']:,}, {store['open_tasks']:,} open tasks; Python {result['python']}, "
            f"{result['cpus']} CPUs, keys {result['gap_s'] * 1000:.0f} ms apart"
        ),
        "",
        f"{'metric':<34}{'provtui':>12}{'DataTable':>12}{'ratio':>10}",
        "-" * 68,
    ]
    for label, key in (
        ("first frame with rows", "first_rows_ms"),
        ("search p50 (after the last key)", "search_p50_ms"),
        ("search p95 (after the last key)", "search_p95_ms"),
        ("page down", "page_down_ms"),
    ):
        a, b = mine[key], stock[key]
        lines.append(f"{label:<34}{fmt(a):>12}{fmt(b):>12}{b / a:>9,.1f}x")
    lines += [
        "",
        (
            f"store open (Service.open): {fmt(result['open_ms'])}; searches timed: {mine['searches']} (DataTable "
            f"{stock['searches']}); {result['pages']} page downs"
        ),
        "",
        f"{'screen':<34}{'shown after':>12}",
        "-" * 46,
    ]
    for screen, value in mine["screens_ms"].items():
        lines.append(f"{screen:<34}{fmt(value):>12}")
    lines += ["", "slowest search by needle: " + ", ".join(f"{n!r} {fmt(v)}" for n, v in mine["search_slowest_ms"].items())]
    lines.append("")
    lines.append("ratio = DataTable / provtui: above 1 means the console is faster.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the searches (provtui)")
    parser.add_argument("--gap", type=float, default=0.08, help="seconds between keystrokes")
    parser.add_argument("--pages", type=int, default=50, help="page downs timed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.users < 10:
        parser.error("--users: at least 10")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
