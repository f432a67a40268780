"""The PostgreSQL benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provtui.testing.postgres import postgres_available

BENCH = Path(__file__).resolve().parent / "bench_postgres.py"


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed (apt-get install postgresql)")
def test_bench_json_has_every_figure_beside_its_floor():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--users", "300", "--commits", "5", "--opens", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["users"] == 300 and set(data["build_s"]) == {"embedded", "postgres"}
    for side in ("embedded", "postgres"):
        assert data["open"][side]["open_s"] > 0 and data["open"][side]["rss_mb"] > 0
        for figure in ("commit", "commit_floor", "search_page"):  # (a search's page may round to 0.00 ms)
            assert data[figure][side]["p50_ms"] >= 0 and data[figure][side]["p95_ms"] >= data[figure][side]["p50_ms"]
    table = subprocess.run(
        [sys.executable, str(BENCH), "--users", "300", "--commits", "3", "--opens", "1"], capture_output=True, text=True, timeout=180
    )
    assert table.returncode == 0 and "one commit p50" in table.stdout and "INSERT+COMMIT" in table.stdout, table.stderr
