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
TYPING_INTERVAL = 0.02  # seconds between keys: a fast typist, or a paste over SSH that arrives key by key

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

    def type(self, *keys: str, interval: float = TYPING_INTERVAL) -> None:
        """Type ``keys`` one at a time, ``interval`` seconds apart (paced by the clock, not by sleeps that add up):
        a character is sent as itself, a longer name (Escape, Enter) as that key."""
        start = time.monotonic()
        for n, key in enumerate(keys):
            time.sleep(max(0.0, start + n * interval - time.monotonic()))
            self.keys(key, literal=len(key) == 1)

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


def _start_console(tmp_path, terminal) -> Path:
    """The installed console on the demo's people and groups (no app, so no network), at its list of users."""
    store = tmp_path / "store"
    seed_demo(Service.init(store), [], manual_app=None)
    terminal.start(f"{shlex.quote(str(PROVTUI))} --store {shlex.quote(str(store))}")
    terminal.wait_for("Search login", "36 of 36 users")
    return store


def _filter_line(screen: str, header: str) -> str:
    """The nearest line with text above a list's ``header``: the screen's filter fields (groups, audit)."""
    lines = screen.splitlines()
    above = lines[: next(i for i, line in enumerate(lines) if header in line)]
    return next(line for line in reversed(above) if line.strip())


def _events(store: Path) -> int:
    return Service.open(store).audit_head()["events"]


def test_typing_fast_from_a_persons_page_every_letter_reaches_the_search(tmp_path, terminal):
    store = _start_console(tmp_path, terminal)
    before = _events(store)
    terminal.type("/", *"hopper", "Enter")  # the one hit opens
    terminal.wait_for("ghopper@example.com", "m Move")
    # Esc closes her page, / goes to the directory's search: none of t u r n g is a screen's key or her page's
    # (n: assign an app) on the way
    terminal.type("Escape", "/", *"turing")
    # the count line can come a frame before the preview follows the one row: wait for the screen the keys make
    screen = terminal.wait_until(
        lambda screen: "1 of 36 users matching “turing”" in screen and "aturing" in screen and "ghopper@example.com" not in screen,
        "aturing's search",
    )
    assert "╭" not in screen  # no dialog opened
    terminal.type("Escape", "Escape", "/", *"lovelace", "Enter")
    terminal.wait_for("alovelace@example.com", "m Move")
    assert _events(store) == before  # no key changed anything


def test_typing_fast_through_screen_switches_each_key_lands_on_the_screen_it_was_typed_for(tmp_path, terminal):
    _start_console(tmp_path, terminal)
    # a screen's key and, at once, its search: g builds the groups screen while / and the letters arrive
    terminal.type("g", "/", *"eng")
    screen = terminal.wait_for("1 of 6 groups")
    assert _filter_line(screen, "Group  ").split() == ["eng"] and "engineering" in screen
    # from its filter to the list, then the audit log and its filter by person: every event naming ghopper
    terminal.type("Enter", "l", "/", *"ghopper")
    screen = terminal.wait_for("events 1–3, newest first")
    assert _filter_line(screen, "Time  ").split() == ["Actor", "Action", "ghopper"]
    assert "finance" in screen and "all-staff" in screen
    # the dashboard has no search: / goes to the directory's, and no letter of "turing" switches screens
    terminal.type("Enter", "d", "/", *"turing")
    screen = terminal.wait_for("1 of 36 users matching “turing”")
    assert "▊  turing " in screen  # the directory's search field holds every letter
    # a person's page opened by Enter, and a screen's key typed at once: u is the list, the letters its search
    terminal.type("Enter", "Enter", "u", "/", *"hopper")
    # the count line can come a frame before the rows and the preview: wait for the screen the keys make
    # (a lost or misdelivered key never makes it: the search would not be "hopper", or aturing's page would stay)
    terminal.wait_until(
        lambda screen: "1 of 36 users matching “hopper”" in screen and "ghopper" in screen and "aturing" not in screen, "ghopper's search"
    )
