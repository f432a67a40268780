"""Fixtures for tests against a real OpenLDAP slapd (see provtui.testing.slapd).

Import them into a test module: ``from ldap_fixtures import slapd, ldap_ou, ldap_settings  # noqa: F401``.
One slapd serves the whole session (per xdist worker); each test writes under its own OU
(``ldap_ou``) so tests never see each other's entries. LDAP *apps* (provisioning targets) use
``tree``, ``ldap_app_target``, ``make_ldap_service``, ``sync`` and ``entries``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from provtui.compose import build_engine
from provtui.connectors.ldap import LdapSettings
from provtui.engine.reconciler import SyncReport
from provtui.service import Service
from provtui.testing.slapd import AD_TEST_USER_FILTER, SlapdProcess, slapd_available

PASSWORD_ENV = "PROVTUI_TEST_LDAP_PASSWORD"
ADMIN_PASSWORD_ENV = "PROVTUI_TEST_LDAP_ADMIN_PASSWORD"
LDAP_APP_PASSWORD_ENV = "PROVTUI_TEST_LDAP_APP_PW"  # an LDAP app's bind password (the rootdn's)
# AD apps against slapd's AD test schema: users are inetOrgPerson + provtuiADUser entries.
AD_TEST_OPTIONS = {"user_object_classes": ["inetOrgPerson", "provtuiADUser"], "user_filter": AD_TEST_USER_FILTER}


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
        values: dict[str, Any] = {"uri": slapd.uri, "base_dn": base_dn, "timeout": 5.0,
                                  "bind_dn": slapd.bind_dn if as_admin else slapd.reader_dn,
                                  "password_env": ADMIN_PASSWORD_ENV if as_admin else PASSWORD_ENV}
        values.update(overrides)
        return LdapSettings(**values)

    return make


# --------------------------------------------------------------------------- LDAP apps (provisioning targets)


@pytest.fixture
def tree(slapd: SlapdProcess, ldap_ou: str, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """This test's own subtree: ou=people (the app's base) and ou=disabled beside it."""
    monkeypatch.setenv(LDAP_APP_PASSWORD_ENV, slapd.admin_password)
    return SimpleNamespace(base=ldap_ou, people=slapd.add_ou("people", ldap_ou), disabled=slapd.add_ou("disabled", ldap_ou))


def ldap_app_target(server: SlapdProcess, tree: SimpleNamespace, **overrides: Any) -> dict[str, Any]:
    """An LDAP app's connection (Service.create_app's ``ldap=``) bound as the rootdn, writing under tree.people."""
    return {"uri": server.uri, "bind_dn": server.bind_dn, "password_env": LDAP_APP_PASSWORD_ENV, "base_dn": tree.people,
            "flavor": "openldap", "disable_method": f"ou:{tree.disabled}", **overrides}


def make_ldap_service(path, ldap: dict[str, Any], **settings: Any) -> Service:
    """A store with one LDAP app, "Directory"; ``service.hire(login, ...)`` adds an active user assigned to it."""
    service = Service.init(path, actor="admin")
    service.create_app("Directory", ldap=ldap, **settings)

    def hire(login: str, first: str = "Ada", last: str = "Lovelace", **extra: Any) -> str:
        service.create_user(login, f"{login}@example.org", first, last, extra, activate=True)
        service.assign("Directory", login=login)
        return login

    service.hire = hire  # type: ignore[attr-defined]
    return service


async def sync(service: Service, **kwargs: Any) -> SyncReport:
    """Run the real reconciler until nothing is left to do."""
    reconciler = build_engine(service, **kwargs)
    try:
        return await reconciler.run_until_idle()
    finally:
        await reconciler.aclose()


def entries(server: SlapdProcess, base: str, search_filter: str = "(objectClass=inetOrgPerson)") -> dict[str, dict]:
    """DN -> attributes (lists of values) of the entries under ``base``, read as the rootdn."""
    with server.connection() as conn:
        conn.search(base, search_filter, attributes=["*", "entryUUID"])
        return {entry.entry_dn: entry.entry_attributes_as_dict for entry in conn.entries}
