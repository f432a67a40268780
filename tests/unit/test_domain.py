"""The domain: lifecycle, validation, entitlement and the plan (its purity: tests/integration/test_domain_purity.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtui.domain.entitlement import entitlement_paths, is_entitled
from provtui.domain.errors import InvalidInput
from provtui.domain.lifecycle import State, actions_from, transition
from provtui.domain.mapping import WORK_EMAIL, map_attributes
from provtui.domain.plan import Action, DesiredAccount, KnownAccount, desired_account, plan_account
from provtui.domain.users import parse_assignments, validate_profile

PROFILE = {"login": "ada", "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        ("staged", "activate", "active"),
        ("active", "suspend", "suspended"),
        ("suspended", "unsuspend", "active"),
        ("staged", "deactivate", "deprovisioned"),
        ("active", "deactivate", "deprovisioned"),
        ("suspended", "deactivate", "deprovisioned"),
        ("deprovisioned", "reactivate", "active"),
        ("deprovisioned", "delete", "deleted"),
    ],
)
def test_legal_transitions(start, action, end):
    assert transition(start, action) == State(end)


@pytest.mark.parametrize(
    ("start", "action"),
    [
        ("active", "activate"),
        ("staged", "suspend"),
        ("active", "delete"),
        ("suspended", "reactivate"),
        ("deleted", "reactivate"),
        ("deleted", "activate"),
        ("active", "unsuspend"),
    ],
)
def test_illegal_transitions_are_errors(start, action):
    with pytest.raises(InvalidInput) as error:
        transition(start, action)
    assert error.value.field == "state"


def test_unknown_action():
    with pytest.raises(InvalidInput, match="unknown lifecycle action"):
        transition("active", "explode")


def test_actions_from():
    assert actions_from("active") == ["suspend", "deactivate"]
    assert actions_from("deleted") == []


def test_profile_validation_names_the_field():
    assert validate_profile(PROFILE)["displayName"] == "Ada Lovelace"
    assert validate_profile({**PROFILE, "login": "Ada"})["login"] == "ada"
    for field, value in (("email", "not-an-email"), ("login", "bad login!"), ("firstName", "")):
        with pytest.raises(InvalidInput) as error:
            validate_profile({**PROFILE, field: value})
        assert error.value.field == field
    with pytest.raises(InvalidInput) as error:
        validate_profile({**PROFILE, "9bad": "x"})
    assert error.value.field == "9bad"


def test_parse_assignments():
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InvalidInput, match="--set"):
        parse_assignments(["novalue"])


def test_entitlement_paths_direct_and_groups():
    paths = entitlement_paths({"slack"}, {"g1": "eng", "g2": "all"}, {"g1": {"slack", "gh"}, "g2": {"slack"}})
    assert paths == {"slack": ["direct", "group:all", "group:eng"], "gh": ["group:eng"]}
    assert is_entitled("active", paths["gh"])
    assert not is_entitled("suspended", paths["gh"])
    assert not is_entitled("active", [])


def test_default_mapping():
    attrs = map_attributes("u1", {**PROFILE, "department": "Eng", "title": "Countess", "displayName": "Ada L"})
    assert attrs["externalId"] == "u1"
    assert attrs["userName"] == "ada"
    assert attrs["name.givenName"] == "Ada"
    assert attrs[WORK_EMAIL] == "ada@example.com"
    assert attrs["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"] == "Eng"


ATTRS = {"externalId": "u1", "userName": "ada", "title": "A"}


def test_plan_create_only_when_active_and_entitled():
    assert plan_account(desired_account("active", ["direct"], ATTRS), None) == plan_account(DesiredAccount(True, ATTRS), None)
    assert plan_account(DesiredAccount(True, ATTRS), None).action == Action.CREATE
    for state in ("staged", "suspended", "deprovisioned"):
        assert plan_account(desired_account(state, ["direct"], ATTRS), None) is None
    assert plan_account(desired_account("active", [], ATTRS), None) is None


def test_plan_update_sends_only_the_difference():
    known = KnownAccount("r1", True, ATTRS)
    assert plan_account(DesiredAccount(True, ATTRS), known) is None
    change = plan_account(DesiredAccount(True, {**ATTRS, "title": "B"}), known)
    assert change.action == Action.UPDATE and change.attributes == {"title": "B"}


def test_plan_deactivate_and_reactivate():
    known = KnownAccount("r1", True, ATTRS)
    assert plan_account(DesiredAccount(False, ATTRS), known).action == Action.DEACTIVATE
    inactive = KnownAccount("r1", False, ATTRS)
    assert plan_account(DesiredAccount(False, ATTRS), inactive) is None
    change = plan_account(DesiredAccount(True, {**ATTRS, "title": "C"}), inactive)
    assert change.action == Action.REACTIVATE and change.attributes == {"title": "C"} and change.active


def test_known_account_from_doc():
    assert KnownAccount.from_doc(None) is None
    assert KnownAccount.from_doc({"remote_id": None}) is None
    assert KnownAccount.from_doc({"remote_id": "x", "active": True, "attributes": {"a": 1}}) == KnownAccount("x", True, {"a": 1})


def test_deletion_policy_deletes_only_after_the_retention_period():
    from datetime import UTC, datetime, timedelta

    from provtui.domain.plan import DeletionPolicy

    now = datetime(2026, 3, 1, tzinfo=UTC)
    known = KnownAccount("r1", False, ATTRS, deactivated_at=now - timedelta(days=10))
    gone = DesiredAccount(False, ATTRS)
    assert plan_account(gone, known, DeletionPolicy(None), now) is None  # deactivate only: the default
    assert plan_account(gone, known, DeletionPolicy(30), now) is None
    assert plan_account(gone, known, DeletionPolicy(10), now).action == Action.DELETE
    assert plan_account(gone, KnownAccount("r1", True, ATTRS), DeletionPolicy(0), now).action == Action.DEACTIVATE
    back = DesiredAccount(True, ATTRS)  # returned before deletion: reactivate, never delete
    assert plan_account(back, known, DeletionPolicy(10), now).action == Action.REACTIVATE
    doc = {"remote_id": "r1", "active": False, "deactivated_at": "2026-02-19T00:00:00.000Z"}
    assert KnownAccount.from_doc(doc).deactivated_at == now - timedelta(days=10)


def test_group_push_plan():
    from provtui.domain.group_push import DesiredGroup, GroupAction, KnownGroup, plan_group

    want = DesiredGroup(True, "eng", frozenset({"r1", "r2"}))
    assert plan_group(want, None).action == GroupAction.CREATE
    assert plan_group(want, None).add == {"r1", "r2"}
    same = KnownGroup("g1", "eng", frozenset({"r1", "r2"}))
    assert plan_group(want, same) is None
    change = plan_group(DesiredGroup(True, "engineering", frozenset({"r2", "r3"})), same)
    assert (change.action, change.rename, change.add, change.remove) == (GroupAction.UPDATE, "engineering", {"r3"}, {"r1"})
    assert plan_group(DesiredGroup(False, "eng", frozenset()), same).action == GroupAction.FORGET
    assert plan_group(DesiredGroup(False, "eng", frozenset(), delete_on_unpush=True), same).action == GroupAction.DELETE
    assert plan_group(DesiredGroup(False, "eng", frozenset()), None) is None
    assert KnownGroup.from_doc({"remote_id": None}) is None


def test_password_policy_and_random_passwords():
    from provtui.domain.passwords import random_password, validate_password

    assert validate_password("correct horse") == "correct horse"
    with pytest.raises(InvalidInput) as error:
        validate_password("short")
    assert error.value.field == "password" and "secret" not in str(error.value)
    with pytest.raises(InvalidInput, match="mix"):
        validate_password("alllowercase", min_classes=2)
    passwords = {random_password() for _ in range(50)}
    assert len(passwords) == 50 and all(len(p) == 16 for p in passwords)
    assert all(validate_password(p, min_classes=4) for p in passwords)


@given(
    profile=st.dictionaries(
        st.sampled_from(["login", "email", "firstName", "title", "costCenter", "manager"]),
        st.one_of(st.none(), st.text(max_size=5), st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2)),
    )
)
def test_a_mapping_that_only_reads_an_attribute_maps_as_its_expression_does(profile):
    """map_attributes reads ``user.<attribute>`` straight from the profile: the same values the compiled
    expression gives, whatever the profile holds; other expressions run as compiled."""
    from provtui.domain.expressions.values import NO_GROUPS
    from provtui.domain.mapping import compile_mapping

    mappings = [
        compile_mapping(f"t{n}", expr) for n, expr in enumerate(["user.title", "user.costCenter", "user.nobody", 'user.login + "!"'])
    ]
    assert [m.profile_field for m in mappings] == ["title", "costCenter", "nobody", None]
    scope = {"user": profile, "assignment": {}}
    by_expression = {m.target: (lambda v: None if v == "" else v)(m.expression.function(scope, NO_GROUPS)) for m in mappings}
    assert map_attributes("u1", profile, mappings) == {"externalId": "u1", **by_expression}
