"""The previews of unassigning an app from a person and of a lifecycle step (provtui.service.access_preview):
the change itself run on a transaction never committed, so they say what the change then does, rules
included, write nothing, and are refused to whoever may not make the change."""

from __future__ import annotations

import pytest

from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.domain.rules import RuleState
from provtui.service import Service


def entitled(service: Service, login: str) -> set[str]:
    return {a["app"] for a in service.user_view(login)["apps"] if a["entitled"]}


@pytest.fixture
def service(store_location) -> Service:
    service = Service.init(store_location, actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "L", {"department": "Eng"}, activate=True)
    service.create_group("staff")
    service.create_group("eng-tools")
    for app in ("Slack", "GitHub", "Jira"):
        service.create_app(app, manual=True, notify=["it@example.com"])
    service.add_members("staff", ["ada"])
    service.assign("Slack", group="staff")
    service.assign("Jira", group="eng-tools")
    service.assign("Slack", login="ada")
    service.assign("GitHub", login="ada")
    # a rule puts engineers in eng-tools: Jira comes through it
    service.rules().create("tools", groups=["eng-tools"], expr='user.department == "Eng"', exclude=[])
    service.rules().change("tools", state=RuleState.ACTIVE)
    return service


def test_unassigning_the_only_path_deactivates_the_account(service):
    before, seq = entitled(service, "ada"), service.store.seq
    preview = service.unassign_preview("GitHub", login="ada")
    assert service.store.seq == seq  # nothing written
    service.unassign("GitHub", login="ada")
    assert preview == {"losses": sorted(before - entitled(service, "ada")), "gains": [], "active": True, "still_via": []}
    assert preview["losses"] == ["GitHub"]


def test_unassigning_an_app_a_group_also_gives_changes_nothing_and_names_the_group(service):
    preview = service.unassign_preview("Slack", login="ada")
    assert preview == {"losses": [], "gains": [], "active": True, "still_via": ["group:staff"]}
    service.unassign("Slack", login="ada")
    assert "Slack" in entitled(service, "ada")


@pytest.mark.parametrize("action", ["suspend", "deactivate"])
def test_suspend_and_deactivate_list_every_account_they_deactivate_rules_included(service, action):
    before, seq = entitled(service, "ada"), service.store.seq
    assert before == {"Slack", "GitHub", "Jira"}  # Jira through the rule's group
    preview = service.lifecycle_preview("ada", action)
    assert service.store.seq == seq
    service.change_state("ada", action)
    assert preview == {"losses": sorted(before), "gains": [], "active": False}


def test_unsuspending_lists_the_accounts_it_gives_back(service):
    service.change_state("ada", "suspend")
    assert service.lifecycle_preview("ada", "unsuspend") == {"losses": [], "gains": ["GitHub", "Jira", "Slack"], "active": True}


def test_a_preview_is_refused_as_the_change_would_be(service):
    with pytest.raises(InvalidInput):
        service.lifecycle_preview("ada", "delete")  # an active user is deactivated before deletion
    service.grant("desk", "helpdesk", groups=["staff"])
    desk = Service.open(service.location, actor="desk")
    with pytest.raises(NotAllowed):
        desk.unassign_preview("GitHub", login="ada")
    assert desk.lifecycle_preview("ada", "suspend")["losses"] == ["GitHub", "Jira", "Slack"]  # the helpdesk may suspend
