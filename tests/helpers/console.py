"""Helpers for the console tests (and tests/bench/bench_console.py): the seeded demo store, a 50,000-user store,
a lived-in store, a fake downstream; waiting for the console to settle, pressing keys, reading its screen, and
taking a snapshot after keys (``snap``).

The fixtures built from them (``frozen_clock``, ``demo``, ``big``, ``live``) are in tests/console/conftest.py.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from textual.widgets import Input
from textual.worker import WorkerState

from provtui.clock import utc_now_iso
from provtui.compose import build_engine
from provtui.demo_data import seed_demo
from provtui.domain.users import validate_profile
from provtui.model.schema import USERS
from provtui.service import Service
from provtui.tui.app import build_app

FROZEN_TIME = "2026-01-15T09:00:00+00:00"
TOKEN_ENV = "PROVTUI_TUI_TEST_TOKEN"
DEMO_APPS = [("Slack", "http://127.0.0.1:9/v2", "SLACK_TOKEN"), ("GitHub", "http://127.0.0.1:9/v2", "GH_TOKEN")]
STATES = ("active", "active", "active", "active", "staged", "suspended", "deprovisioned")
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")
NARROW, WIDE = (80, 24), (120, 40)  # the two terminal sizes snapshots are taken at


def demo_service(path: Path) -> Service:
    """The 36-person demo directory, with deterministic timestamps (the clock must be frozen first)."""
    service = Service.init(path, actor="admin")
    seed_demo(service, DEMO_APPS)
    return service


def big_service(path: Path, count: int = 50_000, batch: int = 5_000) -> Service:
    """A store of ``count`` users, written in a few large transactions (one per batch) to stay fast."""
    service = Service.init(path, actor="admin")
    now = utc_now_iso()
    numbers = iter(range(count))
    while chunk := list(itertools.islice(numbers, batch)):
        with service.store.transaction() as tx:
            for n in chunk:
                login = f"user{n:06d}"
                profile = validate_profile(
                    {
                        "login": login,
                        "email": f"{login}@example.com",
                        "firstName": f"First{n}",
                        "lastName": f"Last{n}",
                        "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                    }
                )
                uid = f"u{n:011d}"
                tx.put(
                    USERS,
                    uid,
                    {
                        "id": uid,
                        "login": login,
                        "state": STATES[n % len(STATES)],
                        "source": "provtui",
                        "profile": profile,
                        "created": now,
                        "state_changed": now,
                    },
                )
    return service


async def settle(pilot) -> None:
    """Let debounced searches and the detail loads they trigger finish, and the screen repaint.

    The engine's worker runs for as long as the app: it is not waited for.
    """
    for _ in range(20):  # a finished search posts a message that starts the detail load: go round until quiet
        await pilot.pause()
        busy = [w for w in pilot.app.workers if w.group != "engine" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        if not busy:
            break
        await pilot.app.workers.wait_for_complete(busy)
    await pilot.pause()


def screen_text(app) -> str:
    """The screen as plain text (what a person would read), for assertions and debugging."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False, color_system=None)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens, simplify=True))
    return console.export_text()


async def press(pilot, *keys: str) -> None:
    """Press keys; "=text" types text into the focused field at once (one key's worth of waiting, not one per letter)."""
    for key in keys:
        if key.startswith("=") and len(key) > 1:
            await settle(pilot)  # the field the keys before it opened
            field = pilot.app.focused
            assert isinstance(field, Input), field
            field.insert_text_at_cursor(key[1:])
            await settle(pilot)
        else:
            await pilot.press(key)
    await settle(pilot)


def keys(*pressed: str, user: str | None = None, group: str | None = None, app: str | None = None):
    """A run_before: open a user, group or app page if asked (as enter on it would), then press keys
    ("=text" types the text), settling after each; then every cursor stops blinking."""

    async def run(pilot) -> None:
        await settle(pilot)
        if user:
            pilot.app.open_user(user)
        if group:
            pilot.app.open_group(group)
        if app:
            pilot.app.open_app(app)
        await settle(pilot)
        for key in pressed:
            if key.startswith("="):  # typed into the focused field at once
                pilot.app.focused.insert_text_at_cursor(key[1:])
            else:
                await pilot.press(key)
            await settle(pilot)
        for screen in pilot.app.screen_stack:
            for field in screen.query(Input):
                field.cursor_blink = False
        await settle(pilot)

    return run


def snap(snap_compare, service, size, *pressed: str, **page: str) -> bool:
    return snap_compare(build_app(service, label="demo"), terminal_size=size, run_before=keys(*pressed, **page))


async def wait_for(pilot, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the screen shows:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


class FakeConnector:
    """An in-memory downstream for the real reconciler: deterministic, no network.

    ``refuse``: userNames the app rejects (HTTP 400, as a server says it); ``down``: every call
    fails before any HTTP answer, for good (as an app the engine cannot use at all), so the engine
    fails each account and quarantines the app.  (A real 401 would pause the app as "credentials
    rejected" instead, its accounts left queued: tests/integration/test_sync_convergence.py.)
    """

    naming_attribute = "userName"

    def __init__(self, name: str, refuse: dict[str, str] | None = None, down: bool = False) -> None:
        self.name = name
        self.refuse = refuse or {}
        self.down = down
        self.users: dict[str, dict] = {}

    def _check(self, user_name: str | None = None) -> None:
        from provtui.connectors.scim import DownstreamError

        if self.down:
            raise DownstreamError("invalid bearer token", status=None)
        if user_name in self.refuse:
            raise DownstreamError(self.refuse[user_name], status=400, scim_type="invalidValue")

    async def find_user(self, *, external_id=None, user_name=None):
        self._check()  # nothing is found: every account is created

    async def create_user(self, attributes, *, active=True):
        from provtui.connectors.scim import RemoteUser

        self._check(attributes.get("userName"))
        remote_id = f"{self.name.lower()}-{attributes['userName']}"
        self.users[remote_id] = dict(attributes)
        return RemoteUser(remote_id, active, dict(attributes))

    async def update_user(self, remote_id, changed, *, full=None, active=None):
        self._check()

    async def delete_user(self, remote_id):
        self._check()
        self.users.pop(remote_id, None)

    async def aclose(self) -> None:
        pass


def lived_in_service(path: Path, monkeypatch) -> Service:
    """The demo directory after a provisioning run against fake apps (the clock must be frozen first).

    Ids are made deterministic, so the engine's order is too.  GitHub refuses alovelace,
    Slack's token is wrong (quarantined after ten failures), Payroll (manual) has open
    tasks, and kthompson is suspended with his GitHub account still active (a deprovision pending).
    """
    import asyncio
    import itertools

    import provtui.engine.reconciler
    import provtui.service

    counter = itertools.count(1)
    for part in ("change", "users", "groups", "apps", "admins", "provisioning"):  # what service.py was: ids in order
        monkeypatch.setattr(f"provtui.service.{part}.new_id", lambda: f"{next(counter):012x}", raising=False)
    # Results are committed in batches of a size, never of an age: the trail's order does not depend on timing.
    monkeypatch.setattr(provtui.engine.reconciler, "FLUSH_SECONDS", 3600.0)
    service = demo_service(path)
    connectors = {
        "GitHub": FakeConnector("GitHub", refuse={"alovelace": "userName 'alovelace' is reserved for an organisation"}),
        "Slack": FakeConnector("Slack", down=True),
    }

    async def no_wait(_: float) -> None:
        pass

    async def provision() -> None:
        engine = build_engine(service, notify=False, connector_factory=lambda app: connectors[app["name"]], sleep=no_wait)
        await engine.run_until_idle()

    asyncio.run(provision())
    service.change_state("kthompson", "suspend")
    return service
