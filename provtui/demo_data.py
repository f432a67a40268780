"""The demo organisation: people from fixtures/people.csv, groups and assignments.

Used by `provtui demo` and by tests that want a realistic little directory.
Everything is written through the service, as an admin would.
"""

from __future__ import annotations

import csv
from pathlib import Path

from provtui.domain.errors import HeldForConfirmation
from provtui.domain.rules import RuleState
from provtui.service import Service

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PEOPLE_CSV = FIXTURES / "people.csv"

# group -> departments whose people join it
DEMO_GROUPS = {
    "engineering": ("Engineering",),
    "sales": ("Sales",),
    "finance": ("Finance",),
    "support": ("Support",),
    "people-ops": ("People",),
}


def load_people(path: Path = PEOPLE_CSV) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def seed_people(service: Service, people: list[dict[str, str]]) -> None:
    for person in people:
        row = dict(person)
        state = row.pop("state", "active")
        login, email, first, last = row.pop("login"), row.pop("email"), row.pop("firstName"), row.pop("lastName")
        service.create_user(login, email, first, last, {k: v for k, v in row.items() if v}, activate=state != "staged")
        if state == "suspended":
            service.change_state(login, "suspend")


def seed_demo(service: Service, scim_apps: list[tuple[str, str, str]], manual_app: str | None = "Payroll") -> None:
    """People, groups, and apps: ``scim_apps`` is (name, base URL, token env var) each.

    The first SCIM app goes to everyone through the all-staff group, the second
    to engineering plus a direct assignment, the manual app to finance.
    """
    people = load_people()
    seed_people(service, people)
    service.create_group("all-staff", "Everyone employed")
    service.add_members("all-staff", [p["login"] for p in people])
    for group, departments in DEMO_GROUPS.items():
        service.create_group(group, f"{', '.join(departments)} department")
        service.add_members(group, [p["login"] for p in people if p["department"] in departments])
    for name, url, token_env in scim_apps:
        service.create_app(name, scim_url=url, token_env=token_env)
    if scim_apps:
        service.assign(scim_apps[0][0], group="all-staff")
    if len(scim_apps) > 1:
        service.assign(scim_apps[1][0], group="engineering")
        support_lead = next(p["login"] for p in people if p["department"] == "Support")
        service.assign(scim_apps[1][0], login=support_lead)
    if manual_app:
        service.create_app(manual_app, manual=True, notify=["it-admins@example.com"])
        service.assign(manual_app, group="finance")


# The demo's rules: one reads a profile attribute, one reads a group; the second grants the manual app.
ON_CALL = 'user.department == "Engineering" or user.department == "Support"'
PAYROLL_USERS = 'isMemberOfGroupName("finance") or isMemberOfGroupName("people-ops")'
# The held change: "and" typed for "or", which would take Payroll from most of its people.
PAYROLL_USERS_TYPO = 'isMemberOfGroupName("finance") and user.location == "London"'


def seed_rules(service: Service, app: str | None = "Payroll") -> str:
    """Two active rules and a change to one of them held by the safeguard, waiting for an admin's approval
    (what `provtui demo` shows on first look).  ``app`` goes to the second rule's group.  The held change's id."""
    service.create_group("on-call", "Engineering and Support, by the on-call rule")
    service.create_group("payroll-users", "Finance and People, by the payroll-users rule")
    if app:
        service.assign(app, group="payroll-users")
    rules = service.rules()
    for name, expr in (("on-call", ON_CALL), ("payroll-users", PAYROLL_USERS)):
        rules.create(name, groups=[name], expr=expr, exclude=[])
        rules.change(name, state=RuleState.ACTIVE, confirm=True)
    try:
        rules.change("payroll-users", expr=PAYROLL_USERS_TYPO)
    except HeldForConfirmation as held:
        return str(held.details["held"])
    raise RuntimeError("the demo's typo was not held: is the safeguard off?")
