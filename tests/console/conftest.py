"""Fixtures for the console tests: a frozen clock, the seeded demo store, a 50,000-user store (built once a
module) and the demo on a real scim2-server (tests/conftest.py's ``scim_server``) with everyone provisioned.
The helpers they use are in tests/helpers/console.py."""

from __future__ import annotations

import pytest

from provtui.compose import build_engine
from provtui.demo_data import seed_demo
from provtui.service import Service
from tests.helpers.console import FROZEN_TIME, TOKEN_ENV, big_service, demo_service


@pytest.fixture
def frozen_clock(monkeypatch):
    monkeypatch.setenv("PROVTUI_FROZEN_TIME", FROZEN_TIME)


@pytest.fixture
def demo(tmp_path, frozen_clock) -> Service:
    return demo_service(tmp_path / "demo-store")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Service:
    return big_service(tmp_path_factory.mktemp("big") / "store")


@pytest.fixture
async def live(tmp_path, frozen_clock, scim_server, monkeypatch) -> Service:
    """The demo directory with Slack and GitHub on a real scim2-server, everyone provisioned already."""
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    service = Service.init(tmp_path / "store", actor="admin")
    seed_demo(service, [("Slack", scim_server.url, TOKEN_ENV), ("GitHub", scim_server.url, TOKEN_ENV)])
    engine = build_engine(service, notify=False)
    report = await engine.run_until_idle()
    await engine.aclose()
    assert report.ok
    return service
