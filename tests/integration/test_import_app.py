"""App imports against a real scim2-server: match existing accounts to users, link them, list the orphans."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from provtui.compose import build_engine
from provtui.connectors.scim import ScimConnector
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.mapping import map_attributes
from provtui.model.schema import ACCOUNTS, DIRTY, account_key
from provtui.service import Service
from provtui.service.imports import SourceFailed
from provtui.testing.scim_server import ScimServerProcess

TOKEN_ENV = "PROVTUI_TEST_APP_IMPORT_TOKEN"
WORK = 'emails[type eq "work"].value'


@pytest.fixture
def server(monkeypatch) -> Iterator[ScimServerProcess]:
    """A scim2-server of this test's own: an app import lists every account the server holds."""
    with ScimServerProcess(token="import-token") as process:
        monkeypatch.setenv(TOKEN_ENV, process.token)
        yield process


def remote(server: ScimServerProcess, *accounts: dict[str, Any], active: bool = True) -> list[str]:
    async def create() -> list[str]:
        async with ScimConnector(server.url, server.token) as connector:
            return [(await connector.create_user(a, active=active)).id for a in accounts]

    return asyncio.run(create())


def account(user_name: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "userName": user_name,
        "name.givenName": user_name.capitalize(),
        "name.familyName": "Remote",
        WORK: email or f"{user_name}@example.com",
        **extra,
    }


@pytest.fixture
def org(tmp_path, server) -> Service:
    service = Service.init(tmp_path / "store", actor="admin")
    for login, email in (
        ("alice", "alice@example.com"),
        ("bob", "bob@corp.example"),
        ("carol", "carol@example.com"),
        ("dave", "dave@example.com"),
    ):
        service.create_user(login, email, login.capitalize(), "Person", activate=True)
    service.create_app("Chat", scim_url=server.url, token_env=TOKEN_ENV)
    for login in ("alice", "bob", "carol"):
        service.assign("Chat", login=login)  # queued: the tests sync when they mean to
    return service


def linked(service: Service, login: str) -> str | None:
    app = service.directory.app("Chat")
    return (service.store.get(ACCOUNTS, account_key(app["id"], service.user_view(login)["id"])) or {}).get("remote_id")


def calls(service: Service) -> list[tuple[str, str]]:
    return [(e["after"]["method"], e["after"]["path"]) for e in service.audit() if e["action"] == "downstream.call"]


def test_match_by_user_name_dry_run_hold_confirm_and_orphans(org, server):
    alice = org.user_view("alice")
    # alice's account already holds what provtui would send; dave is not entitled to Chat.
    [alice_id, robert_id, dave_id, ghost_id] = remote(
        server,
        {**map_attributes(alice["id"], alice["profile"]), "name.familyName": "Person"},
        account("robert", "bob@corp.example"),
        account("dave"),
        account("ghost", "ghost@elsewhere.example"),
    )
    importer = org.importer()

    seq = org.store.seq
    plan = importer.import_app("Chat", dry_run=True)
    assert (plan["accounts"], plan["linked"], plan["already_linked"], plan["conflicts"], plan["orphans"]) == (4, 2, 0, 0, 2)
    assert [(e["login"], e["remote_id"], e["entitled"]) for e in plan["details"]["linked"]] == [
        ("alice", alice_id, True),
        ("dave", dave_id, False),
    ]
    assert plan["not_entitled"] == ["dave"] and [o["userName"] for o in plan["details"]["orphans"]] == ["ghost", "robert"]
    assert org.store.seq == seq + 1  # only the listing's downstream calls, audited; nothing linked
    assert linked(org, "alice") is None

    with pytest.raises(HeldForConfirmation, match="would link 2 accounts of Chat.*1 of them not entitled") as held:
        importer.import_app("Chat")
    assert held.value.details["linked"] == 2 and linked(org, "alice") is None

    result = importer.import_app("Chat", confirm=True)
    assert result["linked"] == 2 and linked(org, "alice") == alice_id and linked(org, "dave") == dave_id
    view = {a["app"]: a for a in org.user_view("alice")["apps"]}["Chat"]["account"]
    assert view["remote_id"] == alice_id and view["state"] == "active"
    assert {(r["userName"], r["remote_id"]) for r in org.reports().orphans("Chat")} == {("ghost", ghost_id), ("robert", robert_id)}
    assert [e["action"] for e in org.audit()].count("account.link") == 2

    again = importer.import_app("Chat")  # nothing new to link: applies without --confirm
    assert (again["linked"], again["already_linked"], again["orphans"]) == (0, 2, 2)

    by_email = importer.import_app("Chat", match="email", confirm=True)  # robert's account is bob's by email
    assert by_email["linked"] == 1 and linked(org, "bob") == robert_id
    assert [r["userName"] for r in org.reports().orphans("Chat")] == ["ghost"]  # the orphans are replaced

    org.store.refresh()
    before = len(calls(org))
    report = asyncio.run(build_engine(org, notify=False).run_until_idle())
    assert report.ok, report.failed
    sent = calls(org)[before:]
    assert ("POST", "/Users") in sent and sent.count(("POST", "/Users")) == 1  # carol only: no account to link
    touched = {path for _, path in sent}
    assert f"/Users/{alice_id}" not in touched  # linked with exactly what provtui sends: nothing to do
    assert f"/Users/{robert_id}" in touched  # bob: userName and externalId brought in line
    dave = {a["app"]: a for a in org.user_view("dave")["apps"]}["Chat"]["account"]
    assert dave["state"] == "deactivated"  # linked but not entitled: deactivated, not deleted


def test_conflicts_are_not_linked(org, server):
    org.create_user("erin", "erin@example.com", "Erin", "Person", activate=True)
    [first] = remote(server, account("erin"))
    org.importer().import_app("Chat", confirm=True)
    assert linked(org, "erin") == first
    [_, twin1, twin2, shared] = remote(
        server,
        account("erin2", "erin@example.com"),  # matches erin by email: she has an account already
        account("c1", "carol@example.com"),
        account("c2", "carol@example.com"),  # two accounts, one user
        account("dup", "same@example.com"),
    )
    org.update_user("alice", {"email": "same@example.com"})
    org.update_user("dave", {"email": "same@example.com"})  # one account, two users
    result = org.importer().import_app("Chat", match="email", confirm=True)
    assert result["linked"] == 0 and result["already_linked"] == 1 and result["conflicts"] == 4
    reasons = {c["userName"]: c["reason"] for c in result["details"]["conflicts"]}
    assert "linked to another account" in reasons["erin2"] and "2 accounts match carol" in reasons["c1"]
    assert reasons["dup"].startswith("matches 2 users") and twin1 in reasons["c2"] and twin2 in reasons["c2"]
    assert linked(org, "erin") == first and linked(org, "carol") is None and shared


def test_match_by_external_id_and_inactive_accounts(org, server):
    carol = org.user_view("carol")
    [carol_id] = remote(server, account("someone-else", externalId=carol["id"]), active=False)
    result = org.importer().import_app("Chat", match="externalId", confirm=True)
    assert result["linked"] == 1 and linked(org, "carol") == carol_id
    doc = org.store.get(ACCOUNTS, account_key(org.directory.app("Chat")["id"], carol["id"]))
    assert doc["active"] is False and doc["state"] == "deactivated" and doc["attributes"]["externalId"] == carol["id"]
    assert org.store.get(DIRTY, account_key(org.directory.app("Chat")["id"], carol["id"])) is not None
    report = asyncio.run(build_engine(org, notify=False).run_until_idle())
    assert report.ok and {a["app"]: a for a in org.user_view("carol")["apps"]}["Chat"]["account"]["state"] == "active"


def test_errors(org, server, monkeypatch):
    importer = org.importer()
    with pytest.raises(InvalidInput, match="--match"):
        importer.import_app("Chat", match="phone")
    org.create_app("Paper", manual=True, notify=["it@example.com"])
    with pytest.raises(InvalidInput, match="not a SCIM app"):
        importer.import_app("Paper")
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(SourceFailed, match=TOKEN_ENV) as failed:
        importer.import_app("Chat")
    assert failed.value.exit_code == 2
    monkeypatch.setenv(TOKEN_ENV, "wrong-token")
    with pytest.raises(SourceFailed, match="401") as failed:
        importer.import_app("Chat")
    assert failed.value.exit_code == 2 and "wrong-token" not in str(failed.value)  # a person must fix it
    monkeypatch.setenv(TOKEN_ENV, server.token)
    server.stop()
    with pytest.raises(SourceFailed, match="could not read the accounts of Chat") as failed:
        importer.import_app("Chat")
    assert failed.value.exit_code == 1  # may pass


def test_cli_app_import_contract(cli, server):
    for login in ("amy", "ben"):
        cli("user", "create", login, "--email", f"{login}@example.com", "--first", login, "--last", "X", "--activate")
    cli("app", "create", "Chat", "--scim-url", server.url, "--token-env", TOKEN_ENV)
    cli("app", "assign", "Chat", "--user", "amy")
    [amy_id, ghost_id] = remote(server, account("amy"), account("ghost", "ghost@elsewhere.example"))

    code, out, _ = cli("import", "app", "Chat", "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["dry_run"] and (plan["linked"], plan["orphans"]) == (1, 1)
    code, out, err = cli("import", "app", "Chat", "--json")
    assert code == 3 and json.loads(out)["held"] is True and "--confirm" in err
    assert json.loads(cli("report", "orphans", "--json")[1]) == []
    code, out, _ = cli("import", "app", "Chat", "--confirm")
    assert code == 0 and "linked 1 of 2 accounts of Chat" in out and "orphan" in out
    shown = json.loads(cli("user", "show", "amy", "--json")[1])
    assert shown["apps"][0]["account"]["remote_id"] == amy_id
    [orphan] = json.loads(cli("report", "orphans", "--app", "Chat", "--json")[1])
    assert orphan["remote_id"] == ghost_id and orphan["userName"] == "ghost" and orphan["email"] == "ghost@elsewhere.example"
    code, out, _ = cli("sync", "--json")
    assert code == 0 and json.loads(out)["failed"] == []
    methods = [e["after"]["method"] for e in json.loads(cli("audit", "--json")[1]) if e["action"] == "downstream.call"]
    assert "POST" not in methods  # amy's account was linked, not created again
    assert cli("import", "app", "Nope")[0] == 2
    assert cli("import", "app", "Chat", "--match", "email", "--json")[0] == 0  # nothing new: no hold
