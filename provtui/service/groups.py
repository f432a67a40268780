"""The service's part for groups and their members, pushed groups, moving a person between groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provtui.clock import utc_now_iso
from provtui.domain.apps import Capability
from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action, Scope
from provtui.domain.text import MAX_DESCRIPTION, check_display_name, check_text
from provtui.ids import new_id
from provtui.model.directory import Directory
from provtui.model.outbox import queue
from provtui.model.schema import APPS, GROUPS, MEMBERS, PUSHES, USERS, group_key, member_key, stored
from provtui.service.change import Access, Change, Changes
from provtui.service.part import Part

if TYPE_CHECKING:
    from provtui.service.reads import Reads


class Groups(Part):
    """Groups and their members, pushed groups, moving a person between groups."""

    def __init__(self, changes: Changes, directory: Directory, access: Access, *, reads: Reads):
        super().__init__(changes, directory, access)
        self.reads = reads

    def create_group(self, name: str, description: str = "") -> dict[str, Any]:
        name = check_display_name("name", name)
        check_text("--description", description, MAX_DESCRIPTION)
        with self.changes(Action.MANAGE_GROUPS) as tx:
            if tx.lookup(GROUPS, "name", name):
                raise InvalidInput("name", f"a group named {name!r} already exists")
            group = {"id": new_id(), "name": name, "description": description, "kind": "provtui", "created": utc_now_iso()}
            tx.put(GROUPS, group["id"], group)
            tx.audit("group.create", name, None, {"description": description})
        return group

    def rename_group(self, name: str, new_name: str) -> dict[str, Any]:
        new_name = check_display_name("NEW_NAME", new_name)
        with self.changes(Action.MANAGE_GROUPS) as tx:
            group = self.directory.group(name, tx)
            if new_name != name and tx.lookup(GROUPS, "name", new_name):
                raise InvalidInput("NEW_NAME", f"a group named {new_name!r} already exists")
            renamed = {**group, "name": new_name}
            tx.put(GROUPS, group["id"], renamed)
            tx.audit("group.rename", name, {"name": name}, {"name": new_name})
            tx.mark_groups(group["id"])
            # Entitlement paths name the group ("group:eng"): nothing downstream depends on them.
        return renamed

    def push_group(self, group_name: str, app_name: str) -> dict[str, Any]:
        """Push a group and its membership to an app that supports groups."""
        with self.changes() as tx:
            group = self.directory.group(group_name, tx)
            app = self.directory.app(app_name, tx)
            tx.authorise(Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            if Capability.PUSH_GROUPS not in app["capabilities"]:
                raise InvalidInput("--app", f"{app_name} does not push groups (turn it on: app update {app_name} --push-groups)")
            key = group_key(app["id"], group["id"])
            push = {"app": app["id"], "group": group["id"], "state": "pushed", "delete": False, "since": utc_now_iso()}
            before = tx.get(PUSHES, key)
            if before and before["state"] == "pushed":
                return before
            tx.put(PUSHES, key, push)
            tx.audit("group.push", group_name, None, {"app": app_name})
            queue(tx, key, {"app": app["id"], "group": group["id"]})
        return push

    def unpush_group(self, group_name: str, app_name: str, *, delete: bool = False) -> dict[str, Any]:
        """Stop pushing a group; ``delete`` removes it downstream, otherwise it is left there."""
        with self.changes() as tx:
            group = self.directory.group(group_name, tx)
            app = self.directory.app(app_name, tx)
            tx.authorise(Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            key = group_key(app["id"], group["id"])
            before = tx.get(PUSHES, key)
            if before is None or before["state"] != "pushed":
                raise InvalidInput("GROUP", f"{group_name} is not pushed to {app_name}")
            push = {**before, "state": "unpushed", "delete": delete, "since": utc_now_iso()}
            tx.put(PUSHES, key, push)
            tx.audit("group.unpush", group_name, {"app": app_name}, {"app": app_name, "delete": delete})
            queue(tx, key, {"app": app["id"], "group": group["id"]})
        return push

    def add_members(self, group_name: str, logins: list[str]) -> list[str]:
        """Add users to a group; returns the logins that were not members yet."""
        return self._set_membership(group_name, logins, add=True)

    def remove_members(self, group_name: str, logins: list[str]) -> list[str]:
        return self._set_membership(group_name, logins, add=False)

    def _set_membership(self, group_name: str, logins: list[str], *, add: bool) -> list[str]:
        if not logins:
            raise InvalidInput("LOGIN", "name at least one user")
        with self.changes() as tx:
            group = self._manual_group(tx, group_name)
            changed = [
                login for login in (self._membership(tx, group, self.directory.user_id(login, tx), add=add) for login in logins) if login
            ]
            self._audit_membership(tx, group, changed, add=add)
        return changed

    def move_member(self, login: str, leave: str, join: str) -> dict[str, Any]:
        """Take a user out of one group and into another in one transaction: both or neither."""
        with self.changes() as tx:
            user_id = self.move_in(tx, login, leave, join)
            login = stored(tx, USERS, user_id)["login"]
        return self.reads.user_view(login)

    def move_preview(self, login: str, leave: str, join: str) -> dict[str, Any]:
        """What ``move_member`` would do to the user's apps, found by running it -- rules re-evaluated and
        all -- on a change that is never committed: the apps gained and lost, and whether the user is active."""
        change = self.changes.preview()
        user_id = self.directory.user_id(login, change)
        before = set(self.directory.paths(user_id, change))
        self.move_in(change, login, leave, join)
        self.changes.settle(change)
        after = set(self.directory.paths(user_id, change))
        name = {app_id: stored(self.directory.store, APPS, app_id)["name"] for app_id in before | after}
        state = stored(change, USERS, user_id)["state"]
        return {
            "gains": sorted(name[a] for a in after - before),
            "losses": sorted(name[a] for a in before - after),
            "active": state == "active",
        }

    def move_in(self, tx: Change, login: str, leave: str, join: str) -> str:
        """Move one user inside ``tx``, authorised here for both groups: what ``move_member`` and its preview run,
        and a bulk move once a person.  Refuses (InvalidInput) before writing anything for the user."""
        if leave == join:
            raise InvalidInput("join", f"{join} is the group to leave: choose another")
        old = self._manual_group(tx, leave, field="leave")
        new = self._manual_group(tx, join, field="join")
        user_id = self.directory.user_id(login, tx)
        if not self.directory.membership_paths(old["id"], user_id, tx):
            raise InvalidInput("leave", f"{login} is not a member of {leave}")
        left = self._membership(tx, old, user_id, add=False, field="leave")
        joined = self._membership(tx, new, user_id, add=True, field="join")
        self._audit_membership(tx, old, [left] if left else [], add=False)
        self._audit_membership(tx, new, [joined] if joined else [], add=True)
        return user_id

    def _manual_group(self, tx: Change, name: str, *, field: str = "GROUP") -> dict[str, Any]:
        """A group whose membership the actor may change by hand (a provtui group, in the actor's scope)."""
        group = self.directory.group(name, tx)
        tx.authorise(Action.GROUP_MEMBERSHIP, Scope(groups=frozenset({group["id"]})))
        if group.get("kind", "provtui") != "provtui":
            raise InvalidInput(field, f"{name} is a {group['kind']} group: its membership comes from there")
        return group

    def _membership(self, tx: Change, group: dict[str, Any], user_id: str, *, add: bool, field: str = "LOGIN") -> str | None:
        """Add or remove one user's manual membership of ``group``; their login if that changed anything.

        Removing refuses a membership a rule or a source holds: that is changed there."""
        key = member_key(group["id"], user_id)
        present = tx.get(MEMBERS, key) is not None
        login: str = stored(tx, USERS, user_id)["login"]
        if not add and not present and (others := self.directory.membership_paths(group["id"], user_id, tx)):
            raise InvalidInput(
                field, f"{login} is in {group['name']} by {', '.join(others)}, not by hand: change the rule or the source instead"
            )
        if present == add:
            return None
        before_apps = self.directory.apps_touching(user_id, tx)
        if add:
            tx.put(MEMBERS, key, {"group": group["id"], "user": user_id, "via": "manual"})
        else:
            tx.delete(MEMBERS, key)
        tx.mark_user(user_id, before_apps)
        tx.note_user_change(user_id, groups={group["name"]})  # rules reading this group look again
        return login

    def _audit_membership(self, tx: Change, group: dict[str, Any], logins: list[str], *, add: bool) -> None:
        if logins:
            tx.audit(f"group.{'add-member' if add else 'remove-member'}", group["name"], None, {"users": logins})
            tx.mark_groups(group["id"])
