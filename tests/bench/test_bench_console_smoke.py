"""The console benchmark runs end to end at a small size (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_console.py"
SMALL = ("--users", "300", "--repeat", "1", "--pages", "3", "--gap", "0.01")


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, str(BENCH), *SMALL, *args], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_prints_every_figure_with_the_datatable_ratio():
    out = run()
    assert re.search(r"^console vs stock DataTable — 300 users, [\d,]+ audit events, a group of 60, [\d,]+ open tasks", out), out
    for row in ("first frame with rows", r"search p50 \(after the last key\)", r"search p95 \(after the last key\)", "page down"):
        assert re.search(rf"^{row}\s+[\d,.]+ ms\s+[\d,.]+ ms\s+[\d,.]+x$", out, re.MULTILINE), (row, out)
    for screen in ("dashboard", "directory", "groups", "group", "user", "apps", "activity", "tasks", "audit", "reports"):
        assert re.search(rf"^{screen}\s+[\d,.]+ ms$", out, re.MULTILINE), (screen, out)


def test_bench_json():
    data = json.loads(run("--json"))
    assert data["store"]["users"] == 300 and data["store"]["group_members"] == 60
    assert data["store"]["open_tasks"] > 0
    mine, stock = data["provtui"], data["stock"]
    assert mine["searches"] == stock["searches"] == 7
    assert mine["scrolled_to_row"] > 0
    for key in ("first_rows_ms", "search_p50_ms", "search_p95_ms", "page_down_ms"):
        assert mine[key] > 0 and stock[key] > 0, key
    assert {"dashboard", "directory", "groups", "group", "user", "apps", "activity", "tasks", "audit", "reports"} <= mine[
        "screens_ms"
    ].keys()
    assert all(value > 0 for value in mine["screens_ms"].values())
