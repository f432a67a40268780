"""The inbound SCIM benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_scim_inbound.py"


def test_bench_gives_every_figure_beside_its_floor():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--users", "30", "--patches", "5", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["users"] == 30 and data["floor_creates_per_s"] > 0 and data["creates_per_s"] > 0 and data["ratio"] > 0
    assert data["provisioned_s"] > 0 and 0 < data["patch_p50_ms"] <= data["patch_p95_ms"]
