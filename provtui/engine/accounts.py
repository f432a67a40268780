"""Reconciling one account: the account a user should have in an app, planned at execution time, and sent.

For a key (app, user) the plan (domain.plan) is computed from the directory's desired state and the last known
downstream state, and only the difference is sent (provtui.engine.sending).  An account is looked up before it is
created only if a create may already have reached the app (a dead worker's lease, an earlier failed create, a
retry); a 409 links the account that holds the name.  A manual app gets a task for an admin instead of a call.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from provtui.clock import utc_now, utc_now_iso
from provtui.connectors.base import Conflict, DownstreamError
from provtui.domain.apps import AppKind
from provtui.domain.errors import InvalidInput
from provtui.domain.plan import AccountChange, Action, DeletionPolicy, KnownAccount, plan_account
from provtui.engine.calls import call_user
from provtui.engine.outcomes import Outcome, SyncReport, blank_account
from provtui.engine.sending import KeyWork
from provtui.model.outbox import queue
from provtui.model.schema import ACCOUNTS, APPS, DIRTY, PUSHES, TASKS, USERS, account_key, group_key


class Accounts(KeyWork):
    def mark_due_deletions(self, in_scope: Callable[[str], bool]) -> None:
        """Deactivated accounts past their app's retention period become work (deletion)."""
        now = utc_now()
        due = []
        for app in self.store.all(APPS).values():
            policy = DeletionPolicy(app["settings"].get("delete_after_days"))
            if policy.delete_after_days is None or not in_scope(app["id"]):
                continue
            for key in self.store.lookup(ACCOUNTS, "app", app["id"]):
                account = self.store.get(ACCOUNTS, key)
                known = KnownAccount.from_doc(account)
                if known is not None and policy.due(known, now) and self.store.get(DIRTY, key) is None:
                    due.append(account)
        if due:
            with self.store.transaction() as tx:
                for account in due:
                    queue(tx, account_key(account["app"], account["user"]), {"app": account["app"], "user": account["user"]})

    async def reconcile(self, item: dict, app: dict, report: SyncReport) -> Outcome:
        key, app_id, user_id, token = item["key"], item["app"], item["user"], item["token"]
        with self.guard():
            account = self.store.get(ACCOUNTS, key)
            user = self.store.get(USERS, user_id)
            try:
                desired = self.directory.desired(app_id, user_id)
            except InvalidInput as error:  # a mapping fails on this user's data: nothing to send until fixed
                base = {
                    **(account or blank_account(app_id, user_id)),
                    "state": "failed",
                    "last_error": str(error),
                    "last_sync": utc_now_iso(),
                }
                failure = {
                    "app": app["name"],
                    "user": user["login"] if user else user_id,
                    "action": "map",
                    "status": None,
                    "error": str(error),
                    "attempts": 0,
                }
                return Outcome(key, token, [(ACCOUNTS, key, base)], failure=failure)
        call_user.set(user["login"] if user else None)
        if app["kind"] == AppKind.MANUAL:
            return self._manual(item, app, account, desired)
        known = KnownAccount.from_doc(account)
        change = plan_account(desired, known, DeletionPolicy(app["settings"].get("delete_after_days")), utc_now())
        base = dict(account or blank_account(app_id, user_id))
        if change is None and known is None and not desired.active and (item.get("suspect") or base.get("create_uncertain")):
            # A create may have reached the app (a dead worker's, or one whose reply was lost) before the
            # user stopped being entitled: find that account and take it away.
            change = AccountChange(Action.DEACTIVATE, {}, False)
        base["correlation"] = item.get("correlation")
        if change is None:
            if base.get("state") == "failed":  # nothing left to do: the earlier failure is moot
                base["state"] = "active" if base.get("active") else ("deactivated" if base.get("remote_id") else "none")
                base["last_error"] = None
            return Outcome(key, token, [(ACCOUNTS, key, base)] if account or base["state"] != "none" else [])
        outcome = Outcome(key, token)
        # Look the account up before creating only if a create may already have reached the app (a dead
        # worker's lease, an earlier failed create, or a retry): otherwise it cannot exist, and the lookup
        # would double the calls.  A 409 still leads to a lookup and a link, whatever the case.
        tries = 0

        async def call():
            nonlocal tries
            self.connector(app)  # a configuration that cannot work fails here, before anything is sent
            tries += 1
            lookup_first = item.get("suspect") or bool(base.get("create_uncertain")) or tries > 1
            return await self._apply(app, known, change, desired.attributes, lookup_first=lookup_first)

        result = await self.sender.send(app, report, outcome, call, what=change.action.value, who=user["login"] if user else user_id)
        if outcome.skipped:
            if tries and change.action == Action.CREATE:  # paused mid-retry: the lost create may exist, look it up next time
                outcome.writes.append((ACCOUNTS, key, {**base, "create_uncertain": True}))
            return outcome
        if result is None:
            base.update(
                state="failed",
                last_error=outcome.failure["error"],
                last_sync=utc_now_iso(),
                attempts=(base.get("attempts") or 0) + outcome.failure["attempts"],
                last_action=change.action.value,
            )
            if change.action == Action.CREATE:
                base["create_uncertain"] = True
        else:
            if result.get("remote_id", base["remote_id"]) != base["remote_id"]:
                outcome.follow_up = self._pushed_groups_of(app_id, user_id)  # the account joins (or leaves) its groups there
            base.update(result)
            base.pop("create_uncertain", None)
            state = (
                "active" if base["active"] else ("deactivated" if base["remote_id"] else "deleted" if base.get("deleted_at") else "none")
            )
            base.update(state=state, last_error=None, attempts=0, last_sync=utc_now_iso(), last_action=change.action.value)
        outcome.writes.append((ACCOUNTS, key, base))
        return outcome

    def _pushed_groups_of(self, app_id: str, user_id: str) -> list[tuple[str, dict]]:
        with self.guard():
            return [
                (group_key(app_id, gid), {"app": app_id, "group": gid})
                for gid in self.directory.groups_of(user_id)
                if (self.store.get(PUSHES, group_key(app_id, gid)) or {}).get("state") == "pushed"
            ]

    async def _apply(
        self, app: dict, known: KnownAccount | None, change: AccountChange, attributes: dict, *, lookup_first: bool = True
    ) -> dict:
        """Send one change; returns the new known state (remote_id, active, attributes)."""
        connector = self.connector(app)
        if change.action == Action.CREATE:
            remote = await connector.find_user(external_id=attributes.get("externalId")) if lookup_first else None
            if remote is None:
                try:
                    remote = await connector.create_user(attributes, active=True)
                    return {"remote_id": remote.id, "active": True, "attributes": dict(attributes), "deactivated_at": None}
                except Conflict as conflict:
                    # Someone holds the name already: link it rather than make a duplicate.
                    remote = await connector.find_user(user_name=attributes.get(connector.naming_attribute))
                    if remote is None:  # the server's search lags its writes: look again later
                        raise DownstreamError(
                            f"{conflict.message} (and no account found by {connector.naming_attribute} yet)", status=409, retryable=True
                        ) from None
            # An account existed: link it, then bring it to the desired state.
            changed = {k: v for k, v in attributes.items() if remote.attributes.get(k) != v}
            if changed or not remote.active:
                await connector.update_user(remote.id, changed, full=attributes, active=True)
            return {"remote_id": remote.id, "active": True, "attributes": dict(attributes), "linked": True, "deactivated_at": None}
        if known is None and change.action == Action.DEACTIVATE:  # an unrecorded create: look it up
            remote = await connector.find_user(external_id=attributes.get("externalId"))
            if remote is None:
                return {"remote_id": None, "active": False}
            if remote.active:
                await connector.update_user(remote.id, {}, full=attributes, active=False)
            return {
                "remote_id": remote.id,
                "active": False,
                "attributes": dict(attributes),
                "linked": True,
                "deactivated_at": utc_now_iso(),
            }
        assert known is not None and known.remote_id is not None
        if change.action == Action.DEACTIVATE:
            await connector.update_user(known.remote_id, {}, full={**known.attributes}, active=False)
            return {"active": False, "deactivated_at": utc_now_iso()}
        if change.action == Action.DELETE:
            await connector.delete_user(known.remote_id)
            return {"remote_id": None, "active": False, "deleted_at": utc_now_iso(), "deactivated_at": None}
        active = True if change.action == Action.REACTIVATE else None
        await connector.update_user(known.remote_id, change.attributes, full=attributes, active=active)
        return {"active": True, "attributes": dict(attributes), "deactivated_at": None}

    # -- manual apps: tasks instead of calls ----------------------------------------

    def _manual(self, item: dict, app: dict, account: dict | None, desired) -> Outcome:
        """Open (or cancel) a task for an admin; the account follows when the task is done."""
        key, token = item["key"], item["token"]
        base = dict(account or blank_account(app["id"], item["user"]))
        with self.guard():
            task = self.store.get(TASKS, base["task"]) if base.get("task") else None
        expects = [(ACCOUNTS, key, account)] + ([(TASKS, task["id"], task)] if task is not None else [])
        open_task = task if task is not None and task["state"] == "open" else None
        wanted = "provision" if desired.active else "deprovision"
        has_access = bool(base.get("active"))
        nothing_to_take = not desired.active and not base.get("remote_id")
        if desired.active == has_access or nothing_to_take:
            if open_task is not None:  # e.g. the user came back before the deprovision was done
                base.update(task=None, state="active" if has_access else ("deactivated" if base.get("remote_id") else "none"))
                cancelled = {**open_task, "state": "cancelled", "closed": utc_now_iso()}
                return Outcome(key, token, [(ACCOUNTS, key, base), (TASKS, open_task["id"], cancelled)], expects=expects)
            return Outcome(key, token, expects=expects)
        if open_task is not None and open_task["action"] == wanted:
            return Outcome(key, token, expects=expects)
        new_task = {
            "id": os.urandom(4).hex(),
            "app": app["id"],
            "user": item["user"],
            "action": wanted,
            "state": "open",
            "created": utc_now_iso(),
            "correlation": item.get("correlation"),
        }
        base.update(task=new_task["id"], state="task-open", correlation=item.get("correlation"))
        return Outcome(key, token, [(ACCOUNTS, key, base), (TASKS, new_task["id"], new_task)], expects=expects)
