"""The several-workers benchmark runs end to end at a tiny size (no timing assertions): both sides verified,
every account created once, the table printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provtui.testing.postgres import postgres_available

BENCH = Path(__file__).resolve().parent / "bench_workers.py"


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed (apt-get install postgresql)")
def test_two_workers_provision_every_account_once_beside_a_bare_client():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--users", "30", "--repeat", "1", "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["workers"] == 2 and data["users"] == 30
    for side in ("bare", "provtui"):
        assert data[side]["verified"] and data[side]["done"] == 60 and data[side]["server_users"] == [30, 30]
        assert data[side]["rate"] > 0
    assert data["ratio"] > 0
