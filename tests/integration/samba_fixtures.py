"""Fixtures for tests against a real Samba 4 AD domain controller (see provtui.testing.samba): a pytest plugin.

tests/conftest.py registers it; alone: ``pytest -p tests.integration.samba_fixtures``. One DC serves the whole
session of each xdist worker (``samba_dc``), each on an address of its own, because Samba's ports are fixed:
worker N takes 127.0.0.(20 + N), or the next free one of its own series 20 + N + k * workers, so two workers never
race for one address. Each test writes under its own OU (``ad_ou``), so tests never see each other's entries.

Without Samba the tests skip, with the command that installs it, except in CI (``CI`` set, as .ci/run sets it):
there a missing Samba fails, since CI installs it and a skip would hide that the AD tests never ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from ldap3.core.exceptions import LDAPNoSuchObjectResult

from provtui.testing.samba import INSTALL_HINT, SambaDC, free_loopback_ip, samba_available

FIRST_HOST = 20  # 127.0.0.20 for gw0 (and without xdist), .21 for gw1, ...


def worker_series() -> tuple[int, int]:
    """(the first 127.0.0.x this worker tries, the step to its next one): disjoint for every xdist worker."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    number = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return FIRST_HOST + number, max(count, number + 1)


def require_samba() -> None:
    """Skip the test without Samba installed, or fail it in CI."""
    if samba_available():
        return
    message = f"Samba AD is not installed ({INSTALL_HINT})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: in CI the Samba tests must run, not skip", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    """One real Samba AD DC for this worker's session: EXAMPLE.TEST, LDAP and LDAPS (``ca_file``) on its own address."""
    require_samba()
    with SambaDC(free_loopback_ip(*worker_series())) as dc:
        yield dc


@pytest.fixture
def ad_ou(samba_dc: SambaDC) -> Iterator[str]:
    """A fresh, empty OU under the domain for this test only, deleted with everything in it afterwards."""
    dn = samba_dc.add_ou(f"t{uuid.uuid4().hex[:10]}")
    yield dn
    try:
        samba_dc.delete(dn)
    except LDAPNoSuchObjectResult:
        pass  # the test deleted it itself
