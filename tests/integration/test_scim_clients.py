"""Inbound SCIM clients (#20), as a super admin manages them: `provtui scim-client add|list|rotate|remove`, on
every backend and through a server (the cli fixture).  A token is printed once and kept only as its digest."""

from __future__ import annotations

import json
import os

from provtui.service import Service


def stored_everywhere(location: str) -> str:
    """Everything the store holds and its trail says, as one text (to look for a token in)."""
    service = Service.open(location)
    tables = {name: service.store.all(name) for name in ("scim_clients", "sources", "meta", "admins")}
    return json.dumps(tables) + json.dumps(service.audit())


def test_a_client_is_added_with_its_source_and_its_token_is_shown_once_and_kept_as_a_digest(cli):
    code, out, err = cli("scim-client", "add", "okta", "--json")
    assert code == 0, err
    added = json.loads(out)
    token = added["token"]
    assert token.startswith("pvscim_") and len(token) > 40 and added["name"] == "okta" and added["source"] == "scim:okta"
    assert "digest" not in added
    code, out, _ = cli("scim-client", "list", "--json")
    assert code == 0 and [(c["name"], c["source"]) for c in json.loads(out)] == [("okta", "scim:okta")]
    assert token not in out and "digest" not in out
    code, out, _ = cli("source", "list", "--json")
    assert code == 0 and "scim:okta" in [s["name"] for s in json.loads(out)]
    everything = stored_everywhere(os.environ["PROVTUI_STORE"])
    assert token not in everything  # (its digest is there, nothing else of it)
    actions = [e["action"] for e in Service.open(os.environ["PROVTUI_STORE"]).audit()]
    assert "scim-client.add" in actions
    code, out, _ = cli("scim-client", "add", "okta")
    assert code == 2 and "already exists" in _ + out


def test_a_token_names_its_client_until_rotated_or_removed(cli):
    first = json.loads(cli("scim-client", "add", "entra", "--json")[1])["token"]
    service = Service.open(os.environ["PROVTUI_STORE"])
    assert service.scim_client_of_token(first) == "entra"
    assert service.scim_client_of_token(first + "x") is None and service.scim_client_of_token("") is None
    code, out, _ = cli("scim-client", "rotate", "entra")
    assert code == 0 and "shown this once" in out
    second = out.strip().splitlines()[-1]
    service.store.refresh()
    assert second != first and service.scim_client_of_token(second) == "entra" and service.scim_client_of_token(first) is None
    code, out, _ = cli("scim-client", "remove", "entra")
    assert code == 0 and "its source scim:entra stays" in out
    service.store.refresh()
    assert service.scim_client_of_token(second) is None
    assert json.loads(cli("scim-client", "list", "--json")[1]) == []
    assert "scim:entra" in [s["name"] for s in json.loads(cli("source", "list", "--json")[1])]
    code, _, err = cli("scim-client", "rotate", "entra")
    assert code == 2 and "no SCIM client named 'entra'" in err


def test_only_a_super_admin_manages_clients_and_names_are_checked(cli, monkeypatch):
    code, _, err = cli("scim-client", "add", "bad name")
    assert code == 2 and "NAME" in err
    monkeypatch.setattr("provtui.service.facade.current_os_user", lambda: "mallory")
    for args in (("add", "x"), ("list",), ("rotate", "x"), ("remove", "x")):
        code, _, err = cli("scim-client", *args)
        assert code == 4, (args, err)
