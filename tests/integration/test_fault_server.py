"""The fault server itself: each fault kind, observed with a plain httpx client."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import httpx
import orjson
import pytest

from provtui.testing.fault_server import FaultServerProcess, FaultSpecError, get_faults, request_kind
from provtui.testing.scim_server import free_port

TOKEN = "fault-token"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture(scope="module")
def server():
    with FaultServerProcess(TOKEN) as process:
        yield process


def wait_idle(server: FaultServerProcess, timeout: float = 10.0) -> None:
    """Until no request is being served (a slow fault may still hold one)."""
    deadline = time.monotonic() + timeout
    while server.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def fs(server):
    """The shared server with no faults and fresh counters."""
    server.clear_faults()
    wait_idle(server)
    server.reset_stats()
    yield server
    server.clear_faults()


@pytest.fixture
def client(fs):
    with httpx.Client(base_url=fs.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0) as client:
        yield client


def new_user(**extra) -> dict:
    login = f"fs-{uuid.uuid4().hex[:8]}"
    return {"schemas": [CORE_USER], "userName": login, "externalId": f"ext-{login}", **extra}


def find(client: httpx.Client, user_name: str) -> list[dict]:
    page = client.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()
    return page.get("Resources", [])


def test_request_kinds():
    assert request_kind("post", "/v2/Users") == "POST /Users"
    assert request_kind("GET", "/v2/Users/abc") == "GET /Users/{id}"
    assert request_kind("GET", "/Users/abc") == "GET /Users/{id}"
    assert request_kind("POST", "/v2/Users/.search") == "POST /Users/.search"
    assert request_kind("GET", "/v2/ServiceProviderConfig") == "GET /ServiceProviderConfig"
    assert request_kind("GET", "/v2") == "GET /"


def test_without_faults_it_is_scim2_server(fs, client):
    user = new_user()
    created = client.post("/Users", json=user)
    assert created.status_code == 201
    remote_id = created.json()["id"]
    assert client.get(f"/Users/{remote_id}").json()["userName"] == user["userName"]
    assert client.post("/Users", json=user).status_code == 409  # scim2-server's own uniqueness check
    assert httpx.get(f"{fs.url}/Users", headers={"Authorization": "Bearer wrong"}).status_code == 401
    stats = fs.stats()
    assert stats["requests"]["POST /Users"] == 2 and stats["requests"]["GET /Users/{id}"] == 1
    assert stats["creates_reached_app"] == 2 and stats["creates_committed"] == 1
    assert stats["app_status"]["POST /Users 409"] == 1 and stats["app_status"]["GET /Users 401"] == 1
    assert stats["faults"] == {} and stats["in_flight"] == 0


def test_unavailable_for_the_next_n_requests_then_recovers(fs, client):
    fs.set_faults(unavailable={"next": 2, "retry_after": 4})
    replies = [client.get("/Users") for _ in range(3)]
    assert [r.status_code for r in replies] == [503, 503, 200]
    assert replies[0].headers["Retry-After"] == "4"
    assert replies[0].json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert fs.stats()["faults"] == {"unavailable": 2}
    assert fs.stats()["reached_app"] == {"GET /Users": 1}
    assert get_faults(fs.url)["unavailable"]["remaining"] == 0


def test_unavailable_without_retry_after_sends_none(fs, client):
    fs.set_faults(unavailable={"next": 1})
    reply = client.get("/Users")
    assert reply.status_code == 503 and "Retry-After" not in reply.headers


def test_rate_limit_is_429_with_retry_after(fs, client):
    fs.set_faults(rate_limit={"next": 1, "retry_after": 7})
    reply = client.post("/Users", json=new_user())
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "7"
    assert fs.stats()["creates_reached_app"] == 0


def test_bad_request_is_a_scim_error_and_creates_nothing(fs, client):
    fs.set_faults(bad_request={"next": 1, "detail": "userName breaks policy P-7", "scim_type": "invalidValue"})
    user = new_user()
    reply = client.post("/Users", json=user)
    assert reply.status_code == 400
    assert reply.json()["detail"] == "userName breaks policy P-7" and reply.json()["scimType"] == "invalidValue"
    assert find(client, user["userName"]) == []


def test_slow_reply_outlasts_a_short_timeout_yet_is_served(fs, client):
    fs.set_faults(slow={"next": 1, "delay_ms": 600})
    user = new_user()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/Users", json=user, timeout=0.1)
    wait_idle(fs)
    # Delayed before the app: the create still happens once the delay is over.
    assert len(find(client, user["userName"])) == 1
    fs.set_faults(slow={"next": 1, "delay_ms": 50, "when": "after"})
    assert client.get("/Users").status_code == 200
    assert fs.stats()["faults"] == {"slow": 2}


def test_drop_closes_the_connection_without_a_reply_before_the_app(fs, client):
    fs.set_faults(drop={"next": 1})
    user = new_user()
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/Users", json=user)
    fs.set_faults(drop={"next": 1, "reset": True})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.post("/Users", json=user)
    assert find(client, user["userName"]) == []
    stats = fs.stats()
    assert stats["faults"] == {"drop": 2} and stats["creates_reached_app"] == 0


def test_malformed_json_is_a_200_with_a_broken_body(fs, client):
    fs.set_faults(malformed={"next": 1})
    reply = client.get("/Users")
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/scim+json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(reply.content)
    assert client.get("/Users").json()["schemas"]  # the next one is fine


def test_after_commit_creates_the_user_and_loses_the_reply(fs, client):
    fs.set_faults(after_commit={"next": 1, "method": "POST", "path": "/Users"})
    user = new_user()
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/Users", json=user)
    [found] = find(client, user["userName"])
    assert found["externalId"] == user["externalId"]
    stats = fs.stats()
    assert stats["creates_reached_app"] == 1 and stats["creates_committed"] == 1 and stats["faults"] == {"after_commit": 1}


@pytest.mark.parametrize("reply", ["reset", "malformed"])
def test_after_commit_other_replies(fs, client, reply):
    fs.set_faults(after_commit={"next": 1, "method": "POST", "reply": reply})
    user = new_user()
    if reply == "reset":
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.post("/Users", json=user)
    else:
        answer = client.post("/Users", json=user)
        assert answer.status_code == 201
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(answer.content)
    assert len(find(client, user["userName"])) == 1


def test_stale_search_hides_existing_users_from_filters_only(fs, client):
    user = new_user()
    remote_id = client.post("/Users", json=user).json()["id"]
    fs.set_faults(stale_search={"query": "externalId"})
    by_external = client.get("/Users", params={"filter": f'externalId eq "{user["externalId"]}"'}).json()
    assert by_external["totalResults"] == 0 and by_external["Resources"] == []
    assert len(find(client, user["userName"])) == 1  # another filter: not matched
    assert client.get(f"/Users/{remote_id}").status_code == 200  # not a search
    assert fs.stats()["faults"] == {"stale_search": 1}


def test_app_down_until_turned_off(fs, client):
    fs.set_faults(app_down={})
    assert client.get("/ServiceProviderConfig").status_code == 503
    assert client.post("/Users", json=new_user()).status_code == 503
    fs.set_faults(app_down={"mode": "reset"})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/Users")
    assert fs.stats()["reached_app"] == {}
    fs.set_faults(app_down=None)
    assert client.get("/Users").status_code == 200


def test_faults_match_on_method_path_and_query(fs, client):
    fs.set_faults(unavailable={"method": ["PATCH", "post"], "path": "/Users"})
    assert client.get("/Users").status_code == 200
    assert client.post("/Users", json=new_user()).status_code == 503
    fs.set_faults(unavailable={"path": "/Users/{id}"})
    assert client.get("/Users").status_code == 200
    assert client.get("/Users/nope").status_code == 503
    fs.set_faults(unavailable={"query": "userName eq"})
    assert client.get("/Users").status_code == 200
    assert client.get("/Users", params={"filter": 'userName eq "x"'}).status_code == 503


def test_probability_is_seeded_and_limit_caps_it(fs, client):
    def pattern() -> list[int]:
        return [client.get("/ServiceProviderConfig").status_code for _ in range(20)]

    fs.set_faults(seed=7, unavailable={"probability": 0.5})
    first = pattern()
    fs.set_faults(seed=7, unavailable={"probability": 0.5})
    assert pattern() == first and 200 in first and 503 in first
    fs.set_faults(unavailable={"probability": 1.0, "limit": 3})
    assert pattern().count(503) == 3
    fs.set_faults(unavailable={"probability": 0.0})
    assert 503 not in pattern()


def test_several_faults_together_and_reset(fs, client):
    fs.set_faults(unavailable={"next": 1}, rate_limit={"next": 1})
    # rate_limit is tried first; each fault fires on its own request.
    assert [client.get("/Users").status_code for _ in range(3)] == [429, 503, 200]
    current = fs.set_faults(reset=True, drop={"probability": 0})
    assert list(current) == ["drop"]


@pytest.mark.parametrize(
    "faults", [{"bogus": {}}, {"drop": {"typo": 1}}, {"drop": {"probability": 2}}, {"drop": {"next": -1}}, {"slow": {"when": "never"}}]
)
def test_invalid_specs_are_refused_and_change_nothing(fs, faults):
    fs.set_faults(unavailable={"next": 1})
    with pytest.raises(FaultSpecError):
        fs.set_faults(reset=True, **faults)
    assert list(get_faults(fs.url)) == ["unavailable"]


def test_serves_many_connections_at_once(fs):
    fs.set_faults(slow={"delay_ms": 400})
    statuses: list[int] = []

    def get() -> None:
        statuses.append(httpx.get(f"{fs.url}/ServiceProviderConfig", timeout=10).status_code)

    threads = [threading.Thread(target=get) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20
    assert fs.stats()["max_in_flight"] >= 10  # served side by side, not one after the other


def test_runs_as_a_module_with_initial_faults():
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "provtui.testing.fault_server",
        "--port",
        str(port),
        "--bearer-token",
        "t",
        "--faults",
        '{"unavailable": {"next": 1}}',
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout.readline().decode().strip() == f"Serving SCIM with faults on http://127.0.0.1:{port}/v2"
        url = f"http://127.0.0.1:{port}/v2/Users"
        assert httpx.get(url, headers={"Authorization": "Bearer t"}).status_code == 503
        assert httpx.get(url, headers={"Authorization": "Bearer t"}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()


@pytest.mark.parametrize("launcher", ["scim2-server", "fault server"])
def test_a_token_starting_with_a_dash_is_a_token_not_an_option(launcher):
    """secrets.token_urlsafe begins with "-" about once in 32 draws; the soak's CI run drew one."""
    from provtui.testing.scim_server import ScimServerProcess

    kind = ScimServerProcess if launcher == "scim2-server" else FaultServerProcess
    with kind(token="-starts-with-a-dash") as server:
        reply = httpx.get(f"{server.url}/ServiceProviderConfig", headers={"Authorization": "Bearer -starts-with-a-dash"})
        assert reply.status_code == 200


def test_a_server_that_exits_at_once_is_reported_with_its_exit_code(tmp_path):
    class Broken(FaultServerProcess):
        def _command(self):
            return [sys.executable, "-c", "import sys; sys.exit(7)"]

    with pytest.raises(RuntimeError, match="exited with code 7"):
        Broken(token="t", log_file=tmp_path / "log").start()
