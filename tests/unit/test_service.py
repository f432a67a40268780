"""The service: the only writer; validates, authorises, audits, and marks downstream work."""

import pytest

from provtui.domain.errors import InvalidInput, NotAllowed, NotFound
from provtui.service import Service
from tests.helpers.queue import empty_the_queue


@pytest.fixture
def service(store_location):
    return Service.init(store_location, actor="alice-admin")


def make_user(service, login="ada", activate=True, **extra):
    return service.create_user(login, f"{login}@example.com", login.title(), "Tester", extra, activate=activate)


def snapshot_of(service):
    return {t: dict(rows) for t, rows in service.store.tables.items()}, len(service.audit())


def test_init_makes_actor_super_admin_and_refuses_existing_store(service, store_location):
    assert service.list_admins() == [{"user": "alice-admin", "grants": [{"role": "super-admin", "apps": [], "groups": []}]}]
    with pytest.raises(InvalidInput, match="already exists"):
        Service.init(store_location)


def test_create_user_validates_and_writes_nothing_on_refusal(service):
    make_user(service)
    before = snapshot_of(service)
    with pytest.raises(InvalidInput) as error:
        make_user(service, "ADA")
    assert error.value.field == "login"
    with pytest.raises(InvalidInput) as error:
        service.create_user("bob", "bob-at-example", "Bob", "B")
    assert error.value.field == "email"
    assert snapshot_of(service) == before


def test_user_states_and_illegal_transition_writes_nothing(service):
    assert make_user(service, activate=False)["state"] == "staged"
    assert service.change_state("ada", "activate")["state"] == "active"
    before = snapshot_of(service)
    with pytest.raises(InvalidInput) as error:
        service.change_state("ada", "reactivate")
    assert error.value.field == "state"
    assert snapshot_of(service) == before
    for action, state in (
        ("suspend", "suspended"),
        ("unsuspend", "active"),
        ("deactivate", "deprovisioned"),
        ("reactivate", "active"),
        ("deactivate", "deprovisioned"),
        ("delete", "deleted"),
    ):
        assert service.change_state("ada", action)["state"] == state


def test_update_user_and_no_op_update(service):
    make_user(service, department="Eng")
    view = service.update_user("ada", {"department": "Sales", "costCentre": "42"})
    assert view["profile"]["department"] == "Sales" and view["profile"]["costCentre"] == "42"
    events = len(service.audit())
    service.update_user("ada", {"department": "Sales"})
    assert len(service.audit()) == events  # nothing changed: nothing audited
    with pytest.raises(InvalidInput) as error:
        service.update_user("ada", {"email": "nope"})
    assert error.value.field == "email"


def test_unknown_names_are_named(service):
    with pytest.raises(NotFound, match="no user named 'ghost'"):
        service.change_state("ghost", "suspend")
    with pytest.raises(NotFound, match="no group named 'nope'"):
        service.add_members("nope", ["ghost"])
    with pytest.raises(NotFound, match="no app named 'Nope'"):
        service.assign("Nope", group="x")


def test_entitlement_paths_through_groups_and_direct(service):
    make_user(service)
    service.create_group("eng")
    service.create_app("Slack", scim_url="http://127.0.0.1:1/v2", token_env="SLACK_TOKEN")
    service.add_members("eng", ["ada"])
    service.assign("Slack", group="eng")
    service.assign("Slack", login="ada")
    view = service.user_view("ada")
    assert view["groups"] == ["eng"]
    [app] = view["apps"]
    assert app["app"] == "Slack" and app["entitled"] and app["via"] == ["direct", "group:eng"]
    assert app["account"]["state"] == "pending"
    service.unassign("Slack", login="ada")
    assert service.user_view("ada")["apps"][0]["via"] == ["group:eng"]
    service.change_state("ada", "suspend")
    assert service.user_view("ada")["apps"][0]["entitled"] is False


def test_changes_mark_exactly_the_affected_accounts_dirty(service):
    for login in ("ada", "bob", "cy"):
        make_user(service, login)
    service.create_group("eng")
    service.create_app("Slack", scim_url="http://127.0.0.1:1/v2", token_env="T")
    service.add_members("eng", ["ada", "bob"])
    assert service.pending_work() == 0  # no app assigned yet
    service.assign("Slack", group="eng")
    dirty = {d["user"] for d in service.store.all("dirty").values()}
    assert dirty == {service.user_view("ada")["id"], service.user_view("bob")["id"]}
    empty_the_queue(service.store)  # as if synced
    service.update_user("cy", {"title": "x"})  # cy has no apps
    assert service.pending_work() == 0
    service.remove_members("eng", ["bob"])  # bob loses Slack: his account must be reconciled
    assert {d["user"] for d in service.store.all("dirty").values()} == {service.user_view("bob")["id"]}


def test_every_change_is_audited_with_actor_and_before_after(service):
    make_user(service)
    service.change_state("ada", "suspend")
    event = service.audit()[-1]
    assert event["actor"] == "alice-admin" and event["action"] == "user.suspend" and event["target"] == "ada"
    assert event["before"] == {"state": "active"} and event["after"] == {"state": "suspended"}
    assert event["time"] and event["correlation"]


def test_non_admin_is_not_allowed_and_nothing_is_written(service, store_location):
    intruder = Service.open(store_location, actor="mallory")
    before = snapshot_of(service)
    with pytest.raises(NotAllowed, match="super-admin"):
        intruder.create_user("m", "m@example.com", "M", "M")
    service.refresh()
    assert snapshot_of(service) == before


def test_app_validation(service):
    with pytest.raises(InvalidInput) as error:
        service.create_app("X", scim_url="ftp://x", token_env="T")
    assert error.value.field == "--scim-url"
    with pytest.raises(InvalidInput) as error:
        service.create_app("X", scim_url="https://x", token_env=None)
    assert error.value.field == "--token-env"
    with pytest.raises(InvalidInput):
        service.create_app("X")
    service.create_app("Payroll", manual=True, notify=["it@example.com"])
    with pytest.raises(InvalidInput, match="already exists"):
        service.create_app("Payroll", manual=True, notify=["it@example.com"])
    with pytest.raises(InvalidInput) as error:
        service.create_app("Travel", manual=True)
    assert error.value.field == "--notify"


def test_search_users(service):
    for login in ("ada", "bob", "adam"):
        make_user(service, login)
    total, rows = service.list_users("ad")
    assert total == 2 and [r["login"] for r in rows] == ["ada", "adam"]
    total, rows = service.list_users("", limit=1, offset=1)
    assert total == 3 and rows[0]["login"] == "adam"
    service.change_state("bob", "suspend")
    assert [r["login"] for r in service.list_users("", state="suspended")[1]] == ["bob"]
    service.update_user("bob", {"lastName": "Zed"})
    assert [r["login"] for r in service.list_users("zed")[1]] == ["bob"]
