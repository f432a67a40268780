"""The audit filter ``about``: the target, or a person the event names (provtui.model.audit_trail)."""

from __future__ import annotations

from provtui.model.audit_trail import about_matches, filter_events

EVENTS = [
    {"seq": 1, "action": "user.create", "target": "ada", "before": None, "after": {"state": "staged"}},
    {"seq": 2, "action": "group.add-member", "target": "eng", "before": None, "after": {"users": ["Ada", "alan"]}},
    {"seq": 3, "action": "app.assign", "target": "Slack", "before": None, "after": {"subject": "user:ada"}},
    {"seq": 4, "action": "app.assign", "target": "Slack", "before": None, "after": {"subject": "group:eng"}},
    {"seq": 5, "action": "group.remove-member", "target": "eng", "before": None, "after": {"users": ["alan"]}},
    {"seq": 6, "action": "user.create", "target": "adam", "before": None, "after": {"state": "staged"}},
]


def test_about_a_person_is_their_events_and_those_naming_them():
    assert [e["seq"] for e in filter_events(EVENTS, about="ada")] == [1, 2, 3]  # not adam; case-insensitive
    assert [e["seq"] for e in filter_events(EVENTS, about="alan")] == [2, 5]
    assert [e["seq"] for e in filter_events(EVENTS, about="ada", action="group")] == [2]


def test_about_a_thing_is_its_target_and_globs_reach_logins_too():
    assert [e["seq"] for e in filter_events(EVENTS, about="eng")] == [2, 4, 5]  # and Slack assigned to the group
    assert [e["seq"] for e in filter_events(EVENTS, about="ad*")] == [1, 2, 3, 6]
    assert about_matches("user:ada", EVENTS[0]) is False  # a kind: prefix matches targets, as --target does


def test_target_still_matches_the_target_only():
    assert [e["seq"] for e in filter_events(EVENTS, target="ada")] == [1]
