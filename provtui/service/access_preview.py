"""What a change to one person would do to their accounts, before it is made: the apps whose accounts it
deactivates (the console's confirmations list them), and those it would give them.

Each preview runs the very step the change runs (``Apps.set_assignment_in``, ``Users.change_state_in``),
rules re-evaluated and all, on a change that is never committed: it cannot disagree with the outcome,
and it writes nothing.  It is authorised as the change itself is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provtui.domain.entitlement import is_entitled
from provtui.model.directory import Directory
from provtui.model.schema import APPS, USERS, stored
from provtui.service.apps import Apps
from provtui.service.change import Access, Change, Changes
from provtui.service.part import Part
from provtui.service.users import Users


class AccessPreviews(Part):
    """Previews of the changes that take access away from one person: unassigning an app, a lifecycle step."""

    def __init__(self, changes: Changes, directory: Directory, access: Access, *, users: Users, apps: Apps):
        super().__init__(changes, directory, access)
        self.users = users
        self.apps = apps

    def unassign_preview(self, app_name: str, *, login: str) -> dict[str, Any]:
        """``unassign(app_name, login=login)``'s effect: ``losses`` (apps whose accounts are deactivated),
        ``gains``, ``active`` (the person is, after), and ``still_via``: the paths (``group:NAME``) that keep
        the app once the direct assignment is gone (empty: none does)."""
        preview, paths_after = self._preview(
            login, lambda change, _: self.apps.set_assignment_in(change, app_name, login, None, assign=False, values={})
        )
        return {**preview, "still_via": paths_after.get(self.directory.app(app_name)["id"], [])}

    def lifecycle_preview(self, login: str, action: str) -> dict[str, Any]:
        """``change_state(login, action)``'s effect: ``losses`` (apps whose accounts are deactivated: suspend,
        deactivate), ``gains`` (accounts created or reactivated: activate, unsuspend, reactivate) and ``active``."""
        preview, _ = self._preview(login, lambda change, user_id: self.users.change_state_in(change, user_id, action))
        return preview

    def _preview(self, login: str, apply: Callable[[Change, str], object]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """``apply`` run on a change never committed: what it does to the person's access, and their paths after."""
        change = self.changes.preview()
        user_id = self.directory.user_id(login, change)
        before = self._entitled(change, user_id)
        apply(change, user_id)
        self.changes.settle(change)
        after = self._entitled(change, user_id)
        name = {app_id: stored(self.store, APPS, app_id)["name"] for app_id in before | after}
        preview = {
            "losses": sorted(name[a] for a in before - after),
            "gains": sorted(name[a] for a in after - before),
            "active": stored(change, USERS, user_id)["state"] == "active",
        }
        return preview, self.directory.paths(user_id, change)

    def _entitled(self, change: Change, user_id: str) -> set[str]:
        """The apps the person has an active account in when the change's writes so far are made."""
        state = stored(change, USERS, user_id)["state"]
        return {app_id for app_id, paths in self.directory.paths(user_id, change).items() if is_entitled(state, paths)}
