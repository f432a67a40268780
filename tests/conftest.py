"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provtui.connectors.scim_server import ScimServerProcess


@pytest.fixture(scope="session")
def scim_server() -> Iterator[ScimServerProcess]:
    """One real scim2-server for the session (token "test-token"); tests must use unique userNames."""
    with ScimServerProcess(token="test-token") as server:
        yield server
