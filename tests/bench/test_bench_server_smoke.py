"""The server benchmark runs end to end at a tiny size (no timing assertions)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import bench_server
from tests.bench import terminal as in_tmux

BENCH = Path(__file__).resolve().parent / "bench_server.py"
SMALL = ("--users", "300", "--repeat", "1", "--calls", "20", "--rounds", "1")
NEEDLES = ["u", "user0", "user00029", "first2", "last299", "user000299", "nobody"]


@pytest.fixture(scope="module")
def data() -> dict:
    result = subprocess.run([sys.executable, str(BENCH), *SMALL, "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bench_json_has_every_figure_with_its_baseline(data):
    assert data["store"]["users"] == 300 and data["store"]["group_members"] == 60 and data["store"]["open_tasks"] > 0
    assert data["store"]["audit_events"] >= 300 and data["store"]["store_mb"] > 0
    assert data["server_ready_s"] > 0 and data["embedded_open_s"] >= 0 and data["bench_s"] > 0

    terminal = data["terminal"]
    if shutil.which("tmux") is None:  # only this figure may be missing, and then it says why
        assert terminal["server_ms"] is None and terminal["embedded_ms"] is None and terminal["reason"] == "tmux is not installed"
    else:
        assert terminal["reason"] is None and terminal["shown"] == "user000000"
        assert terminal["server_ms"] > 0 and terminal["embedded_ms"] > 0 and terminal["ratio"] > 0 and terminal["floor_ms"] > 0
        assert terminal["textual_floor_ms"] > 0 and terminal["store_floor_ms"] > 0  # the attached and embedded floors
        assert len(terminal["server_runs_ms"]) == len(terminal["embedded_runs_ms"]) == 1
        assert terminal["exit_codes"] == {"server": ["0"], "embedded": ["0"]}  # ctrl+q quit both consoles

    view = data["user_view"]
    assert view["calls"] == 20
    for key in ("server_p50_ms", "server_p95_ms", "embedded_p50_ms", "embedded_p95_ms", "ratio_p50", "ratio_p95"):
        assert view[key] > 0, key
    assert isinstance(view["overhead_p50_ms"], float) and isinstance(view["overhead_p95_ms"], float)

    listed = data["user_list"]
    for key in ("server_s", "embedded_s", "ratio", "floor_s"):
        assert listed[key] > 0, key
    assert len(listed["server_runs_s"]) == len(listed["embedded_runs_s"]) == 1

    for name, limit in (("search", 200), ("search_page", 200), ("search_all", None)):
        search = data[name]
        assert search["limit"] == limit and search["calls"] == len(NEEDLES)
        assert list(search["matches"]) == NEEDLES and search["matches"]["u"] == 300 and search["matches"]["nobody"] == 0
        assert search["matches"]["user000299"] == search["matches"]["last299"] == 1
        for key in ("server_p50_ms", "server_p95_ms", "embedded_p50_ms", "embedded_p95_ms", "ratio_p50", "ratio_p95"):
            assert search[key] > 0, (name, key)
        assert set(search["server_slowest_ms"]) == set(NEEDLES)
    assert set(data["targets"]) == {"terminal_server_ms", "user_view_overhead_p50_ms", "user_list_ratio", "search_server_p95_ms"}


def test_bench_report_prints_every_figure_beside_its_baseline_and_ratio(data):
    out = bench_server.report(data)
    assert re.search(r"^provtui server vs embedded — 300 users, [\d,]+ audit events, a group of 60, [\d,]+ open tasks", out), out
    figure = r"[\d,.]+ m?s"
    rows = [
        r"console first row, tmux 80x24 \(median of 1\)",
        r"user_view p50 \(20 calls\)",
        r"user_view p95 \(20 calls\)",
        r"`user list --json`, 300 users \(median of 1\)",
        r"search, keystroke to the console's first rows p50",
        r"search, keystroke to the console's first rows p95",
        r"search, every match \(the rest follows the first rows\) p50",
        r"search, a page of 200 p50",
        r"search, a page of 200 p95",
    ]
    if shutil.which("tmux") is None:
        rows.pop(0)
    for row in rows:
        assert re.search(rf"^{row}\s+{figure}\s+{figure}\s+[\d.]+x", out, re.MULTILINE), (row, out)
    for target in ("server ≤ 1,000 ms:", "overhead ≤ 2 ms:", "ratio ≤ 1.5:", "server < 100 ms:"):
        assert target in out, (target, out)


def test_without_tmux_the_terminal_figure_is_null_with_a_reason(monkeypatch, tmp_path, data):
    monkeypatch.setattr(in_tmux, "TMUX", None)
    terminal = bench_server.measure_terminal(tmp_path, tmp_path / "store", tmp_path / "s.sock", 1, 1.0)
    assert terminal["server_ms"] is None and terminal["embedded_ms"] is None and terminal["ratio"] is None
    assert terminal["reason"] == "tmux is not installed"
    out = bench_server.report({**data, "terminal": terminal})
    assert re.search(r"^console first row, tmux 80x24 .*—\s+—\s+—\s+skipped: tmux is not installed$", out, re.MULTILINE), out
