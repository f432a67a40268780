"""The directory's user summaries are made once and follow every commit, ours or another process's."""

from __future__ import annotations

import pytest

from provtui.service import Service


def add(service: Service, login: str, first: str = "Ada", last: str = "Tester") -> None:
    service.create_user(login, f"{login}@example.com", first, last, {"department": "Sales"}, activate=True)


@pytest.fixture
def service(tmp_path) -> Service:
    service = Service.init(tmp_path / "store", actor="admin")
    for login in ("carol", "alice", "bob"):
        add(service, login)
    service.list_users("")  # the caches are built: what follows must keep them right
    return service


def logins(rows: list[dict]) -> list[str]:
    return [row["login"] for row in rows]


def test_summaries_are_sorted_by_login_and_paged(service):
    total, rows = service.list_users("")
    assert total == 3 and logins(rows) == ["alice", "bob", "carol"]
    assert rows[0] == {
        "id": rows[0]["id"],
        "login": "alice",
        "state": "active",
        "displayName": "Ada Tester",
        "email": "alice@example.com",
        "department": "Sales",
        "source": "provtui",
    }
    assert service.list_users("", offset=1, limit=1) == (3, [rows[1]])


def test_a_change_reaches_the_summary_and_the_search(service):
    service.update_user("bob", {"displayName": "Robert Zed", "lastName": "Zed", "department": "Legal"})
    (row,) = service.list_users("zed")[1]
    assert (row["login"], row["displayName"], row["department"]) == ("bob", "Robert Zed", "Legal")
    assert service.list_users("", state="suspended") == (0, [])
    service.change_state("bob", "suspend")
    assert logins(service.list_users("", state="suspended")[1]) == ["bob"]
    assert service.list_users("bob")[1][0]["state"] == "suspended"


def test_a_rename_and_a_new_user_change_the_order(service):
    service.update_user("alice", {"login": "zoe", "email": "zoe@example.com"})
    add(service, "aaron")
    assert logins(service.list_users("")[1]) == ["aaron", "bob", "carol", "zoe"]
    assert service.list_users("alice") == (0, [])


def test_another_process_commit_is_seen_after_refresh(service):
    other = Service.open(service.location, actor="admin")
    other.update_user("carol", {"firstName": "Caroline", "displayName": "Caroline Tester"})
    add(other, "dave")
    service.refresh()
    assert logins(service.list_users("")[1]) == ["alice", "bob", "carol", "dave"]
    assert logins(service.list_users("caroline")[1]) == ["carol"]
