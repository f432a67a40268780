"""What an inbound SCIM client's requests do to the directory (#20), through the service as the endpoint calls
it (provtui.service.scim_inbound), on both backends: its people and groups are mastered by its source, it
changes nothing else, deprovisions without deleting, and the safeguard holds a burst of deprovisions."""

from __future__ import annotations

import pytest

from provtui.domain.errors import InvalidInput, NotAllowed, NotFound
from provtui.domain.mapping import ENTERPRISE
from provtui.service import Service
from provtui.service.scim_inbound import Conflict, Stale
from provtui.service.scim_safeguard import Held


def person(login: str, **more) -> dict:
    first, _, last = login.partition(".")
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"{login}@example.com",
        "name": {"givenName": first.title(), "familyName": (last or "x").title()},
        "emails": [{"value": f"{login}@example.com", "type": "work", "primary": True}],
        **more,
    }


@pytest.fixture
def org(store_location):
    admin = Service.init(store_location, actor="admin")
    admin.add_scim_client("okta")
    admin.create_group("eng")
    admin.create_app("Wiki", manual=True, notify=["it@example.com"])
    admin.assign("Wiki", group="eng")
    return admin, Service(admin.store, "scim:okta", directory=admin.directory)  # as the server serves a client


def test_a_pushed_person_is_the_clients_a_pushed_group_gives_its_apps_and_inactive_deprovisions(org):
    admin, client = org
    scim = client.scim_inbound()
    ada = scim.create_user(person("ada.lovelace", externalId="00u1", **{ENTERPRISE: {"department": "Engineering"}}))
    user = admin.user_view("ada.lovelace@example.com")
    assert user["state"] == "active" and user["source"] == "scim:okta" and user["profile"]["department"] == "Engineering"
    assert scim.user(ada["id"])["externalId"] == "00u1"
    group = scim.create_group({"displayName": "engineers", "members": [{"value": ada["id"]}]})
    admin.assign("Wiki", group="engineers")  # the client's group gives an app like any group
    assert admin.pending_work() >= 1  # Wiki is due for ada
    scim.replace_user(ada["id"], {**person("ada.lovelace"), "active": "False"})
    assert admin.user_view("ada.lovelace@example.com")["state"] == "deprovisioned"
    scim.replace_user(ada["id"], {**person("ada.lovelace"), "active": True})
    assert admin.user_view("ada.lovelace@example.com")["state"] == "active"
    assert [m["value"] for m in scim.group(group["id"])["members"]] == [ada["id"]]
    events = [e for e in admin.audit(limit=50) if e["actor"] == "scim:okta"]
    assert {"user.import", "group.create"} <= {e["action"] for e in events}


def test_delete_deprovisions_and_hides_and_a_new_create_brings_the_same_person_back(org):
    admin, client = org
    scim = client.scim_inbound()
    ada = scim.create_user(person("ada.lovelace"))
    scim.delete_user(ada["id"])
    assert admin.user_view("ada.lovelace@example.com")["state"] == "deprovisioned"  # never deleted at once
    with pytest.raises(NotFound):
        scim.user(ada["id"])
    assert scim.users(login="ada.lovelace@example.com") == []
    again = scim.create_user(person("ada.lovelace", active=True))
    assert again["id"] == ada["id"] and again["active"] is True


def test_a_put_removes_what_the_client_wrote_before_and_leaves_out_and_renames_by_username(org):
    admin, client = org
    scim = client.scim_inbound()
    ada = scim.create_user(person("ada.lovelace", title="Engineer"))
    scim.replace_user(ada["id"], person("ada.king"))
    user = admin.user_view("ada.king@example.com")
    assert "title" not in user["profile"] and user["profile"]["email"] == "ada.king@example.com"
    with pytest.raises(InvalidInput):
        admin.user_view("ada.lovelace@example.com")


def test_usernames_are_unique_case_insensitively_and_others_people_are_read_not_changed(org):
    admin, client = org
    scim = client.scim_inbound()
    scim.create_user(person("ada.lovelace"))
    with pytest.raises(Conflict):
        scim.create_user(person("ada.lovelace") | {"userName": "ADA.Lovelace@example.com"})
    admin.create_user("grace", "grace@example.com", "Grace", "Hopper", activate=True)
    grace = scim.users(login="GRACE")[0]  # a lookup before a create finds her
    with pytest.raises(Conflict, match="mastered by provtui"):
        scim.create_user({**person("grace"), "userName": "grace"})
    with pytest.raises(NotAllowed):
        scim.replace_user(grace["id"], {**person("grace"), "userName": "grace", "title": "Admiral"})
    with pytest.raises(NotAllowed):
        scim.delete_user(grace["id"])
    with pytest.raises(NotAllowed):
        scim.replace_group(admin.directory.group("eng")["id"], {"displayName": "eng", "members": []})
    assert admin.user_view("grace")["state"] == "active"


def test_a_stale_version_is_refused(org):
    _, client = org
    scim = client.scim_inbound()
    ada = scim.create_user(person("ada.lovelace"))
    scim.replace_user(ada["id"], person("ada.lovelace", title="CTO"), version=ada["meta"]["version"])
    with pytest.raises(Stale):
        scim.replace_user(ada["id"], person("ada.lovelace", title="CEO"), version=ada["meta"]["version"])


def test_a_client_that_is_removed_can_do_nothing(org):
    admin, client = org
    admin.remove_scim_client("okta")
    with pytest.raises(NotAllowed):
        client.scim_inbound().create_user(person("ada.lovelace"))
    with pytest.raises(NotAllowed):
        client.scim_inbound().users()


def test_group_members_are_set_both_ways_and_only_the_clients_memberships_change(org):
    admin, client = org
    scim = client.scim_inbound()
    ids = [scim.create_user(person(f"p{n}.x"))["id"] for n in range(4)]
    group = scim.create_group({"displayName": "team", "members": [{"value": i} for i in ids[:3]]})
    assert len(scim.group(group["id"])["members"]) == 3
    scim.replace_group(group["id"], {"displayName": "team", "members": [{"value": i} for i in ids[1:3]]})
    assert [m["value"] for m in scim.group(group["id"])["members"]] == ids[1:3]  # one removed, two kept
    scim.replace_group(group["id"], {"displayName": "team", "members": [{"value": i} for i in ids]})
    assert len(scim.group(group["id"])["members"]) == 4
    with pytest.raises(InvalidInput, match="no user"):
        scim.replace_group(group["id"], {"displayName": "team", "members": [{"value": "nobody"}]})
    scim.delete_group(group["id"])
    with pytest.raises(NotFound):
        scim.group(group["id"])
    assert admin.group_view("team")["members"] == 0  # its pushed memberships are gone


def test_a_burst_of_deprovisions_is_held_past_the_threshold_and_an_approval_applies_it(org):
    admin, client = org
    admin.set_config("scim.safeguard.minimum", "10")
    scim = client.scim_inbound()
    ids = [scim.create_user(person(f"p{n}.x"))["id"] for n in range(10)]
    scim.replace_user(ids[0], {**person("p0.x"), "active": False})
    scim.delete_user(ids[1])  # two of ten: at the 20% threshold, not past it
    held = scim.replace_user(ids[2], {**person("p2.x"), "active": False})
    assert isinstance(held, Held)
    assert admin.user_view("p2.x@example.com")["state"] == "active"  # nothing of it applied
    assert scim.replace_user(ids[2], {**person("p2.x"), "active": False}).id == held.id  # a retry: the same held change
    assert isinstance(scim.delete_user(ids[3]), Held)
    admin.rules().decide(held.id, approve=True)
    assert admin.user_view("p2.x@example.com")["state"] == "deprovisioned"
    assert scim.replace_user(ids[2], {**person("p2.x"), "active": False})["active"] is False  # the retry finds it done
    other = next(h for h in admin.rules().held() if h["state"] == "held")
    admin.rules().decide(other["id"], approve=False)
    with pytest.raises(NotAllowed, match="rejected"):
        scim.delete_user(ids[3])
    assert admin.user_view("p3.x@example.com")["state"] == "active"


def test_a_small_directory_is_never_held(org):
    _, client = org
    scim = client.scim_inbound()
    ids = [scim.create_user(person(f"p{n}.x"))["id"] for n in range(5)]
    for user_id in ids:  # a conformance suite deleting every user it made
        assert scim.delete_user(user_id) is None


def test_what_cannot_be_a_person_is_refused_naming_the_attribute(org):
    _, client = org
    scim = client.scim_inbound()
    with pytest.raises(InvalidInput) as refused:
        scim.create_user({"userName": "ada@example.com", "name": {"givenName": "Ada", "familyName": "L"}})
    assert refused.value.field == "emails"  # named as the client sent it
    with pytest.raises(InvalidInput, match="not a valid login"):
        scim.create_user({"userName": "bad login!", "emails": [{"value": "a@b.co"}], "name": {"givenName": "A", "familyName": "B"}})


def test_a_replace_that_does_not_say_active_leaves_the_lifecycle_and_does_not_show_it(org):
    admin, client = org
    scim = client.scim_inbound()
    ada = scim.create_user(person("ada.lovelace", active=False))
    assert admin.user_view("ada.lovelace@example.com")["state"] == "staged" and ada["active"] is False
    shown = scim.replace_user(ada["id"], person("ada.lovelace", title="CTO"))  # no active: as a PATCH removing it leaves it
    assert admin.user_view("ada.lovelace@example.com")["state"] == "staged" and "active" not in shown
    scim.replace_user(ada["id"], person("ada.lovelace", active=True))
    assert admin.user_view("ada.lovelace@example.com")["state"] == "active"
