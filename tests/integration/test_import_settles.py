"""A second full run of any source with nothing changed reports and writes nothing but its own record (issue #17, 3):
HR CSV and app imports here; LDAP in test_import_ldap_identity.py (OpenLDAP) and the AD tests (Samba)."""

from __future__ import annotations

from pathlib import Path

from provtui.model.schema import USERS
from provtui.service import Service
from tests.helpers.ldap import CHANGED

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hr"


def test_hr_exports_read_twice_settle(tmp_path):
    service = Service.init(tmp_path / "store", actor="admin")
    for export in ("workday_export.csv", "bamboohr_export.csv"):
        data = (FIXTURES / export).read_bytes()
        source = export.split("_")[0]
        service.add_source(source, "csv", {})
        first = service.import_csv(data, source=source, confirm=True)
        assert first["created"] > 0
        users = dict(service.store.all(USERS))
        seq = service.store.seq
        again = service.import_csv(data, source=source)
        assert all(again[k] == 0 for k in CHANGED), again
        assert service.import_csv(data, source=source, dry_run=True)["actions"] == []
        assert service.store.all(USERS) == users and service.store.seq <= seq + 1  # at most the run's own record


def test_an_app_import_read_twice_links_and_changes_nothing(tmp_path, monkeypatch):
    import asyncio

    from provtui.connectors.scim import ScimConnector
    from provtui.model.schema import ACCOUNTS, ORPHANS
    from provtui.testing.scim_server import ScimServerProcess

    with ScimServerProcess(token="settle-token") as server:
        monkeypatch.setenv("PROVTUI_TEST_SETTLE_TOKEN", server.token)

        async def accounts() -> None:
            async with ScimConnector(server.url, server.token) as connector:
                for name in ("ada", "ghost"):
                    await connector.create_user({"userName": name, "name.givenName": name, "name.familyName": "X"}, active=True)

        asyncio.run(accounts())
        service = Service.init(tmp_path / "store", actor="admin")
        service.create_user("ada", "ada@example.com", "Ada", "Lovelace", activate=True)
        service.create_app("Chat", scim_url=server.url, token_env="PROVTUI_TEST_SETTLE_TOKEN")
        first = service.import_app("Chat", confirm=True)
        assert first["linked"] == 1 and first["orphans"] == 1

        def tables() -> dict:  # an orphan's "seen" is when a run last saw it: the run's own record, as its calls are
            state = {t: dict(service.store.all(t)) for t in (USERS, ACCOUNTS, ORPHANS)}
            state[ORPHANS] = {k: {f: v for f, v in doc.items() if f != "seen"} for k, doc in state[ORPHANS].items()}
            return state

        before = tables()
        for _ in range(2):
            again = service.import_app("Chat")
            assert (again["linked"], again["already_linked"], again["orphans"]) == (0, 1, 1)
            assert tables() == before
