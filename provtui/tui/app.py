"""The provtui terminal console: a Textual app over one Service.

The store is not thread-safe, so every service call made by the UI runs in a
thread through ``App.call_service`` under one lock, and the engine (async, on the
event loop) takes the same lock around each of its store accesses, never across a
network wait.  That keeps the loop free for keystrokes while a search scans
50,000 users, and searches free while the engine waits on a slow app.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from weakref import WeakSet

from textual import events, work
from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from provtui.domain.errors import NotAllowed, ProvtuiError
from provtui.service import StoreUnreadable
from provtui.tui.commands import ProvtuiCommands
from provtui.tui.messages import StoreChanged
from provtui.tui.text import ControlFilter
from provtui.tui.widgets.nav import NAV

T = TypeVar("T")
POLL_SECONDS = 1.0
NOTIFIED_POLL_SECONDS = 10.0  # where the store notifies commits, the poll is only a backstop
HISTORY_WARMUP_SECONDS = 1.5  # after start, the user-history index is built in the background
HELD_KEYS_POLL_SECONDS = 0.01  # how often a key typed during a screen switch looks whether it may go (on_event)
KEY_IN_FLIGHT_LIMIT = 0.5  # a key not back from its widget by then was dropped with its screen: the next one goes

if TYPE_CHECKING:
    from provtui.service import Service

# A top-level screen's module is imported when the screen is first shown, not before the first frame: the
# directory's alone is needed for that (importing them all cost ~60 ms of a 400 ms start, measured).
SCREENS = {
    "dashboard": "dashboard:DashboardScreen",
    "directory": "directory:DirectoryScreen",
    "groups": "group_detail:GroupsScreen",
    "apps": "apps:AppsScreen",
    "activity": "activity:ActivityScreen",
    "tasks": "tasks:TasksScreen",
    "audit": "audit:AuditScreen",
    "reports": "reports:ReportsScreen",
    "rules": "rules:RulesScreen",
}


def screen_class(mode: str) -> type[Screen]:
    """The class of a mode's screen (its module imported now, if it was not yet)."""
    module, _, name = SCREENS[mode].partition(":")
    screen: type[Screen] = getattr(importlib.import_module(f"provtui.tui.screens.{module}"), name)
    return screen


def new_screen(mode: str) -> Screen:
    return screen_class(mode)()


class Engine(Protocol):
    """What the console runs: built with the console's lock (provtui.compose), so the console never touches it."""

    async def run_until_idle(self) -> Any: ...


class ProvtuiApp(App):
    TITLE = "provtui"
    # Every screen's stylesheet, read once at start: a screen whose CSS is new makes Textual re-parse all the
    # CSS and restyle every widget of every screen (measured: ~0.2 s a screen, more as screens accumulate).
    CSS_PATH = [
        "app.tcss",
        *(
            f"screens/{name}.tcss"
            for name in (
                "directory",
                "help",
                "modals",
                "dashboard",
                "user_detail",
                "group_detail",
                "apps",
                "activity",
                "tasks",
                "audit",
                "reports",
                "rules",
                "bulk",
            )
        ),
    ]
    # A mode per top-level screen: each keeps its own stack of detail screens (a user's page, an app's).
    MODES = {mode: partial(new_screen, mode) for mode in SCREENS}
    DEFAULT_MODE = "directory"
    COMMANDS = App.COMMANDS | {ProvtuiCommands}
    # The screens' keys are shown in the line of screens under the header (widgets.nav), not the footer:
    # at 80 columns the footer is for what the current screen can do, then ? and the palette, which reach the
    # rest; esc and ctrl+q, the same everywhere, are in ? (tests/console/test_tui_footer.py keeps it in 80 columns).
    BINDINGS = [
        Binding("escape", "back", "Back", id="app.back", show=False),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False),
        Binding("q", "quit_or_close", "Quit (or close this page)", id="app.q", show=False),  # k9s / lazygit
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+p", "command_palette", "Palette", id="app.command_palette", priority=True),
        # Priority: handled as the key arrives, so keys typed right after it already go to the search
        # (a non-priority binding runs only once the key has bubbled up from the focused widget).
        Binding("slash", "focus_search", "Search", id="app.focus_search", show=False, priority=True),
        *(Binding(key, f"go('{mode}')", label, id=f"app.go.{mode}", show=False) for mode, key, label in NAV),
    ]

    def __init__(
        self, service: Service, *, engine: Engine | None = None, lock: threading.Lock | None = None, label: str | None = None
    ) -> None:
        """``lock``: the one the engine was built to hold around its store accesses (provtui.compose), which
        the console's threads take too."""
        super().__init__()
        self.service = service
        self.engine = engine
        # A directory read by query (PostgreSQL, here or behind a server): lists show their first rows, not every
        # match, and count matches up to a point (see directory.py).
        self.reads_by_query = bool(service.shared_store())
        self.service_lock = lock or threading.Lock()
        self.sub_title = label if label is not None else _store_label(service)
        self._control_filter = ControlFilter()
        self._held_keys: list[events.Key] = []  # typed while the key before or a screen switch was under way, in order
        self._key_in_flight: events.Key | None = None  # forwarded to the focused widget, not yet back up (on_key)
        self._key_sent = 0.0
        self._settled_screens: WeakSet[Screen] = WeakSet()  # built, with their first focus set: they take keys

    def get_line_filters(self):
        # last, over every rendered line: no control character a value brought along reaches the terminal
        return [*super().get_line_filters(), self._control_filter]

    def on_mount(self) -> None:
        # The store's documents live as long as the app; without this, each full
        # collection walks all of them (measured: 100-200 ms pauses at 50,000 users).
        gc.freeze()
        # A store that notifies commits (PostgreSQL) wakes the console at once; the poll stays, seldom, as a backstop.
        fd = self.service.commit_signal()
        if fd is not None:
            asyncio.get_running_loop().add_reader(fd, self._commit_signalled)
        self.set_interval(POLL_SECONDS if fd is None else NOTIFIED_POLL_SECONDS, self._poll_store)
        if self.engine is not None:
            self._run_engine()
        # Once the first screen is up: the first user page would otherwise read the whole audit trail.
        self.set_timer(HISTORY_WARMUP_SECONDS, self._prepare_history)

    @work(group="warmup", exit_on_error=False)
    async def _prepare_history(self) -> None:
        await self.call_service(self.service.prepare_history)

    # -- keys typed during a screen switch ----------------------------------------------

    # Textual runs a key's non-priority bindings (g: Groups) once the key has bubbled up from the focused widget,
    # but a priority one (/) at once, and a screen's key builds the new screen over a few turns of the loop. Keys
    # typed fast ("g/eng", a paste over SSH) would overtake each other, reach a screen without its widgets (no
    # search for /) or the one being left. So a key waits, in order, until the one before it came back up (or a
    # widget took it, as a field takes a letter) and the screen it lands on is built.

    async def on_event(self, event: events.Event) -> None:
        if not (isinstance(event, events.Key) and not event.is_forwarded):
            await super().on_event(event)
        elif self._held_keys or not self._ready_for_key():
            self._held_keys.append(event)
            if len(self._held_keys) == 1:
                self.set_timer(HELD_KEYS_POLL_SECONDS, self._deliver_held_keys)
        else:
            await self._take_key(event)

    async def _take_key(self, key: events.Key) -> None:
        # Textual stops a message on the hop to its sender (a key's is the app), so a key would look taken by a
        # widget just before it comes back up here; without a sender, a key stopped is one a widget took.
        key.set_sender(None)
        await super().on_event(key)
        self._key_in_flight = key if key.is_forwarded else None  # not forwarded: a priority binding ran it
        self._key_sent = time.monotonic()

    def on_key(self, event: events.Key) -> None:
        if event is self._key_in_flight:  # back up from the focused widget: its bindings run now (App._on_key)
            self._key_in_flight = None

    def _ready_for_key(self) -> bool:
        key = self._key_in_flight
        # _stop_propagation: a widget took the key; the limit: it was dropped (its screen closed before it ran)
        if key is not None and not key._stop_propagation and time.monotonic() - self._key_sent < KEY_IN_FLIGHT_LIMIT:
            return False
        try:
            screen = self.screen
        except ScreenStackError:  # no screen yet (starting) or any more (quitting)
            return True
        if screen in self._settled_screens:
            return True
        if screen.is_mounted:  # composed, its on_mount run; the focus it asked for is set on the next turn
            self.call_after_refresh(self._settled_screens.add, screen)
        return False

    async def _deliver_held_keys(self) -> None:
        while self._held_keys:
            if not self._ready_for_key():
                self.set_timer(HELD_KEYS_POLL_SECONDS, self._deliver_held_keys)
                return
            await self._take_key(self._held_keys.pop(0))

    # -- talking to the service --------------------------------------------------------

    async def call_service(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking service call in a thread, one at a time.

        Call it from an async worker: if the worker is cancelled the call still
        finishes (and releases the lock) but its result is dropped.
        """

        def locked() -> T:
            with self.service_lock:
                return fn(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def _commit_signalled(self) -> None:
        self.service.drain_commit_signal()
        self._poll_store()

    def _poll_store(self) -> None:
        if not any(w.group == "refresh" and w.is_running for w in self.workers):
            self._refresh_store()

    @work(group="refresh", exit_on_error=False)
    async def _refresh_store(self) -> None:
        # Another process (the CLI) may have committed: show it.
        if await self.call_service(self.service.refresh):
            self._store_changed()

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _run_engine(self) -> None:
        assert self.engine is not None
        while True:
            before = self.service.version()
            await self.engine.run_until_idle()
            if self.service.version() != before:  # an idle engine must not make every screen re-read 50,000 users each second
                self._store_changed()
            await asyncio.sleep(POLL_SECONDS)

    def _store_changed(self) -> None:
        # Every screen in the stack, not just the top one: a modal (help) may cover the directory.
        # Screens of other modes catch up when they are shown again (BaseScreen reloads on resume).
        for screen in self.screen_stack:
            screen.post_message(StoreChanged())

    def store_changed(self) -> None:
        """A screen changed the store: every screen shown re-reads it."""
        self._store_changed()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.report_worker_error(event.worker)
        if event.worker.group == "engine" and event.state == WorkerState.ERROR:
            self.set_timer(POLL_SECONDS * 5, self._run_engine)  # keep provisioning after a failed run

    def report_worker_error(self, worker: Worker) -> None:
        """The one place worker failures surface: a notification, not a crash."""
        if worker.state != WorkerState.ERROR:
            return
        error = worker.error
        if isinstance(error, StoreUnreadable):  # damage found while running: stop, as the CLI does (exit 5)
            self.exit(return_code=5, message=f"provtui: error: store: {error}")
            return
        if isinstance(error, ProvtuiError):  # refused by the service: its message says why
            title = "Not allowed" if isinstance(error, NotAllowed) else "Not done"
            self.notify(str(error), title=title, severity="error", markup=False)
        else:
            self.notify(f"{type(error).__name__}: {error}", title=f"{worker.group} failed", severity="error", markup=False)

    # -- actions -----------------------------------------------------------------------

    def action_help(self) -> None:
        from provtui.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        # Our bindings all have ids; Textual's inherited ones (scrolling, focus) mostly do not and are left out.
        # What this screen can do first, then the keys that work everywhere.
        nodes = [self.screen, *self.screen.walk_children(), self]
        self.push_screen(HelpScreen([b for node in nodes for _, b in node._bindings if b.id]))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":  # shown only where there is somewhere to go back to: a page over a screen
            return len(self.screen_stack) > 1
        if action == "focus_search" and isinstance(self.focused, Input):
            return False  # typing "/" in a field (a DN, a path, an expression): the key goes to the field
        # a dialog is answered (or escaped) first
        return not (action in ("go", "focus_search") and isinstance(self.screen, ModalScreen))

    def action_go(self, mode: str) -> None:
        """Show a top-level screen: the screen itself, not the last page opened over it (``u`` is the list)."""
        if mode != self.current_mode:
            self.switch_mode(mode)
        while len(self.screen_stack) > 1 and not isinstance(self.screen, ModalScreen):
            self.pop_screen()
        self.refresh_bindings()

    def action_back(self) -> None:
        self.go_back()

    def go_back(self) -> None:
        """escape: close a dialog or a page; on a top-level screen it does nothing (the screens are a key away:
        walking back through them hid where Esc would land)."""
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """The palette's Screenshot, saved where an admin over SSH finds it (Textual's default, ~/Downloads, is
        often missing there): ``path``, else the current directory, else provtui's data directory; it says where."""
        from textual._files import generate_datetime_filename

        directory = Path(path) if path else screenshot_directory()
        target = directory / (filename or generate_datetime_filename(self.title or "provtui", ".svg"))
        try:
            directory.mkdir(parents=True, exist_ok=True)
            target.write_text(self.export_screenshot(), encoding="utf-8")
        except OSError as error:
            self.notify(f"the screenshot could not be saved: {error.strerror}: {target}", severity="error")
            return
        self.notify(f"screenshot saved: {target}")

    def action_quit_or_close(self) -> None:
        """q: quit from a top-level screen; on a page over one, close the page (as lazygit's q closes a panel)."""
        if isinstance(self.screen, ModalScreen):
            return  # a dialog is answered (or escaped) first
        if len(self.screen_stack) > 1:
            self.pop_screen()
        else:
            self.exit()

    def open_user(self, login: str, *, then: str | None = None) -> None:
        """A user's page; ``then``: one of its actions to start once it has loaded."""
        from provtui.tui.screens.user_detail import UserDetailScreen

        self.push_screen(UserDetailScreen(login, then=then))

    def open_group(self, name: str) -> None:
        from provtui.tui.screens.group_detail import GroupDetailScreen

        self.push_screen(GroupDetailScreen(name))

    def open_app(self, name: str) -> None:
        from provtui.tui.screens.apps import AppDetailScreen

        self.push_screen(AppDetailScreen(name))

    def open_rule(self, name: str) -> None:
        """The rules screen with ``name`` in the editor."""
        self.action_go("rules")
        rules = screen_class("rules")
        self.call_later(lambda: self.screen.select_rule(name) if isinstance(self.screen, rules) else None)

    def action_focus_search(self) -> None:
        """/: this screen's search; where there is none (a person's page, the dashboard), the directory's."""
        try:
            search = self.screen.query_one("#search", Input)
        except NoMatches:
            self.action_go("directory")
            try:
                search = self.screen.query_one("#search", Input)
            except NoMatches:
                return
        # At once, not on the next turn (as Widget.focus does): keys typed right after "/" (a paste, a fast
        # typist over SSH) must reach the search, not fire the screen's shortcuts.
        self.screen.set_focus(search)


def screenshot_directory() -> Path:
    """Where a screenshot goes: the current directory if it can be written, else provtui's data directory."""
    here = Path.cwd()
    if os.access(here, os.W_OK):
        return here
    from platformdirs import user_data_dir

    return Path(user_data_dir("provtui")) / "screenshots"


def _store_label(service: Service) -> str:
    path = service.location
    if isinstance(path, str):  # a database's URL (no password in it)
        return path
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


def build_app(service: Service, *, engine: Engine | None = None, label: str | None = None) -> ProvtuiApp:
    """The console over ``service``; ``engine.run_until_idle()`` runs every second if given."""
    return ProvtuiApp(service, engine=engine, label=label)
