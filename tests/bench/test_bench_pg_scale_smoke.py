"""The million-person benchmark runs end to end at a tiny size (no timing assertions): built through the HR
CSV import, the console's first frame in tmux (when tmux is here), searches and commits, each beside its floor."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provtui.testing.postgres import postgres_available

BENCH = Path(__file__).resolve().parent / "bench_pg_scale.py"


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed (apt-get install postgresql)")
def test_bench_json_has_every_figure_beside_its_floor():
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--users",
            "300",
            "--groups",
            "12",
            "--rules",
            "2",
            "--apps",
            "2",
            "--opens",
            "1",
            "--commits",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["users"] == 300 and data["queued"] > 0 and data["database_mb"] > 0
    for figure in ("search_p50_ms", "page_floor_ms", "commit_p50_ms", "commit_floor_p50_ms"):
        assert data[figure] >= 0
    assert data["search_p95_ms"] >= data["search_p50_ms"] and data["commit_p95_ms"] >= data["commit_p50_ms"]
    if shutil.which("tmux"):
        console = data["console"]
        assert console["first_frame_ms"] > 0 and console["textual_floor_ms"] > 0 and console["console_rss_mb"] > 0
