"""Bulk changes (provtui.service.bulk): the preview is the change, run on a transaction never committed, so it
says exactly what applying does; who is skipped says why; roles hold per person; it is audited, all or nothing."""

from __future__ import annotations

import pytest

from provtui.domain.errors import HeldForConfirmation, InvalidInput, NotAllowed
from provtui.domain.rules import RuleState
from provtui.service import Service


@pytest.fixture
def org(store_location) -> Service:
    """Ten people in sales (Slack through it); tools follows engineering by a rule (Jira through it)."""
    service = Service.init(store_location, actor="admin")
    for group in ("sales", "engineering", "tools"):
        service.create_group(group)
    for app in ("Slack", "GitHub", "Jira"):
        service.create_app(app, manual=True, notify=["it@example.com"])
    logins = [f"p{n}" for n in range(10)]
    for login in logins:
        service.create_user(login, f"{login}@example.com", "P", login, {"department": "Sales"}, activate=True)
    service.add_members("sales", logins)
    service.assign("Slack", group="sales")
    service.assign("GitHub", group="engineering")
    service.assign("Jira", group="tools")
    service.rules().create("tools", groups=["tools"], expr='isMemberOfGroupName("engineering")', exclude=[])
    service.rules().change("tools", state=RuleState.ACTIVE)
    return service


def standing(service: Service, login: str) -> tuple[str, list[str], list[str]]:
    view = service.user_view(login)
    return view["state"], sorted(view["groups"]), sorted(a["app"] for a in view["apps"] if a["entitled"])


def test_the_preview_is_what_applying_then_does_rules_included(org):
    seq = org.store.seq
    preview = org.bulk_change("move", users=["p0", "p1"], group="sales", to_group="engineering", preview=True)
    assert org.store.seq == seq  # nothing written
    applied = org.bulk_change("move", users=["p0", "p1"], group="sales", to_group="engineering", confirm=True)
    assert applied == {**preview, "applied": True}
    assert preview["changed"][0] == {
        "login": "p0",
        "state": "active",
        "state_after": "active",
        "joins": ["engineering", "tools"],  # tools by the rule, re-evaluated in the same change
        "leaves": ["sales"],
        "gains": ["GitHub", "Jira"],
        "losses": ["Slack"],
    }
    assert standing(org, "p1") == ("active", ["engineering", "tools"], ["GitHub", "Jira"])
    assert org.store.seq == seq + 1  # one unit of work


def test_who_is_skipped_says_why(org):
    org.change_state("p1", "suspend")
    org.create_user("newbie", "n@example.com", "N", "B")  # staged: not suspendable
    plan = org.bulk_change("suspend", users=["p0", "p1", "newbie", "p0"], preview=True)
    assert plan["counts"] == {"selected": 3, "changed": 1, "skipped": 2, "gains": 0, "losses": 1}
    assert plan["skipped"] == [
        {"login": "p1", "why": "unchanged", "reason": "already suspended"},
        {"login": "newbie", "why": "lifecycle", "reason": "cannot suspend a user who is staged (only from: active)"},
    ]
    org.bulk_change("move", users=["p2"], group="sales", to_group="engineering")  # one person: not held
    moves = org.bulk_change("move", users=["p2", "p3"], group="sales", to_group="engineering", preview=True)
    assert moves["skipped"] == [{"login": "p2", "why": "unchanged", "reason": "already in engineering"}]
    # a membership a rule holds is changed there, not by hand
    refused = org.bulk_change("move", users=["p2"], group="tools", to_group="sales", preview=True)
    assert refused["skipped"][0]["why"] == "refused" and "by rule" in refused["skipped"][0]["reason"]
    assigned = org.bulk_change("unassign", users=["p4"], app="Slack", preview=True)
    assert assigned["skipped"] == [{"login": "p4", "why": "unchanged", "reason": "Slack is not assigned to them directly"}]


def test_more_than_one_person_is_held_until_confirmed_and_nothing_is_written(org):
    seq = org.store.seq
    with pytest.raises(HeldForConfirmation) as held:
        org.bulk_change("assign", users=["p0", "p1"], app="GitHub")
    assert org.store.seq == seq
    assert held.value.details == org.bulk_change("assign", users=["p0", "p1"], app="GitHub", preview=True)
    org.bulk_change("assign", users=["p0"], app="GitHub")  # one person: applied without asking
    assert standing(org, "p0")[2] == ["GitHub", "Slack"]


def test_a_filter_chooses_the_people_and_a_bad_one_names_the_option(org):
    org.update_user("p9", {"department": "Support"})
    plan = org.bulk_change("assign", where='user.department == "Support"', app="GitHub", preview=True)
    assert [p["login"] for p in plan["changed"]] == ["p9"]
    with pytest.raises(InvalidInput) as bad:
        org.bulk_change("assign", where='user.department == "Support', app="GitHub", preview=True)
    assert bad.value.field == "--filter"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "promote", "users": ["p0"]}, "ACTION"),
        ({"action": "suspend"}, "--users"),
        ({"action": "suspend", "users": ["p0"], "where": "true"}, "--users"),
        ({"action": "suspend", "users": ["nobody"]}, "--users"),
        ({"action": "suspend", "users": ["p0"], "app": "Slack"}, "--app"),
        ({"action": "move", "users": ["p0"], "group": "sales"}, "--to-group"),
        ({"action": "move", "users": ["p0"], "group": "nope", "to_group": "sales"}, "--group"),
        ({"action": "move", "users": ["p0"], "group": "sales", "to_group": "sales"}, "--to-group"),
        ({"action": "assign", "users": ["p0"], "app": "Nope"}, "--app"),
        ({"action": "assign", "users": ["p\x1b0"], "app": "Slack"}, "--users"),
    ],
)
def test_bad_input_names_the_option(org, kwargs, field):
    action, rest = kwargs["action"], {k: v for k, v in kwargs.items() if k != "action"}  # the dict is shared by both backends' runs
    with pytest.raises(InvalidInput) as bad:
        org.bulk_change(action, preview=True, **rest)
    assert bad.value.field == field


def test_roles_hold_per_person_and_a_role_that_allows_nobody_is_refused(org):
    org.grant("desk", "helpdesk", groups=["sales", "engineering"])
    desk = Service.open(org.location, actor="desk")
    seq = org.store.seq
    with pytest.raises(NotAllowed, match="super-admin"):
        desk.bulk_change("deactivate", users=["p0", "p1"], confirm=True)
    assert org.store.seq == seq
    done = desk.bulk_change("move", users=["p0", "p1"], group="sales", to_group="engineering", confirm=True)
    assert done["applied"] and done["counts"]["changed"] == 2
    # the rule's group is outside the helpdesk's scope: refused for everyone, so a refusal
    with pytest.raises(NotAllowed):
        desk.bulk_change("move", users=["p2"], group="sales", to_group="tools", preview=True)


def test_past_the_safeguard_confirming_needs_the_role_approving_needs(org):
    org.grant("desk", "helpdesk", groups=["sales"])
    desk = Service.open(org.location, actor="desk")
    plan = desk.bulk_change("suspend", users=["p0", "p1", "p2"], preview=True)  # 3 of Slack's 10: above 20%
    assert plan["safeguard"] == [{"app": "Slack", "losing": 3, "entitled": 10}]
    with pytest.raises(NotAllowed, match="confirm a change the safeguard holds"):
        desk.bulk_change("suspend", users=["p0", "p1", "p2"], confirm=True)
    assert desk.bulk_change("suspend", users=["p0"])["applied"]  # 1 of 10: within it
    assert org.bulk_change("suspend", users=["p1", "p2"], confirm=True)["applied"]


def test_each_step_is_audited_with_the_bulk_change_under_one_correlation(org):
    org.bulk_change("suspend", users=["p0", "p1"], confirm=True)
    events = org.audit(3)
    bulk = next(e for e in events if e["action"] == "user.bulk")
    steps = [e for e in events if e["action"] == "user.suspend"]
    assert {e["target"] for e in steps} == {"p0", "p1"}
    assert {e["correlation"] for e in steps} == {bulk["correlation"]}
    assert bulk["target"] == "suspend" and bulk["after"]["users"] == ["p0", "p1"] and bulk["after"]["skipped"] == []
