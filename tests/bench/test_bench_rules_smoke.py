"""The rules benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_rules.py"


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--users", "300", "--changes", "20", "--repeat", "1", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_prints_a_table_with_ratios():
    out = run()
    assert "50 rules x 300 users = 15,000 evaluations" in out
    for row in ("full evaluation, one by one", "full evaluation, population", "one user's change p50", "one user's change p95"):
        assert re.search(rf"^{row}\s.*\s[\d,.]+x$", out, re.MULTILINE), (row, out)
    assert "targets:" in out


def test_bench_json_and_more_rules_than_the_fifty():
    data = json.loads(run("--json", "--rules", "60"))
    assert data["users"] == 300 and data["rules"] == 60 and data["evaluations"] == 18_000
    assert len(data["matches"]) == 60 and any(data["matches"])
    for key in ("full_interpreter_s", "full_compiled_s", "full_population_s", "change_compiled_p50_ms", "change_interpreter_p50_ms"):
        assert data[key] > 0, key
    assert 0 < data["change_rules_mean"] <= 60
