"""The demo organisation: people from fixtures/people.csv, groups and assignments.

Used by `provtui demo` and by tests that want a realistic little directory.
Everything is written through the service, as an admin would.
"""

from __future__ import annotations

import csv
from pathlib import Path

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
