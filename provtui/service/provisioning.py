"""The service's part for provisioning: who may run it, over which apps; manual tasks."""

from __future__ import annotations

from typing import Any

from provtui.clock import utc_now_iso
from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.domain.roles import Action, Role, Scope, allowed, needed
from provtui.model.schema import ACCOUNTS, APPS, TASKS, USERS, Reader, account_key, stored
from provtui.service.part import Part


class Provisioning(Part):
    """Provisioning: who may run it, over which apps; manual tasks."""

    def complete_task(self, task_id: str) -> dict[str, Any]:
        """An admin did a manual app's task: the account now is as the task said."""
        with self.changes() as tx:
            task = tx.get(TASKS, task_id)
            if task is None:
                raise InvalidInput("ID", f"no task {task_id!r}")
            tx.authorise(Action.MANAGE_APP, Scope(apps=frozenset({task["app"]})))
            if task["state"] != "open":
                raise InvalidInput("ID", f"task {task_id} is {task['state']}, not open")
            key = account_key(task["app"], task["user"])
            account = tx.get(ACCOUNTS, key) or {"app": task["app"], "user": task["user"], "attributes": {}}
            active = task["action"] == "provision"
            tx.put(
                ACCOUNTS,
                key,
                {
                    **account,
                    "remote_id": "manual",
                    "active": active,
                    "task": None,
                    "state": "active" if active else "deactivated",
                    "last_sync": utc_now_iso(),
                },
            )
            done = {**task, "state": "done", "closed": utc_now_iso(), "closed_by": self.access.actor}
            tx.put(TASKS, task_id, done)
            user = tx.get(USERS, task["user"])
            tx.audit(
                "task.done",
                stored(tx, APPS, task["app"])["name"],
                {"task": task_id, "state": "open"},
                {"task": task_id, "state": "done", "action": task["action"], "user": user["login"] if user else task["user"]},
            )
            tx.mark_dirty([(task["app"], task["user"])])  # re-check: the user may have changed since
        return done

    def provisioning_scope(self, reader: Reader | None = None) -> frozenset[str] | None:
        """The apps the actor may provision (sync, worker, the console's engine): None for all (a super
        admin), else the apps they are app admin of; NotAllowed when there are none."""
        grants = self.access.grants(reader)
        if any(g.role == Role.SUPER_ADMIN for g in grants):
            return None
        apps = frozenset(a for a in self.store.all(APPS) if allowed(grants, Action.MANAGE_APP, Scope(apps=frozenset({a}))))
        if not apps:
            raise NotAllowed(
                f"{self.access.actor} may not run provisioning: it needs the {needed(Action.MANAGE_APP)} role "
                f"(an app-admin provisions only their apps)"
            )
        return apps

    def may_provision(self) -> bool:
        """Whether the actor may run provisioning at all (the console runs its engine only then)."""
        try:
            self.provisioning_scope()
        except NotAllowed:
            return False
        return True
