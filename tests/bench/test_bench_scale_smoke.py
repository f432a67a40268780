"""The scale benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench_scale.py"
SMALL = ("--users", "300", "--groups", "12", "--apps", "4", "--rules", "4", "--commits", "5", "--opens", "1")


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, str(BENCH), *SMALL, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_scale_prints_every_figure_beside_its_baseline():
    out = run()
    assert out.startswith("300 users, 12 groups (4 rule-set), 4 apps;"), out
    for label in (
        "store open, cold",
        "snapshot checks",
        "one commit p50",
        "full plan",
        "rule preview",
        "list 4 rules with members",
        "peak RSS after open",
        "allocated by the open",
    ):
        assert re.search(rf"^{re.escape(label)}.*\d", out, re.MULTILINE), (label, out)
    assert re.search(r"^store open, cold \(s\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x$", out, re.MULTILINE), out


def test_bench_scale_json_has_the_figures_and_a_real_workload():
    data = json.loads(run("--json"))
    assert (data["users"], data["groups"], data["apps"], data["rules"]) == (300, 12, 4, 4)
    assert data["queued"] == data["pairs"] > data["users"]  # every user entitled, most to several apps
    assert data["changes"] == data["pairs"]  # nothing provisioned yet: every key plans a create
    for key in (
        "open_s",
        "open_baseline_s",
        "commit_p50_ms",
        "commit_p95_ms",
        "append_p50_ms",
        "plan_s",
        "reads_s",
        "rss_mb",
        "rss_baseline_mb",
        "allocated_mb",
        "commit_bytes",
        "preview_s",
        "evaluate_s",
        "rule_list_ms",
        "snapshot_decode_s",
        "snapshot_parse_s",
        "snapshot_documents",
    ):
        assert data[key] > 0, key
    assert data["rules_listed"] == 4 and data["preview_moves"] > 0  # the edit moves users in and out


def test_bench_scale_plans_on_postgresql_too_when_asked(pg_url):  # (pg_url: PostgreSQL is installed; the bench starts its own)
    data = json.loads(run("--postgres", "--json"))
    assert data["pg_pairs"] == data["pairs"] and data["pg_changes"] == data["changes"]  # the same work on both backends
    assert data["pg_plan_s"] > 0 and data["pg_plan_us_per_pair"] > 0 and data["pg_plan_ratio"] > 0
