"""A preview is the change itself, run on a transaction that is never committed: it never disagrees
with the outcome, and it writes nothing."""

from __future__ import annotations

from provtui.domain.rules import RuleState
from provtui.service import Service


def apps_of(service: Service, login: str) -> set[str]:
    return {a["app"] for a in service.user_view(login)["apps"] if a["via"]}


def test_a_move_preview_says_what_the_move_then_does_rules_included(store_location):
    service = Service.init(store_location, actor="admin")
    service.create_user("ada", "ada@example.com", "Ada", "L", {"department": "Finance"}, activate=True)
    for group in ("finance", "engineering", "eng-tools"):
        service.create_group(group)
    for app in ("Payroll", "GitHub", "Jira"):
        service.create_app(app, manual=True, notify=["it@example.com"])
    service.assign("Payroll", group="finance")
    service.assign("GitHub", group="engineering")
    service.assign("Jira", group="eng-tools")
    service.add_members("finance", ["ada"])
    # a rule fills eng-tools with the members of engineering: the move's effect goes through it
    service.rules().create("tools", groups=["eng-tools"], expr='isMemberOfGroupName("engineering")', exclude=[])
    service.rules().change("tools", state=RuleState.ACTIVE)
    before, seq = apps_of(service, "ada"), service.store.seq

    preview = service.move_preview("ada", "finance", "engineering")
    assert service.store.seq == seq  # nothing written
    service.move_member("ada", "finance", "engineering")
    after = apps_of(service, "ada")
    assert preview == {"gains": sorted(after - before), "losses": sorted(before - after), "active": True}
    assert preview["gains"] == ["GitHub", "Jira"] and preview["losses"] == ["Payroll"]
