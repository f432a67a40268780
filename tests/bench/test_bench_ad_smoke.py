"""The Active Directory benchmark runs end to end at a tiny size against a real Samba AD DC (no timing assertions).

Without Samba it skips, except in CI, where it fails (tests/integration/samba_fixtures.py's require_samba).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import bench_ad
from tests.integration.samba_fixtures import require_samba

BENCH = Path(__file__).resolve().parent / "bench_ad.py"
SMALL = ("--users", "60", "--groups", "2", "--big-group", "30", "--accounts", "6", "--repeat", "1")


@pytest.fixture(scope="module")
def data() -> dict:
    require_samba()
    result = subprocess.run([sys.executable, str(BENCH), *SMALL, "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(result.stdout)


def test_bench_json_has_every_figure_with_its_baseline(data):
    assert data["verified"] is True and data["repeat"] == 1
    assert data["samba"] not in ("", "?") and data["python"] and data["cpus"] > 0
    assert data["dc_start_s"] > 0 and data["bench_s"] > 0
    assert re.fullmatch(r"ldaps://127\.0\.0\.\d+", data["dc"]) and int(data["dc"].rsplit(".", 1)[1]) >= 60  # not the tests' addresses

    seed = data["seed"]
    assert (seed["users"], seed["groups"], seed["memberships"]) == (60, 3, 90)
    assert seed["expected_groups"] == {"grp000": 30, "grp001": 30, "bigrp": 30}
    for key in ("users_s", "groups_s", "seconds", "ms_per_user"):
        assert seed[key] > 0, key

    imported = data["import"]
    for part in ("bare", "connector", "first", "second"):
        assert imported[part]["seconds"] > 0, part
        assert len(imported[part]["runs_s"]) == 1 and imported[part]["runs_s"][0] > 0, part
    for key in ("ratio", "second_ratio", "connector_ratio"):
        assert imported[key] > 0, key
    assert imported["target_ratio"] == 2.0 and isinstance(imported["met"], bool)
    assert imported["bare_seen"] == imported["connector_seen"] == {"users": 60, "groups": 3, "members": 90}
    assert imported["verified"] is True and imported["created"] == 60 and imported["store_users"] == 60
    assert imported["store_groups"] == imported["expected_groups"] == seed["expected_groups"]

    assert imported["second_quiet"] is True  # the second full run, nothing changed, changed nothing
    second = imported["second_result"]
    assert all(second[k] == 0 for k in ("created", "updated", "suspended", "deactivated", "reactivated")), second
    assert second["groups"]["members_added"] == second["groups"]["members_removed"] == 0 and second["mode"] == "full"

    target = data["target"]
    assert (target["accounts"], target["concurrency"]) == (6, 4)
    for side in ("bare", "provtui"):
        assert target[side]["rate"] > 0 and target[side]["seconds"] > 0 and target[side]["verified"] is True, side
        assert len(target[side]["runs"]) == 1 and target[side]["runs"][0] > 0, side
        assert target[side]["client_cpu_ms_per_account"] > 0, side
    assert target["ratio"] > 0 and target["target_rate"] == 20.0 and isinstance(target["met"], bool)
    assert target["provtui"]["failed"] == [] and target["provtui"]["failed_count"] == 0 and target["bare_failed"] == []
    assert target["bare_ops_per_account"] == 3 and target["bare_ops_by_method_per_account"] == {"ADD": 1, "MODIFY": 2}
    ops = target["provtui"]["ops_by_method_per_account"]
    assert target["provtui"]["ops_per_account"] >= 3 and ops["ADD"] == 1 and ops["MODIFY"] >= 2  # an add, a password, an enable
    assert set(data["targets"]) == {"import_ratio", "accounts_per_second"}


def test_bench_report_prints_every_figure_beside_its_baseline_and_ratio(data):
    out = bench_ad.report(data)
    assert out.startswith(f"provtui against a real AD: Samba {data['samba']} AD DC"), out
    assert re.search(r"DC started in [\d.]+ s; seeded 60 users in [\d.]+ s", out), out
    rows = [
        (r"import, first full run \(60 users, 3 groups\)", r"[\d.]+ s", r"≤ 2x: (MET|MISSED)"),
        (r"import, second full run \(nothing changed\)", r"[\d.]+ s", ""),
        (r"connector read alone \(read_users \+ read_groups\)", r"[\d.]+ s", ""),
        (r"AD target, 6 accounts at concurrency 4", r"[\d.]+/s", r"≥ 20 accounts/s: (MET|MISSED)"),
    ]
    for label, figure, target in rows:
        assert re.search(rf"^{label}\s+{figure}\s+{figure}\s+[\d.]+x\s+{target}", out, re.MULTILINE), (label, out)
    assert re.search(r"^LDAP operations per account\s+[\d.]+\s+3\s+[\d.]+x", out, re.MULTILINE), out
    assert "second import: created 0, updated 0, suspended 0, deactivated 0, reactivated 0" in out and ": quiet" in out
    assert "as seeded" in out and "verified: yes" in out
