"""Smoke test of the installed console in a real terminal (tmux, 80x24): open, search, open a user, quit.

The other console tests drive the app headless; this one runs the ``provtui`` entry point as
a person would, so the terminal driver, the key parsing and the exit are real too.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from provtui.demo_data import seed_demo
from provtui.service import Service

TMUX = shutil.which("tmux")
PROVTUI = Path(sys.executable).with_name("provtui")  # the installed entry point, next to the venv's python
DEADLINE = 30.0  # seconds: generous, for a loaded machine; the test polls, it never waits a fixed time

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")


class Terminal:
    """One tmux server of our own (its own socket), one 80x24 window running a command."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-S", str(self.socket), *args], check=True, capture_output=True, text=True).stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "smoke", command)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "smoke", *(["-l"] if literal else []), *keys)

    def screen(self, *, styled: bool = False) -> str:
        """The text on screen (``styled``: with its colours, as escape sequences)."""
        return self.tmux("capture-pane", "-p", *(["-e"] if styled else []), "-t", "smoke")

    def wait_until(self, shown: Callable[[str], bool], what: str, *, styled: bool = False) -> str:
        """The screen once ``shown(screen)`` holds."""
        deadline = time.monotonic() + DEADLINE
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen(styled=styled)
            if shown(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"never showed {what}; the screen:\n{self.screen()}")

    def wait_for(self, *texts: str) -> str:
        """The screen once it shows every one of ``texts``."""
        return self.wait_until(lambda screen: all(text in screen for text in texts), repr(texts))

    def close(self) -> None:
        subprocess.run([TMUX, "-S", str(self.socket), "kill-server"], check=False, capture_output=True)


def wait_for_file(path: Path) -> str:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path.name} was never written: the console did not exit")


@pytest.fixture
def terminal(tmp_path):
    terminal = Terminal(tmp_path / "tmux.sock")
    yield terminal
    terminal.close()


def test_installed_console_search_open_a_user_and_quit(tmp_path, terminal):
    assert PROVTUI.exists(), f"{PROVTUI}: install the package (pip install -e .)"
    store = tmp_path / "store"
    seed_demo(Service.init(store), [], manual_app=None)  # the demo's people and groups; no app, so no network
    exit_file = tmp_path / "exit"
    # Textual draws on stderr: it stays the terminal.  The exit status is written where the test can read it.
    terminal.start(f"{shlex.quote(str(PROVTUI))} --store {shlex.quote(str(store))}; echo $? > {shlex.quote(str(exit_file))}")

    screen = terminal.wait_for("Search login", "alovelace", "36 of 36 users")
    row = next(i for i, line in enumerate(screen.splitlines()) if "Search login" in line)
    field = terminal.screen(styled=True).splitlines()[row]
    terminal.keys("/")
    # Focus moves on the app's next turn: keys sent with the "/" would reach the table.  Type once the field
    # is drawn focused (its colours change).
    terminal.wait_until(lambda screen: screen.splitlines()[row] != field, "the search field focused", styled=True)
    terminal.keys("Lovelace", literal=True)
    screen = terminal.wait_for("1 of 36 users matching")
    assert "aturing" not in screen
    terminal.keys("Enter")  # from the search field to the table
    terminal.keys("Enter")  # open the highlighted user
    screen = terminal.wait_for("alovelace@example.com", "Software Engineer")
    assert "Lovelace" in screen

    terminal.keys("C-q")
    assert wait_for_file(exit_file) == "0\n"
