"""Helpers for tests against a real OpenLDAP slapd (see provtui.testing.slapd).

The fixtures (``slapd``, ``ldap_ou``, ``ldap_settings``, ``tree``) are in tests/integration/conftest.py:
one slapd serves the whole session (per xdist worker); each test writes under its own OU (``ldap_ou``)
so tests never see each other's entries. LDAP *apps* (provisioning targets) use the ``tree`` fixture
and ``ldap_app_target``, ``make_ldap_service``, ``sync`` and ``entries`` from here.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from provtui.compose import build_engine
from provtui.engine.reconciler import SyncReport
from provtui.service import Service
from provtui.testing.slapd import AD_TEST_USER_FILTER, SlapdProcess

PASSWORD_ENV = "PROVTUI_TEST_LDAP_PASSWORD"
ADMIN_PASSWORD_ENV = "PROVTUI_TEST_LDAP_ADMIN_PASSWORD"
LDAP_APP_PASSWORD_ENV = "PROVTUI_TEST_LDAP_APP_PW"  # an LDAP app's bind password (the rootdn's)
# AD apps against slapd's AD test schema: users are inetOrgPerson + provtuiADUser entries.
AD_TEST_OPTIONS = {"user_object_classes": ["inetOrgPerson", "provtuiADUser"], "user_filter": AD_TEST_USER_FILTER}


def ldap_app_target(server: SlapdProcess, tree: SimpleNamespace, **overrides: Any) -> dict[str, Any]:
    """An LDAP app's connection (Service.create_app's ``ldap=``) bound as the rootdn, writing under tree.people."""
    return {
        "uri": server.uri,
        "bind_dn": server.bind_dn,
        "password_env": LDAP_APP_PASSWORD_ENV,
        "base_dn": tree.people,
        "flavor": "openldap",
        "disable_method": f"ou:{tree.disabled}",
        **overrides,
    }


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


CHANGED = ("created", "updated", "suspended", "deactivated", "reactivated")  # what an import run counts as change


def quiet(result: dict[str, Any]) -> bool:
    """Whether an import run changed nobody and no membership (a run that settled)."""
    groups = result.get("groups") or {}
    return all(result[k] == 0 for k in CHANGED) and groups.get("members_added", 0) == groups.get("members_removed", 0) == 0


def assert_full_runs_settle(service: Service, source: str, runs: int = 2) -> None:
    """Full runs of an LDAP source with nothing changed in the directory: none plans, reports or writes a change
    (each writes its own record only: the run's mark and time)."""
    seq = service.store.seq
    for _ in range(runs):
        again = service.import_ldap(source, full=True)
        assert quiet(again), again
        plan = service.import_ldap(source, full=True, dry_run=True)
        assert plan["actions"] == [] and {g["action"] for g in plan["group_actions"]} <= {"unchanged"}, plan
    assert service.store.seq == seq + runs


def add_ad_source(service: Service, dc: Any, base: str, *, password_env: str, name: str = "ad", **options: Any) -> None:
    """An AD source on a Samba DC (provtui.testing.samba.SambaDC): LDAPS trusting its CA, bound as the Administrator."""
    service.add_ldap_source(
        name,
        uri=dc.ldaps_uri,
        bind_dn=dc.admin_dn,
        password_env=password_env,
        base_dn=base,
        flavor="ad",
        ca_certificates=Path(dc.ca_file).read_text(),
        **options,
    )
