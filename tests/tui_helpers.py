"""Shared fixtures for the TUI tests: the seeded demo store and a 50,000-user store."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from textual.worker import WorkerState

from provtui.clock import utc_now_iso
from provtui.demo_data import seed_demo
from provtui.directory import USERS
from provtui.domain.users import validate_profile
from provtui.service import Service

FROZEN_TIME = "2026-01-15T09:00:00+00:00"
DEMO_APPS = [("Slack", "http://127.0.0.1:9/v2", "SLACK_TOKEN"), ("GitHub", "http://127.0.0.1:9/v2", "GH_TOKEN")]
STATES = ("active", "active", "active", "active", "staged", "suspended", "deprovisioned")
DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "People", "Marketing", "Legal")


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
                profile = validate_profile({
                    "login": login, "email": f"{login}@example.com", "firstName": f"First{n}", "lastName": f"Last{n}",
                    "department": DEPARTMENTS[n % len(DEPARTMENTS)],
                })
                uid = f"u{n:011d}"
                tx.put(USERS, uid, {"id": uid, "login": login, "state": STATES[n % len(STATES)], "source": "provtui",
                                    "profile": profile, "created": now, "state_changed": now})
    return service


@pytest.fixture
def frozen_clock(monkeypatch):
    monkeypatch.setenv("PROVTUI_FROZEN_TIME", FROZEN_TIME)


@pytest.fixture
def demo(tmp_path, frozen_clock) -> Service:
    return demo_service(tmp_path / "demo-store")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Service:
    return big_service(tmp_path_factory.mktemp("big") / "store")


async def settle(pilot) -> None:
    """Let debounced searches and the detail loads they trigger finish, and the screen repaint."""
    for _ in range(20):  # a finished search posts a message that starts the detail load: go round until quiet
        await pilot.pause()
        if not any(worker.state in (WorkerState.PENDING, WorkerState.RUNNING) for worker in pilot.app.workers):
            break
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()
