"""Entra ID's removal of group members by a value list, read as the members it names (#20): never everybody."""

from __future__ import annotations

import json

from provtui.server.scim.quirks import member_removals, patch_body


def test_a_removal_by_value_list_names_exactly_those_members():
    ops = [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "u1"}, {"value": 'odd"id'}]}]
    assert member_removals(ops) == [{"op": "remove", "path": 'members[value eq "u1" or value eq "odd\\"id"]'}]


def test_an_empty_list_removes_nobody_and_other_operations_are_left_alone():
    keep = [{"op": "remove", "path": 'members[value eq "u1"]'}, {"op": "add", "path": "members", "value": [{"value": "u2"}]}]
    assert member_removals([{"op": "Remove", "path": "members", "value": []}, *keep]) == keep
    bare = [{"op": "remove", "path": "members"}]  # RFC 7644: every member (no list to read otherwise)
    assert member_removals(bare) == bare


def test_a_body_that_needs_nothing_is_passed_as_it_is():
    body = json.dumps({"Operations": [{"op": "replace", "value": {"displayName": "x"}}]}).encode()
    assert patch_body(body) is body and patch_body(b"not json") == b"not json"
