"""The store benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_store.py"


def run(*args: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--sizes",
            "200",
            "--commits",
            "10",
            "--creates",
            "3",
            "--searches",
            "3",
            "--stock-searches",
            "2",
            "--opens",
            "1",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_prints_a_table_with_ratios():
    out = run()
    assert "stock/provtui" in out
    rows = [line for line in out.splitlines() if line.startswith("commit: update_user p50")]
    assert len(rows) == 1 and re.search(r"\s200\s.*ms\s.*ms\s+[\d,.]+x$", rows[0]), out
    assert re.search(r"^search 'smith'.*[\d,.]+x$", out, re.M), out


def test_bench_json():
    data = json.loads(run("--json"))
    (result,) = data["results"]
    assert result["size"] == 200
    assert result["matches"] > 0
    for key in (
        "open_provtui_ms",
        "open_stock_ms",
        "search_provtui_ms",
        "search_stock_ms",
        "commit_provtui_p50_ms",
        "commit_provtui_p95_ms",
        "commit_stock_p50_ms",
    ):
        assert result[key] > 0, key
