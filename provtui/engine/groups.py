"""Reconciling one pushed group (an app with PUSH_GROUPS): its name and members downstream, as the directory has them.

The change is planned (domain.group_push) from the group the directory wants in the app and the one last known
there, and sent (provtui.engine.sending).  A group created before a crash lost our record of it is found by its
externalId and brought in line; an unpushed group is deleted downstream, or only forgotten.
"""

from __future__ import annotations

from typing import cast

from provtui.clock import utc_now_iso
from provtui.connectors.base import GroupPush
from provtui.domain.group_push import GroupAction, GroupChange, KnownGroup, plan_group
from provtui.engine.outcomes import Outcome, SyncReport
from provtui.engine.sending import KeyWork
from provtui.model.schema import PUSHED_GROUPS, PUSHES


class Groups(KeyWork):
    async def reconcile(self, item: dict, app: dict, report: SyncReport) -> Outcome:
        key, group_id, token = item["key"], item["group"], item["token"]
        with self.guard():
            known_doc = self.store.get(PUSHED_GROUPS, key)
            desired = self.directory.desired_group(app["id"], group_id)
            push = self.store.get(PUSHES, key)
        known = KnownGroup.from_doc(known_doc)
        change = plan_group(desired, known)
        outcome = Outcome(key, token)
        if change is None:
            return outcome
        result = await self.sender.send(
            app,
            report,
            outcome,
            lambda: self._apply(app, group_id, desired, known, change),
            what=f"group {change.action.value}",
            who=f"group:{desired.display_name}",
        )
        if outcome.skipped:
            return outcome
        doc = {
            **(known_doc or {"app": app["id"], "group": group_id, "remote_id": None, "display_name": "", "members": []}),
            "last_sync": utc_now_iso(),
            "last_action": change.action.value,
        }
        if result is None:
            outcome.writes.append((PUSHED_GROUPS, key, {**doc, "state": "failed", "last_error": outcome.failure["error"]}))
        elif change.action in (GroupAction.DELETE, GroupAction.FORGET):
            outcome.writes += [(PUSHED_GROUPS, key, None), (PUSHES, key, None if push and push["state"] == "unpushed" else push)]
        else:
            outcome.writes.append((PUSHED_GROUPS, key, {**doc, **result, "state": "pushed", "last_error": None}))
        return outcome

    async def _apply(self, app: dict, group_id: str, desired, known: KnownGroup | None, change: GroupChange) -> dict:
        """Send one group change; returns the new known state of the group downstream."""
        connector = cast(GroupPush, self.connector(app))  # groups are pushed only where the app has PUSH_GROUPS
        if change.action == GroupAction.CREATE:
            remote = await connector.find_group(external_id=group_id)
            if remote is None:
                remote = await connector.create_group(desired.display_name, group_id, set(desired.members))
            else:  # created before a crash lost our record of it: bring it in line
                await connector.update_group(
                    remote.id,
                    display_name=desired.display_name if remote.display_name != desired.display_name else None,
                    add=set(desired.members) - remote.members,
                    remove=remote.members - set(desired.members),
                    full_name=desired.display_name,
                    external_id=group_id,
                    full_members=set(desired.members),
                )
            return {"remote_id": remote.id, "display_name": desired.display_name, "members": sorted(desired.members)}
        assert known is not None
        if change.action == GroupAction.DELETE:
            await connector.delete_group(known.remote_id)
            return {}
        if change.action == GroupAction.FORGET:
            return {}
        await connector.update_group(
            known.remote_id,
            display_name=change.rename,
            add=set(change.add),
            remove=set(change.remove),
            full_name=desired.display_name,
            external_id=group_id,
            full_members=set(desired.members),
        )
        return {"display_name": desired.display_name, "members": sorted(desired.members)}
