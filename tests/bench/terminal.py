"""A console's first frame in a real terminal (tmux, 80x24): from starting its process in a new tmux session to
the first capture-pane showing a text, beside the floors measured in the same run (bench_server.py runs it).

Floors: a shell's ``echo`` (what tmux itself costs); a bare Textual app showing one table row (textual_floor.py:
Python, Textual and http.client imported, nothing of provtui: the attached console's floor); the same app after
reading every file of the store and parsing each record (the embedded console's floor, #18).
"""

from __future__ import annotations

import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.bench_console import ms

TMUX = shutil.which("tmux")
SIZE = (80, 24)
FLOOR_APP = Path(__file__).with_name("textual_floor.py")


class Terminal:
    """A tmux server of our own (its own socket; tests/console/test_tui_tmux.py's approach), kept up by an idle
    session so that each run's cost is a new 80x24 session, not a tmux server starting."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket, self.env, self.runs = socket, env, 0
        self.tmux("new-session", "-d", "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-s", "keep", "sleep 100000")

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        assert TMUX is not None
        return subprocess.run([TMUX, "-S", str(self.socket), *args], check=check, capture_output=True, text=True, env=self.env)

    def first_shown(self, command: str, text: str, timeout: float) -> tuple[float, str]:
        """Start ``command`` in a new session; (seconds until a capture shows ``text``, the session's name)."""
        self.runs += 1
        name = f"run{self.runs}"
        started = time.perf_counter()
        self.tmux("new-session", "-d", "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-s", name, command)
        deadline = started + timeout
        screen = ""
        while time.perf_counter() < deadline:
            screen = self.tmux("capture-pane", "-p", "-t", name, check=False).stdout
            if text in screen:
                return time.perf_counter() - started, name
            time.sleep(0.005)
        self.end(name)
        raise TimeoutError(f"{command!r}: {text!r} not shown within {timeout:.0f} s; the screen:\n{screen}")

    def quit(self, name: str, exit_file: Path, timeout: float = 30.0) -> str:
        """ctrl+q, then wait for the session to end; the console's exit status (as its shell wrote it)."""
        self.tmux("send-keys", "-t", name, "C-q", check=False)
        deadline = time.perf_counter() + timeout
        while self.tmux("has-session", "-t", name, check=False).returncode == 0:
            if time.perf_counter() > deadline:
                self.end(name)
                return "killed: ctrl+q did not quit"
            time.sleep(0.02)
        return exit_file.read_text().strip() if exit_file.exists() else "?"

    def end(self, name: str) -> None:
        self.tmux("kill-session", "-t", name, check=False)

    def close(self) -> None:
        self.tmux("kill-server", check=False)


def measure_terminal(
    workdir: Path, store: Path, sides: dict[str, str], shown: str, repeat: int, timeout: float, env: dict[str, str]
) -> dict:
    """Each of ``sides`` (name -> shell command) started ``repeat`` times, interleaved, until ``shown`` appears
    (quit with ctrl+q between runs); the floors as many times; medians in ms."""
    empty = {"floor_ms": None, "textual_floor_ms": None, "store_floor_ms": None, "runs_ms": {}, "median_ms": {}}
    if TMUX is None:
        return {**empty, "reason": "tmux is not installed"}
    python = shlex.quote(sys.executable)
    exit_file = workdir / "console-exit"
    bare_app = f"{python} {shlex.quote(str(FLOOR_APP))}"
    floors = {
        "floor_ms": ("echo shell-ready; sleep 30", "shell-ready"),
        "textual_floor_ms": (bare_app, "textual-ready"),
        "store_floor_ms": (f"{bare_app} {shlex.quote(str(store))}", "textual-ready"),
    }
    terminal = Terminal(workdir / "tmux.sock", env)
    try:
        floor_runs: dict[str, list[float]] = {key: [] for key in floors}
        runs: dict[str, list[float]] = {side: [] for side in sides}
        exits: dict[str, list[str]] = {side: [] for side in sides}
        for _ in range(repeat):
            for key, (command, text) in floors.items():
                took, name = terminal.first_shown(command, text, timeout)
                floor_runs[key].append(took)
                terminal.end(name)
            for side, command in sides.items():
                exit_file.unlink(missing_ok=True)
                took, name = terminal.first_shown(f"{command}; echo $? > {shlex.quote(str(exit_file))}", shown, timeout)
                runs[side].append(took)
                exits[side].append(terminal.quit(name, exit_file))
    finally:
        terminal.close()
    return {
        **{key: ms(statistics.median(values)) for key, values in floor_runs.items()},
        "runs_ms": {side: [ms(t) for t in values] for side, values in runs.items()},
        "median_ms": {side: ms(statistics.median(values)) for side, values in runs.items()},
        "shown": shown,
        "exit_codes": exits,
        "reason": None,
    }
