"""Fixtures for the integration tests: a real OpenLDAP slapd (see provtui.testing.slapd).

One slapd serves the whole session (per xdist worker); each test writes under its own OU (``ldap_ou``) so
tests never see each other's entries; an LDAP app's test writes under its own ``tree``. The helpers that are
not fixtures (``ldap_app_target``, ``make_ldap_service``, ``sync``, ``entries``, the variables' names) are in
tests/helpers/ldap.py. (The SCIM server and the ``cli`` fixture are tests/conftest.py's.)
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from provtui.connectors.ldap import LdapSettings
from provtui.testing.slapd import SlapdProcess, slapd_available
from tests.helpers.ldap import ADMIN_PASSWORD_ENV, LDAP_APP_PASSWORD_ENV, PASSWORD_ENV


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdProcess]:
    """One real slapd for the session: base dc=example,dc=org, ou=people/groups/disabled, AD test schema."""
    if not slapd_available():
        pytest.skip("OpenLDAP slapd and ldap-utils are not installed (apt-get install slapd ldap-utils)")
    with SlapdProcess() as server:
        yield server


@pytest.fixture
def ldap_ou(slapd: SlapdProcess) -> str:
    """A fresh, empty OU under the base for this test only."""
    return slapd.add_ou(f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def ldap_settings(slapd: SlapdProcess, monkeypatch: pytest.MonkeyPatch) -> Callable[..., LdapSettings]:
    """Build LdapSettings for the session's slapd, bound as the reader (read-only, subject to the
    500-entry limit), or with ``as_admin=True`` as the rootdn (for LdapWriter)."""
    monkeypatch.setenv(PASSWORD_ENV, slapd.reader_password)
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, slapd.admin_password)

    def make(base_dn: str, *, as_admin: bool = False, **overrides: Any) -> LdapSettings:
        values: dict[str, Any] = {
            "uri": slapd.uri,
            "base_dn": base_dn,
            "timeout": 5.0,
            "bind_dn": slapd.bind_dn if as_admin else slapd.reader_dn,
            "password_env": ADMIN_PASSWORD_ENV if as_admin else PASSWORD_ENV,
        }
        values.update(overrides)
        return LdapSettings(**values)

    return make


@pytest.fixture
def tree(slapd: SlapdProcess, ldap_ou: str, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """This test's own subtree: ou=people (the app's base) and ou=disabled beside it."""
    monkeypatch.setenv(LDAP_APP_PASSWORD_ENV, slapd.admin_password)
    return SimpleNamespace(base=ldap_ou, people=slapd.add_ou("people", ldap_ou), disabled=slapd.add_ou("disabled", ldap_ou))


class _Recorder(http.server.BaseHTTPRequestHandler):
    def _any(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[http.server.ThreadingHTTPServer]:
    """An endpoint of an app admin's own, recording the headers of every request it gets (``attacker.seen``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
