"""The live sources' benchmark runs end to end at a tiny size, on both directories (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.samba_fixtures import require_samba

BENCH = Path(__file__).resolve().parent / "bench_live.py"


def test_bench_gives_every_figure_beside_its_floor():
    require_samba()
    done = subprocess.run(
        [sys.executable, str(BENCH), "--changes", "3", "--people", "3", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for directory in ("openldap", "ad"):
        figures = data[directory]
        assert figures["changes"] == 3 and figures["people"] == 3
        assert 0 < figures["directory_p50_ms"] <= figures["directory_p95_ms"] and 0 < figures["app_p50_ms"] <= figures["app_p95_ms"]
        assert figures["floor_p50_ms"] <= figures["floor_p95_ms"]
