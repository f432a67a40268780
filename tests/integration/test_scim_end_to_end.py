"""End to end (#20): an identity provider pushes a person over SCIM into a group; an assignment of that group
gives a SCIM app (a real scim2-server) and a rule on it gives an LDAP directory (a real slapd); the server's own
worker provisions both within 2 s; deactivating the person over SCIM deactivates both accounts."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import httpx

from provtui.domain.rules import RuleState
from provtui.service import Service, current_os_user
from provtui.testing.slapd import SlapdProcess
from tests.helpers.ldap import entries
from tests.helpers.ldap import ldap_app_target as target
from tests.helpers.scim_endpoint import GROUP, patch, scim_endpoint, user_body

TOKEN_ENV = "PROVTUI_TEST_SCIM_TOKEN"
DEADLINE = 2.0


def until(check, deadline: float = DEADLINE):
    """``check()``'s first true value within ``deadline`` seconds (how long it took, and it); else a failure."""
    started = time.monotonic()
    while True:
        value = check()
        if value:
            return time.monotonic() - started, value
        assert time.monotonic() - started < deadline, f"not within {deadline} s"
        time.sleep(0.02)


def test_a_pushed_person_gets_both_apps_within_two_seconds_and_loses_both_when_deactivated(
    scim_server, slapd: SlapdProcess, tree: SimpleNamespace, monkeypatch
):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    tag = uuid.uuid4().hex[:6]

    def apps(store) -> None:
        admin = Service.open(store, actor=current_os_user())
        admin.create_app("Chat", scim_url=scim_server.url, token_env=TOKEN_ENV)
        admin.create_app("Directory", ldap=target(slapd, tree))
        admin.create_group("directory-users")
        admin.assign("Directory", group="directory-users")

    with scim_endpoint(setup=apps) as endpoint, endpoint.client() as idp:
        group = idp.post("/Groups", json={"schemas": [GROUP], "displayName": f"sales-{tag}", "members": []}).json()
        admin = endpoint.admin()
        try:
            admin.assign("Chat", group=f"sales-{tag}")
            admin.rules().create("sales-directory", groups=["directory-users"], expr=f'isMemberOfGroupName("sales-{tag}")', exclude=[])
            admin.rules().change("sales-directory", state=RuleState.ACTIVE)
        finally:
            admin.close()
        login = f"e2e{tag}.person"
        person = idp.post("/Users", json=user_body(login)).json()
        added = idp.patch(f"/Groups/{group['id']}", json=patch({"op": "add", "path": "members", "value": [{"value": person["id"]}]}))
        assert added.status_code == 200, added.text

        chat = httpx.Client(base_url=scim_server.url, headers={"Authorization": f"Bearer {scim_server.token}"})

        def in_chat(active: bool) -> bool:
            found = chat.get("/Users", params={"filter": f'userName eq "{login}@example.com"'}).json().get("Resources") or []
            return bool(found) and found[0].get("active") is active

        def in_directory(active: bool) -> bool:
            ou = tree.people if active else tree.disabled
            return any(attrs.get("mail") == [f"{login}@example.com"] for attrs in entries(slapd, ou).values())

        took_chat, _ = until(lambda: in_chat(True))
        took_directory, _ = until(lambda: in_directory(True))
        print(f"accounts after the push: chat {took_chat:.2f} s, directory {took_directory:.2f} s")

        off = idp.patch(f"/Users/{person['id']}", json=patch({"op": "replace", "value": {"active": False}}))
        assert off.status_code == 200 and off.json()["active"] is False
        until(lambda: in_chat(False))
        until(lambda: in_directory(False) and not in_directory(True))
