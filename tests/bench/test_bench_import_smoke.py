"""The import benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provtui.testing.slapd import slapd_available

BENCH = Path(__file__).resolve().parent / "bench_import.py"
pytestmark = pytest.mark.skipif(not slapd_available(), reason="slapd is not installed")


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--csv-rows", "300", "--ldap-entries", "60", "--groups", "3", "--repeat", "1", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_bench_prints_both_targets():
    out = run()
    assert re.search(r"^csv total: [\d.]+ s \(target < 10 s: (PASS|FAIL)\)$", out, re.MULTILINE), out
    assert re.search(r"^ratio ldap: provtui import / bare ldap3 read = [\d.]+ \(target <= 2: (PASS|FAIL)\)$", out, re.MULTILINE), out
    for row in ("dry run", "apply", "total", "bare ldap3 read", "connector read", "provtui import", "incremental"):
        assert re.search(rf"^  {re.escape(row)}\s+[\d.]+ s", out, re.MULTILINE), (row, out)
    assert "VERIFICATION FAILED" not in out


def test_bench_json():
    data = json.loads(run("--json"))
    assert data["verified"] is True
    assert data["csv"]["rows"] == 300 and data["csv"]["median"]["total"] > 0
    assert data["ldap"]["entries"] == 60 and data["ldap"]["groups"] == 3 and data["ldap"]["ratio"] > 0
