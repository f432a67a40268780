"""SCIM resources as an inbound client pushes them and as provtui shows them (#20): pure."""

from __future__ import annotations

import pytest

from provtui.domain.errors import InvalidInput
from provtui.domain.mapping import ENTERPRISE
from provtui.domain.scim_resources import PROVTUI_USER, group_resource, pushed_members, pushed_user, scim_bool, user_resource, with_meta

OKTA_USER = {  # as Okta's SCIM 2.0 guide creates one
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
    "userName": "ada@example.com",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"primary": True, "value": "ada@example.com", "type": "work"}, {"value": "ada@home.example", "type": "home"}],
    "displayName": "Ada Lovelace",
    "externalId": "00u1abcd",
    "active": True,
    ENTERPRISE: {"employeeNumber": 42, "department": "Engineering", "manager": {"value": "grace@example.com"}},
    PROVTUI_USER: {"costCode": "C-7"},
}


def test_a_pushed_user_is_a_profile_its_state_and_its_external_id():
    pushed = pushed_user(OKTA_USER)
    assert pushed.profile == {
        "login": "ada@example.com",
        "displayName": "Ada Lovelace",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "employeeNumber": "42",  # a number sent for a text attribute: its text
        "department": "Engineering",
        "manager": "grace@example.com",
        "costCode": "C-7",
    }
    assert pushed.active is True and pushed.external_id == "00u1abcd"
    assert pushed_user({"userName": "a"}).active is None  # not said: a replace leaves the lifecycle as it is


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("False", False), ("True", True), ("false", False)])
def test_active_as_clients_send_it(value, expected):
    assert scim_bool(value, "active") is expected  # Entra ID sends "False" as a string


def test_the_email_is_the_primary_one_else_the_work_one_else_the_first():
    assert (
        pushed_user({"userName": "a", "emails": [{"value": "h@x.org", "type": "home"}, {"value": "w@x.org", "type": "work"}]}).profile[
            "email"
        ]
        == "w@x.org"
    )
    assert pushed_user({"userName": "a", "emails": [{"value": "o@x.org", "type": "other"}]}).profile["email"] == "o@x.org"


@pytest.mark.parametrize(
    "resource, field",
    [
        ({"userName": "a", "active": "maybe"}, "active"),
        ({"userName": "a", "title": ["x"]}, "title"),
        ({"userName": "a", "emails": "a@b.c"}, "emails"),
        ({"userName": "a", PROVTUI_USER: {"department": "x"}}, f"{PROVTUI_USER}:department"),
    ],
)
def test_what_cannot_be_read_is_refused_naming_the_attribute(resource, field):
    with pytest.raises(InvalidInput) as refused:
        pushed_user(resource)
    assert refused.value.field == field


def test_a_person_shown_back_holds_what_was_pushed_and_active_only_when_active():
    user = {"id": "u1", "login": "ada@example.com", "state": "active", "profile": pushed_user(OKTA_USER).profile}
    shown = user_resource(user, [("g1", "eng")], "00u1abcd")
    assert pushed_user(shown).profile == pushed_user(OKTA_USER).profile
    assert shown["externalId"] == "00u1abcd" and shown["groups"] == [{"value": "g1", "display": "eng", "type": "direct"}]
    assert shown["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, PROVTUI_USER]
    for state in ("staged", "suspended", "deprovisioned"):
        assert user_resource({**user, "state": state}, [], None)["active"] is False


def test_a_version_changes_exactly_when_the_resource_does():
    user = {"id": "u1", "login": "ada", "state": "active", "profile": {"login": "ada", "email": "a@x.org"}}
    one = with_meta(user_resource(user, [], None), "User", "t0", "t0")["meta"]["version"]
    assert with_meta(user_resource(user, [], None), "User", "t0", "t1")["meta"]["version"] == one
    assert with_meta(user_resource({**user, "state": "suspended"}, [], None), "User", "t0", "t0")["meta"]["version"] != one


def test_a_groups_members_are_people_by_id():
    assert pushed_members({"members": [{"value": "u1"}, {"value": "u2", "type": "User"}, {"value": "u1"}]}) == ["u1", "u2"]
    with pytest.raises(InvalidInput, match="only people"):
        pushed_members({"members": [{"value": "g2", "type": "Group"}]})
    shown = group_resource({"id": "g1", "name": "eng"}, [("u2", "bob"), ("u1", "ada")], "ext-1")
    assert shown["members"][0] == {"value": "u1", "$ref": "Users/u1", "type": "User"} and shown["externalId"] == "ext-1"
