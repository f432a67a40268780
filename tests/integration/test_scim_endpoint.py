"""`provtui server --scim-listen` (#20) against the requests real clients send, exactly as Okta's and Microsoft
Entra ID's SCIM documentation shows them, checking the directory (and the app its group gives) after each;
and the endpoint's own guards: tokens, sizes, rates, versions, addresses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.scim_endpoint import GROUP, Endpoint, patch, scim_endpoint, user_body


def give_wiki(store) -> None:
    for args in (
        ["app", "create", "Wiki", "--manual", "--notify", "it@example.com"],
        ["group", "create", "wiki-users"],
        ["app", "assign", "Wiki", "--group", "wiki-users"],
        ["user", "create", "hr.person", "--email", "hr@example.com", "--first", "H", "--last", "R", "--set", "costCode=C-1"],
    ):
        out = subprocess.run([sys.executable, "-m", "provtui", "--store", str(store), *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def endpoint():
    with scim_endpoint(setup=give_wiki) as served:
        yield served


def person(endpoint: Endpoint, login: str) -> dict:
    admin = endpoint.admin()
    try:
        return admin.user_view(login)
    finally:
        admin.close()


def test_okta_create_lookup_update_deactivate_reactivate_group_push_and_delete(endpoint):
    with endpoint.client() as okta:
        login = "okta.one@example.com"
        found = okta.get("/Users", params={"filter": f'userName eq "{login}"', "startIndex": 1, "count": 100})
        assert found.status_code == 200 and found.json()["totalResults"] == 0 and not found.json().get("Resources")
        created = okta.post(
            "/Users",
            json={
                **user_body("okta.one"),
                "displayName": "Okta One",
                "locale": "en-US",
                "externalId": "00u1okta",
                "groups": [],
                "password": "ignored-1Aa!",
            },
        )
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["userName"] == login and user["active"] is True and "password" not in user
        assert created.headers["ETag"] == user["meta"]["version"]
        assert person(endpoint, login)["source"] == "scim:okta"
        found = okta.get("/Users", params={"filter": f'userName eq "{login.upper()}"', "startIndex": 1, "count": 100}).json()
        assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"]
        assert okta.get(f"/Users/{user['id']}").json()["externalId"] == "00u1okta"

        put = okta.put(
            f"/Users/{user['id']}", json={**user_body("okta.one"), "id": user["id"], "title": "Engineer", "externalId": "00u1okta"}
        )
        assert put.status_code == 200, put.text
        assert person(endpoint, login)["profile"]["title"] == "Engineer"

        off = okta.patch(f"/Users/{user['id']}", json=patch({"op": "replace", "value": {"active": False}}))
        assert off.status_code == 200, off.text
        assert person(endpoint, login)["state"] == "deprovisioned"
        on = okta.patch(f"/Users/{user['id']}", json=patch({"op": "replace", "value": {"active": True}}))
        assert on.status_code == 200 and person(endpoint, login)["state"] == "active"

        others = [okta.post("/Users", json=user_body(f"okta.m{n}")).json()["id"] for n in range(2)]
        group = okta.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "wiki-okta", "members": [{"value": user["id"], "display": login}]}
        )
        assert group.status_code == 201, group.text
        gid = group.json()["id"]
        added = okta.patch(f"/Groups/{gid}", json=patch({"op": "add", "path": "members", "value": [{"value": i} for i in others]}))
        assert added.status_code == 200, added.text
        assert len(okta.get(f"/Groups/{gid}").json()["members"]) == 3
        removed = okta.patch(f"/Groups/{gid}", json=patch({"op": "remove", "path": f'members[value eq "{others[0]}"]'}))
        assert removed.status_code == 200, removed.text
        members = {m["value"] for m in okta.get(f"/Groups/{gid}").json()["members"]}
        assert members == {user["id"], others[1]}  # exactly the one named: not nobody, not everybody
        nobody = okta.patch(f"/Groups/{gid}", json=patch({"op": "remove", "path": 'members[value eq "no-such-id"]'}))
        assert nobody.status_code in (200, 204, 400)
        assert {m["value"] for m in okta.get(f"/Groups/{gid}").json()["members"]} == members
        renamed = okta.patch(f"/Groups/{gid}", json=patch({"op": "replace", "value": {"id": gid, "displayName": "wiki-okta-2"}}))
        assert renamed.status_code == 200, renamed.text
        assert "wiki-okta-2" in person(endpoint, login)["groups"]

        assert okta.delete(f"/Users/{user['id']}").status_code == 204
        assert okta.get(f"/Users/{user['id']}").status_code == 404
        assert person(endpoint, login)["state"] == "deprovisioned"  # deprovisioned, not deleted
        assert okta.delete(f"/Groups/{gid}").status_code == 204
        assert okta.get(f"/Groups/{gid}").status_code == 404


def test_entra_create_patch_disable_with_strings_groups_without_members_and_removal_by_value_list(endpoint):
    with endpoint.client() as entra:
        login = "entra.one@example.com"
        body = {
            **user_body("entra.one"),
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": "e-1",
            "meta": {"resourceType": "User"},
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "employeeNumber": "701"},
        }
        created = entra.post("/Users", json=body)
        assert created.status_code == 201, created.text
        uid = created.json()["id"]
        assert person(endpoint, login)["profile"]["department"] == "Sales"
        ops = patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "entra.one@example.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Renamed"},
        )
        assert entra.patch(f"/Users/{uid}", json=ops).status_code == 200
        assert person(endpoint, login)["profile"]["lastName"] == "Renamed"
        dotted = patch({"op": "Replace", "value": {"name.givenName": "Dotty", "title": "Lead"}})
        response = entra.patch(f"/Users/{uid}", json=dotted)
        assert response.status_code == 200, response.text
        assert person(endpoint, login)["profile"]["firstName"] == "Dotty" and person(endpoint, login)["profile"]["title"] == "Lead"
        disabled = entra.patch(f"/Users/{uid}", json=patch({"op": "Replace", "path": "active", "value": "False"}))
        assert disabled.status_code == 200, disabled.text
        assert person(endpoint, login)["state"] == "deprovisioned"
        enabled = entra.patch(f"/Users/{uid}", json=patch({"op": "Replace", "value": {"active": "True"}}))
        assert enabled.status_code == 200, enabled.text
        assert person(endpoint, login)["state"] == "active"

        second = entra.post("/Users", json=user_body("entra.two")).json()["id"]
        group = entra.post(
            "/Groups",
            json={"schemas": [GROUP], "externalId": "eg-1", "displayName": "wiki-entra", "meta": {"resourceType": "Group"}, "members": []},
        )
        assert group.status_code == 201, group.text
        gid = group.json()["id"]
        add = patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}, {"$ref": None, "value": second}]})
        assert entra.patch(f"/Groups/{gid}", json=add).status_code == 200
        listed = entra.get("/Groups", params={"excludedAttributes": "members", "filter": 'displayName eq "wiki-entra"'}).json()
        assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]
        remove = patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": second}]})
        assert entra.patch(f"/Groups/{gid}", json=remove).status_code == 200
        assert [m["value"] for m in entra.get(f"/Groups/{gid}").json()["members"]] == [uid]  # one removed, one kept
        assert entra.delete(f"/Users/{uid}").status_code == 204 and person(endpoint, login)["state"] == "deprovisioned"


def test_a_pushed_group_the_admin_assigned_an_app_gives_it(endpoint):
    with endpoint.client() as client:
        uid = client.post("/Users", json=user_body("wiki.reader")).json()["id"]
        groups = client.get("/Groups", params={"filter": 'displayName eq "wiki-users"'}).json()["Resources"]
        assert (
            groups
            and client.patch(
                f"/Groups/{groups[0]['id']}", json=patch({"op": "add", "path": "members", "value": [{"value": uid}]})
            ).status_code
            == 403
        )
        gid = client.post("/Groups", json={"schemas": [GROUP], "displayName": "readers", "members": [{"value": uid}]}).json()["id"]
        admin = endpoint.admin()
        try:
            admin.assign("Wiki", group="readers")
            assert [a["app"] for a in admin.user_view("wiki.reader@example.com")["apps"] if a["entitled"]] == ["Wiki"]
        finally:
            admin.close()
        assert client.patch(f"/Groups/{gid}", json=patch({"op": "remove", "path": f'members[value eq "{uid}"]'})).status_code == 200
        assert not [a for a in person(endpoint, "wiki.reader@example.com")["apps"] if a["entitled"]]


def test_no_token_a_wrong_token_and_an_unknown_path_are_refused(endpoint):
    import httpx

    assert httpx.get(f"{endpoint.url}/ServiceProviderConfig").status_code == 200  # (RFC 7643 §5: no authentication)
    bare = httpx.get(f"{endpoint.url}/Users")
    assert bare.status_code == 401 and bare.headers.get("WWW-Authenticate", "").startswith("Bearer")
    with endpoint.client("pvscim_not-a-token") as stranger:
        assert stranger.get("/Users").status_code == 401
    assert httpx.get(endpoint.url.replace("/scim/v2", "/other")).status_code == 404


def test_uniqueness_versions_and_bodies_too_large(endpoint):
    with endpoint.client() as client:
        first = client.post("/Users", json=user_body("uniq.one")).json()
        again = client.post("/Users", json={**user_body("uniq.one"), "userName": "UNIQ.one@example.com"})
        assert again.status_code == 409 and again.json()["scimType"] == "uniqueness"
        changed = client.put(
            f"/Users/{first['id']}", json={**user_body("uniq.one"), "title": "A"}, headers={"If-Match": first["meta"]["version"]}
        )
        assert changed.status_code == 200, changed.text
        stale = client.put(
            f"/Users/{first['id']}", json={**user_body("uniq.one"), "title": "B"}, headers={"If-Match": first["meta"]["version"]}
        )
        assert stale.status_code == 412
        huge = client.post("/Users", content=json.dumps({**user_body("uniq.two"), "title": "x" * (2 * 1024 * 1024)}))
        assert huge.status_code == 413
        assert client.get("/Users", params={"filter": 'userName eq "uniq.two@example.com"'}).json()["totalResults"] == 0


def test_the_audit_names_the_client_and_the_requests_id_and_never_the_token(endpoint):
    with endpoint.client() as client:
        client.post("/Users", json=user_body("audited.one"), headers={"X-Request-Id": "req-42"})
    admin = endpoint.admin()
    try:
        events = [e for e in admin.audit(limit=200) if e["target"] == "audited.one@example.com"]
    finally:
        admin.close()
    assert events and all(e["actor"] == "scim:okta" and e["correlation"] == "req-42" for e in events)
    trail = b"".join(p.read_bytes() for p in endpoint.store.iterdir() if p.is_file())
    assert endpoint.token.encode() not in trail and endpoint.token[7:].encode() not in trail


def test_a_client_past_its_rate_is_told_to_wait():
    def slow(store) -> None:
        subprocess.run(
            [sys.executable, "-m", "provtui", "--store", str(store), "config", "set", "scim.rate", "1"], check=True, capture_output=True
        )

    with scim_endpoint(setup=slow) as served, served.client() as client:
        codes = [client.get("/Users", params={"count": 1}).status_code for _ in range(6)]
        assert codes[:2] == [200, 200] and 429 in codes
        limited = client.get("/Users")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "args, error",
    [
        (["--scim-listen", "0.0.0.0:0"], "not a loopback address"),
        (["--scim-listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"], "needs both --tls-cert and --tls-key"),
        (["--scim-listen", "127.0.0.1:99999"], "not HOST:PORT"),
        (["--insecure-http"], "options of --scim-listen"),
    ],
)
def test_an_address_that_would_send_tokens_in_clear_is_refused(tmp_path, args, error):
    assert subprocess.run([sys.executable, "-m", "provtui", "init", "--store", str(tmp_path / "s")], capture_output=True).returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "provtui", "server", "--store", str(tmp_path / "s"), "--socket", str(tmp_path / "x.sock"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and error in out.stderr, out.stderr


def test_provtuis_own_attributes_travel_under_its_extension(endpoint):
    extension = "urn:ietf:params:scim:schemas:extension:provtui:2.0:User"
    with endpoint.client() as client:
        schemas = {s["id"]: s for s in client.get("/Schemas").json()["Resources"]}
        assert [a["name"] for a in schemas[extension]["attributes"]] == ["costCode"]  # the directory's, at start
        body = {**user_body("ext.one"), "schemas": [user_body("x")["schemas"][0], extension], extension: {"costCode": "C-7"}}
        created = client.post("/Users", json=body)
        assert created.status_code == 201, created.text
        assert created.json()[extension] == {"costCode": "C-7"}
    assert person(endpoint, "ext.one@example.com")["profile"]["costCode"] == "C-7"


def test_with_a_certificate_it_serves_tls_on_any_address(tmp_path):
    import shutil

    import httpx

    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed for the TLS test (.ci/run installs it)")
    cert, key = tmp_path / "scim.pem", tmp_path / "scim.key"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with scim_endpoint(args=("--tls-cert", str(cert), "--tls-key", str(key)), host="0.0.0.0", scheme="https") as served:
        assert served.url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=str(cert)) as client:
            response = client.get(f"{served.url}/Users", headers={"Authorization": f"Bearer {served.token}"})
        assert response.status_code == 200 and response.json()["totalResults"] == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(served.url.replace("https://", "http://") + "/Users", timeout=5)  # no plain HTTP beside it


def test_replies_are_not_held_back_waiting_for_the_clients_ack(tmp_path):
    """The listener has TCP_NODELAY, which the connections it accepts inherit: without it a reply's body waited for
    the client's delayed ACK of its headers (40 ms a request: a PATCH took 48 ms where curl saw 1 ms)."""
    import socket

    from provtui.server.hub import ServiceHub
    from provtui.server.scim.listen import ScimListen, scim_server
    from provtui.service import Service

    _, sock, _ = scim_server(ServiceHub(Service.init(tmp_path / "store")), ScimListen("127.0.0.1", 0))
    with sock, socket.create_connection(sock.getsockname()[:2]):
        accepted, _ = sock.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_concurrent_requests_answered_together_keep_their_own_outcomes_and_ids(endpoint):
    """Requests served in one turn of the lock (one fsync for all: server/scim/batch.py): each its own result, its
    own error, its own correlation id in the trail."""
    import asyncio

    import httpx

    async def push() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {endpoint.token}"}
        async with httpx.AsyncClient(base_url=endpoint.url, headers=headers, timeout=30) as client:
            bodies = [user_body(f"turn.p{n}") for n in range(12)] + [user_body("turn.p0")]  # the last one is taken
            return await asyncio.gather(
                *(client.post("/Users", json=body, headers={"X-Request-Id": f"turn-{n}"}) for n, body in enumerate(bodies))
            )

    answers = asyncio.run(push())
    assert sorted(a.status_code for a in answers) == [201] * 12 + [409]
    [taken] = [a for a in answers if a.status_code == 409]
    assert taken.json()["scimType"] == "uniqueness"
    admin = endpoint.admin()
    try:
        created = {e["target"]: e["correlation"] for e in admin.audit(limit=500) if e["action"] == "user.import"}
    finally:
        admin.close()
    winner = next(a.headers["X-Request-Id"] for a in answers if a.status_code == 201 and a.json()["userName"] == "turn.p0@example.com")
    assert {f"turn.p{n}@example.com": created[f"turn.p{n}@example.com"] for n in range(1, 12)} == {
        f"turn.p{n}@example.com": f"turn-{n}" for n in range(1, 12)
    }
    assert created["turn.p0@example.com"] == winner


def test_a_rotated_or_removed_token_is_refused_at_once_though_the_endpoint_knew_it(endpoint):
    """The endpoint knows a token it saw for a moment (app.AUTH_SECONDS) without a trip to the store; the
    storage call behind every request checks it again under the lock, so a rotation or a removal takes at once."""
    admin = endpoint.admin()
    try:
        old = admin.add_scim_client("rotating")["token"]
        with endpoint.client(old) as client:
            created = client.post("/Users", json=user_body("rotating.one"))
            assert created.status_code == 201, created.text
            uid = created.json()["id"]
            assert client.get(f"/Users/{uid}").status_code == 200  # (known now)
            new = admin.rotate_scim_client("rotating")["token"]
            for refused in (client.get(f"/Users/{uid}"), client.post("/Users", json=user_body("rotating.two"))):
                assert refused.status_code == 401, refused.text
        with endpoint.client(new) as client:
            assert client.get(f"/Users/{uid}").status_code == 200
            admin.remove_scim_client("rotating")
            assert client.get(f"/Users/{uid}").status_code == 401
            assert client.get("/Users", params={"filter": 'userName eq "rotating.one@example.com"'}).status_code == 401
    finally:
        admin.close()
    assert "rotating.two@example.com" not in {u["login"] for u in person_list(endpoint)}


def person_list(endpoint: Endpoint) -> list[dict]:
    admin = endpoint.admin()
    try:
        return admin.list_users("", limit=None)[1]
    finally:
        admin.close()
