"""The service's part for admin roles: grant, revoke, list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action, Grant, Role, parse_role, validate_grant
from provtui.model.schema import ADMINS, APPS, GROUPS
from provtui.service.part import Part


class Admins(Part):
    """Admin roles: grant, revoke, list."""

    def grant(self, os_user: str, role: str, *, apps: Sequence[str] = (), groups: Sequence[str] = ()) -> dict[str, Any]:
        """Give an OS user an admin role (scoped to apps or groups where the role is scoped)."""
        parsed = validate_grant(role, list(apps), list(groups))
        if not os_user or not os_user.replace("-", "").replace("_", "").replace(".", "").replace(":", "").isalnum():
            raise InvalidInput("OSUSER", f"{os_user!r} is not a user name")
        with self.changes(Action.MANAGE_ADMINS) as tx:
            grant = Grant(
                parsed,
                frozenset(self.directory.app(a, tx)["id"] for a in apps),
                frozenset(self.directory.group(g, tx)["id"] for g in groups),
            )
            admin = tx.get(ADMINS, os_user) or {"user": os_user, "grants": []}
            others = [g for g in admin["grants"] if g["role"] != parsed.value]
            updated = {**admin, "grants": [*others, grant.to_doc()]}
            tx.put(ADMINS, os_user, updated)
            tx.audit("admin.grant", os_user, admin["grants"] or None, updated["grants"])
        return self._admin_view(updated)

    def revoke(self, os_user: str, role: str) -> dict[str, Any]:
        """Take a role away; the last super-admin cannot be removed."""
        parsed = parse_role(role)
        with self.changes(Action.MANAGE_ADMINS) as tx:
            admin = tx.get(ADMINS, os_user)
            if admin is None or not any(g["role"] == parsed.value for g in admin["grants"]):
                raise InvalidInput("ROLE", f"{os_user} does not hold {parsed.value}")
            if parsed == Role.SUPER_ADMIN:
                supers = [u for u, a in self.store.all(ADMINS).items() if any(g["role"] == Role.SUPER_ADMIN for g in a["grants"])]
                if supers == [os_user]:
                    raise InvalidInput("ROLE", f"{os_user} is the last super-admin: grant the role to someone else first")
            remaining = [g for g in admin["grants"] if g["role"] != parsed.value]
            if remaining:
                tx.put(ADMINS, os_user, {**admin, "grants": remaining})
            else:
                tx.delete(ADMINS, os_user)
            tx.audit("admin.revoke", os_user, admin["grants"], remaining or None)
        return {"user": os_user, "grants": self._admin_view({"grants": remaining})["grants"]}

    def list_admins(self) -> list[dict[str, Any]]:
        self.access.read()
        return [self._admin_view(a) for _, a in sorted(self.store.all(ADMINS).items())]

    def _admin_view(self, admin: dict[str, Any]) -> dict[str, Any]:
        def names(table: str, ids: list[str]) -> list[str]:
            return sorted(doc["name"] for doc in (self.store.get(table, i) for i in ids) if doc)

        return {
            "user": admin.get("user"),
            "grants": [
                {"role": g["role"], "apps": names(APPS, g.get("apps", [])), "groups": names(GROUPS, g.get("groups", []))}
                for g in admin["grants"]
            ],
        }
