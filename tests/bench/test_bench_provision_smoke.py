"""The provisioning benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_provision.py"


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--users", "30", "--concurrency", "4", "--repeat", "1", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_bench_prints_both_baselines_and_the_ratio():
    out = run()
    assert re.search(
        r"^ratio c=4: provtui / bare POST = [\d.]+ \(the same creates; target >= 0\.8: (PASS|FAIL)\); "
        r"provtui / bare GET\+POST = [\d.]+",
        out,
        re.MULTILINE,
    ), out
    for side in ("bare POST", "bare GET+POST", "provtui"):
        assert re.search(rf"^{re.escape(side)}\s+4\s+30\s.*\syes\b", out, re.MULTILINE), (side, out)


def test_bench_json():
    data = json.loads(run("--json"))
    assert data["users"] == 30 and data["verified"]
    (result,) = data["results"]
    assert result["concurrency"] == 4
    assert result["ratio_get_post"] > 0 and result["ratio_post_only"] > 0
    for side in result["sides"].values():
        assert side["done"] == 30 and side["server_users"] == 30
