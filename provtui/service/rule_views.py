"""Group rules as admins read them: a rule with its groups and excluded people by name, a preview's joins,
leaves, gains and losses by login and app name, the safeguard's breaches by app name."""

from __future__ import annotations

from collections import Counter
from typing import Any

from provtui.domain.rules import AccessChange, Breach, RulePreview, rule_via
from provtui.model.schema import APPS, GROUPS, MEMBERS, USERS, Reader, stored
from provtui.store import StoreBackend


def rule_config(reader: Reader, rule: dict[str, Any]) -> dict[str, Any]:
    """What a rule says, by name: as audited and as shown."""
    return {
        "expr": rule["expr"],
        "state": rule["state"],
        "groups": sorted(group["name"] for group in (reader.get(GROUPS, g) for g in rule["groups"]) if group),
        "exclude": sorted(user["login"] for user in (reader.get(USERS, u) for u in rule["exclude"]) if user),
    }


def member_counts(store: StoreBackend) -> Counter[str]:
    """Memberships by ``via``: one pass for every rule listed."""
    return Counter(m["via"] for m in store.all(MEMBERS).values())


def rule_view(reader: Reader, rule: dict[str, Any], counts: Counter[str]) -> dict[str, Any]:
    """The rule as admins read it; ``counts``: member_counts, made once when listing many."""
    return {"name": rule["name"], **rule_config(reader, rule), "members": counts[rule_via(rule["id"])]}


def breach_views(reader: Reader, breaches: list[Breach]) -> list[dict[str, Any]]:
    return [{"app": stored(reader, APPS, b.app)["name"], "losing": b.losing, "entitled": b.entitled} for b in breaches]


def preview_view(reader: Reader, preview: RulePreview) -> dict[str, Any]:
    def login(user_id: str) -> str:
        user = reader.get(USERS, user_id)
        name: str = user["login"] if user else user_id
        return name

    def app(app_id: str) -> str:
        name: str = stored(reader, APPS, app_id)["name"]
        return name

    def changes(items: list[AccessChange]) -> list[dict[str, Any]]:
        return sorted(({"user": login(c.user), "app": app(c.app)} for c in items), key=lambda c: (c["user"], c["app"]))

    return {
        "joins": sorted(login(u) for u in preview.joins),
        "leaves": sorted(login(u) for u in preview.leaves),
        "gains": changes(preview.gains),
        "losses": changes(preview.losses),
    }
