"""The console shows and sets assignment values and priorities, shows app and source groups as
read-only, and shows an LDAP app's settings and mappings like any other app."""

from __future__ import annotations

import pytest

from provtui.connectors.scim import RemoteGroup
from provtui.tui.app import build_app
from provtui.tui.screens.group_detail import GroupDetailScreen
from provtui.tui.screens.modals import InputModal
from tests.helpers.console import NARROW, WIDE, press, screen_text, settle, snap

LDAP = {
    "uri": "ldap://127.0.0.1:9",
    "bind_dn": "cn=admin,dc=example,dc=org",
    "password_env": "DIR_BIND_PASSWORD",
    "base_dn": "ou=people,dc=example,dc=org",
    "disable_method": "ou:ou=disabled,dc=example,dc=org",
}


@pytest.fixture
def valued(demo):
    """The demo with values on assignments, an LDAP app, and an app group imported from Slack."""
    demo.assign("GitHub", group="engineering", values={"role": "member", "team": "core"}, priority=2)
    demo.create_group("github-admins", "who administers GitHub")
    demo.add_members("github-admins", ["alovelace"])
    demo.assign("GitHub", group="github-admins", values={"role": "admin"}, priority=1)
    demo.create_app("Directory", ldap=LDAP)
    demo.assign("Directory", group="engineering", values={"shell": "/bin/zsh"})
    demo.importer().import_app_groups("Slack", groups=[RemoteGroup("g1", "Slack Owners", None, set())])
    return demo


async def test_a_group_assignment_gets_values_and_a_priority(valued):
    app = build_app(valued, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_group("finance")
        await settle(pilot)
        await press(pilot, "N", "=sla", "enter")
        assert isinstance(app.screen, InputModal)
        await press(pilot, "=role=viewer 'note=read only'", "enter")
        assert isinstance(app.screen, InputModal)  # then the priority
        await press(pilot, "=5", "enter")
        await settle(pilot)
        slack = next(a for a in valued.app_assignments("Slack") if a["name"] == "finance")
        assert (slack["values"], slack["priority"]) == ({"role": "viewer", "note": "read only"}, 5)
        assert "Slack (note=read only, role=viewer · priority 5)" in screen_text(app)
        await press(pilot, "N", "=sla", "enter", "ctrl+u", "=role=", "enter", "ctrl+u", "=x", "enter")
        await settle(pilot)  # KEY= clears one value; a priority that is no number is refused, nothing written
        slack = next(a for a in valued.app_assignments("Slack") if a["name"] == "finance")
        assert (slack["values"], slack["priority"]) == ({"role": "viewer", "note": "read only"}, 5)
        await press(pilot, "N", "=sla", "enter", "ctrl+u", "=role=", "enter", "enter")
        await settle(pilot)
        slack = next(a for a in valued.app_assignments("Slack") if a["name"] == "finance")
        assert (slack["values"], slack["priority"]) == ({"note": "read only"}, 5)


async def test_the_user_page_shows_whose_values_win_and_assigns_with_values(valued):
    app = build_app(valued, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_user("alovelace")
        await settle(pilot)
        text = screen_text(app)
        assert "GitHub     role=admin      group:github-admins" in text
        assert "           team=core       group:engineering" in text
        await press(pilot, "N", "=git", "enter", "=role=owner", "enter")
        await settle(pilot)
        github = next(a for a in valued.user_view("alovelace")["apps"] if a["app"] == "GitHub")
        assert github["values"] == {"role": "owner", "team": "core"} and github["values_via"]["role"] == "direct"
        assert "GitHub     role=owner      direct" in screen_text(app)


async def test_the_app_page_lists_assignments_with_values_and_an_ldap_apps_settings(valued):
    app = build_app(valued, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_app("GitHub")
        await settle(pilot)
        text = screen_text(app)
        assert "group  engineering    role=member, team=core · priority 2" in text
        assert "group  github-admins  role=admin · priority 1" in text
        assert "user   mhamilton      no values" in text
        app.open_app("Directory")
        await settle(pilot)
        text = screen_text(app)
        for shown in (
            "ldap://127.0.0.1:9",
            "ou=people,dc=example,dc=org",
            "openldap",
            "RDN attribute     uid",
            "ou:ou=disabled,dc=example,dc=org",
            "$DIR_BIND_PASSWORD",
            "Mappings",
        ):
            assert shown in text
        await press(pilot, "v", "=alove", "enter")
        await settle(pilot)
        text = screen_text(app)
        assert '"uid": "alovelace"' in text and '"schemas"' not in text  # the entry's attributes, not a SCIM body


async def test_app_groups_are_marked_and_read_only(valued):
    app = build_app(valued, label="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await press(pilot, "g")
        text = screen_text(app)
        assert "app Slack" in text and "provtui" in text
        app.open_group("Slack Owners")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GroupDetailScreen)
        assert "From app Slack" in screen_text(app)
        assert screen.check_action("add_member", ()) is False and screen.check_action("remove_member", ()) is False
        await press(pilot, "plus")
        assert app.screen is screen  # nothing opens


def test_group_with_values_80x24(snap_compare, valued):
    assert snap(snap_compare, valued, NARROW, group="engineering")


def test_group_with_values_120x40(snap_compare, valued):
    assert snap(snap_compare, valued, WIDE, group="engineering")


def test_ldap_app_120x40(snap_compare, valued):
    assert snap(snap_compare, valued, WIDE, app="Directory")


def test_ldap_app_80x24(snap_compare, valued):
    assert snap(snap_compare, valued, NARROW, app="Directory")


def test_user_values_120x40(snap_compare, valued):
    assert snap(snap_compare, valued, WIDE, user="alovelace")


def test_groups_with_kinds_120x40(snap_compare, valued):
    assert snap(snap_compare, valued, WIDE, "g")


def test_groups_with_kinds_80x24(snap_compare, valued):
    assert snap(snap_compare, valued, NARROW, "g")
