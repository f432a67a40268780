"""What `provtui demo` shows on first look (#18): two active rules (one reading a department, one reading a
group) on the rules screen, and on Tasks a change to one of them held by the safeguard, waiting for approval."""

from __future__ import annotations

import pytest

from provtui.demo_data import seed_rules
from provtui.service import Service
from provtui.tui.app import build_app
from tests.helpers.console import NARROW, WIDE, press, screen_text, settle, snap


@pytest.fixture
def first_look(demo) -> Service:
    seed_rules(demo)
    return demo


def test_rules_on_first_look_80x24(snap_compare, first_look):
    assert snap(snap_compare, first_look, NARROW, "o")


def test_rules_on_first_look_120x40(snap_compare, first_look):
    assert snap(snap_compare, first_look, WIDE, "o")


def test_the_held_change_on_first_look_80x24(snap_compare, first_look):
    assert snap(snap_compare, first_look, NARROW, "t")


def test_the_held_change_on_first_look_120x40(snap_compare, first_look):
    assert snap(snap_compare, first_look, WIDE, "t")


async def test_the_demo_rules_put_people_in_their_groups_and_the_typo_waits(first_look):
    groups = {g["name"]: g["members"] for g in first_look.list_groups()}
    assert groups["on-call"] == 15  # Engineering (8) and Support (7): the rule reads department
    assert groups["payroll-users"] == 14  # finance (7) and people-ops (7): the rule reads groups
    [held] = [h for h in first_look.rules().held() if h["state"] == "held"]
    # people-ops would lose Payroll: the six entitled (wcunningham is staged); finance keep it through their group
    assert held["name"] == "payroll-users" and held["summary"]["losses"] == 6
    app = build_app(first_look, label="demo")
    async with app.run_test(size=NARROW) as pilot:
        await settle(pilot)
        await press(pilot, "t")
        assert "Held changes (1)" in screen_text(app)
