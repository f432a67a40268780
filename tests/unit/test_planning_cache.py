"""Planning keeps each app's assignments and each user's groups between keys (#19: a key's plan in fewer µs),
and forgets them at the first write that changes them (an assignment, a group, that user's membership): a plan
is never one write behind."""

from __future__ import annotations

from provtui.service import Service


def desired(service: Service, app: str, login: str):
    return service.directory.desired(service.directory.app(app)["id"], service.directory.user_id(login))


def test_every_change_of_path_shows_in_the_next_plan(tmp_path):
    service = Service.init(tmp_path / "s", actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    service.create_group("eng")
    service.create_app("Wiki", manual=True, notify=["it@example.com"])
    assert not desired(service, "Wiki", "ada").active
    service.assign("Wiki", group="eng")
    assert not desired(service, "Wiki", "ada").active  # the group has the app; she is not in it
    service.add_members("eng", ["ada"])
    assert desired(service, "Wiki", "ada").active
    service.assign("Wiki", group="eng", values={"role": "editor"})
    assert desired(service, "Wiki", "ada").active
    service.rename_group("eng", "engineering")
    service.remove_members("engineering", ["ada"])
    assert not desired(service, "Wiki", "ada").active
    service.assign("Wiki", login="ada")
    assert desired(service, "Wiki", "ada").active
    service.unassign("Wiki", login="ada")
    assert not desired(service, "Wiki", "ada").active


def test_another_process_s_membership_change_shows_after_refresh(tmp_path):
    mine = Service.init(tmp_path / "s", actor="admin")
    mine.create_user("ada", "ada@example.com", "Ada", "L", activate=True)
    mine.create_group("eng")
    mine.create_app("Wiki", manual=True, notify=["it@example.com"])
    mine.assign("Wiki", group="eng")
    assert not desired(mine, "Wiki", "ada").active
    Service.open(tmp_path / "s", actor="admin").add_members("eng", ["ada"])
    mine.refresh()
    assert desired(mine, "Wiki", "ada").active


def test_a_users_groups_are_forgotten_when_their_membership_changes_by_any_path(tmp_path):
    service = Service.init(tmp_path / "s", actor="admin")
    for login in ("ada", "bob"):
        service.create_user(login, f"{login}@example.com", login.title(), "L", activate=True)
    service.create_group("eng")
    service.create_group("ops")
    service.create_app("Wiki", manual=True, notify=["it@example.com"])
    service.assign("Wiki", group="eng")
    service.assign("Wiki", group="ops")
    service.add_members("eng", ["ada", "bob"])
    service.add_members("ops", ["ada"])
    assert desired(service, "Wiki", "ada").active and desired(service, "Wiki", "bob").active
    service.remove_members("eng", ["ada"])  # still in ops
    assert desired(service, "Wiki", "ada").active and desired(service, "Wiki", "bob").active
    service.remove_members("ops", ["ada"])
    assert not desired(service, "Wiki", "ada").active and desired(service, "Wiki", "bob").active  # bob's stays as it was
