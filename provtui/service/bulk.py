"""The service's part for bulk changes: several people moved, assigned, unassigned, suspended or deactivated at once.

One method, ``_run``, decides and does every person's step on the Change it is handed: on a preview Change
(never committed) that is the preview; on a real one, the change itself.  So a preview never disagrees with
what applying it does.  Each step is the one the single-person call runs (the users' lifecycle step, the
groups' move, the apps' assignment), authorised there, once a person; whoever a step refuses is skipped
with the reason, and everything else applies in one unit of work, or nothing does.  More than one person
changing is held until confirmed, and a change that takes an app from more of its users than the safeguard
allows needs, to confirm it, the role approving a held change needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provtui.domain.bulk import LIFECYCLE, NOT_ALLOWED, REFUSED, UNCHANGED, BulkRequest, bulk_request
from provtui.domain.entitlement import is_entitled
from provtui.domain.errors import HeldForConfirmation, InvalidInput, NotAllowed, NotFound
from provtui.domain.lifecycle import TRANSITIONS, State
from provtui.domain.roles import Action
from provtui.domain.rules import AccessChange, Breach, safeguard_breaches
from provtui.model.schema import APPS, USERS, stored
from provtui.service.part import Part
from provtui.service.rule_views import breach_views
from provtui.service.settings import safeguard_threshold

if TYPE_CHECKING:
    from provtui.model.directory import Directory
    from provtui.service.apps import Apps
    from provtui.service.change import Access, Change, Changes
    from provtui.service.groups import Groups
    from provtui.service.reads import Reads
    from provtui.service.rules import GroupRules
    from provtui.service.users import Users


@dataclass(frozen=True)
class Standing:
    """One person as the change finds or leaves them."""

    login: str
    state: str
    groups: frozenset[str]  # names
    entitled: frozenset[str]  # app ids


@dataclass
class Plan:
    selected: int = 0
    changed: list[tuple[Standing, Standing]] = field(default_factory=list)  # (before, after) of each person changed
    skipped: list[dict[str, str]] = field(default_factory=list)  # login, why, reason

    def losses(self) -> list[AccessChange]:
        return [AccessChange(after.login, app) for before, after in self.changed for app in before.entitled - after.entitled]


class Bulk(Part):
    """Bulk changes over a selection of people (named, or chosen by a filter)."""

    def __init__(
        self,
        changes: Changes,
        directory: Directory,
        access: Access,
        *,
        reads: Reads,
        rules: GroupRules,
        users: Users,
        groups: Groups,
        apps: Apps,
    ):
        super().__init__(changes, directory, access)
        self.reads = reads
        self.rules = rules
        self.users = users
        self.groups = groups
        self.apps = apps

    def bulk_change(
        self,
        action: str,
        *,
        users: list[str] | None = None,
        where: str | None = None,
        group: str | None = None,
        to_group: str | None = None,
        app: str | None = None,
        preview: bool = False,
        confirm: bool = False,
    ) -> dict[str, Any]:
        """Preview (``preview``: nothing written) or apply ``action`` to the people named in ``users`` or matched by
        ``where``.  Applying more than one person's change, or past the safeguard, raises HeldForConfirmation
        (its details: the preview) unless ``confirm``; when the admin's role allows nobody's step, NotAllowed."""
        request = bulk_request(action, users, where, group, to_group, app)
        self.access.read()
        if preview:
            change = self.changes.preview()
            plan = self._run(change, request)
            return self._view(change, request, plan, applied=False)
        with self.changes() as change:
            plan = self._run(change, request)
            view = self._view(change, request, plan, applied=False)
            if (len(plan.changed) > 1 or view["safeguard"]) and not confirm:
                raise HeldForConfirmation(_held_message(request, view), view)  # raised inside: nothing is written
            if view["safeguard"]:  # confirming past the safeguard is approving in advance
                change.authorise(Action.CONFIRM)
            if plan.changed:
                change.audit("user.bulk", request.action, None, _audited(request, view))
        return {**view, "applied": bool(plan.changed)}

    # -- the one path a preview and a change both take -----------------------------------------------

    def _run(self, change: Change, request: BulkRequest) -> Plan:
        self._check_targets(change, request)
        ids = self._selection(change, request)
        before = {uid: self._standing(change, uid) for uid in ids}
        plan = Plan(selected=len(ids))
        stepped = []
        for uid in ids:
            login = before[uid].login
            try:
                unchanged = self._step(change, request, uid, before[uid])
            except NotAllowed as refusal:
                plan.skipped.append({"login": login, "why": NOT_ALLOWED, "reason": str(refusal)})
                continue
            except InvalidInput as refusal:
                why = LIFECYCLE if refusal.field == "state" else REFUSED
                plan.skipped.append({"login": login, "why": why, "reason": refusal.message})
                continue
            if unchanged is not None:
                plan.skipped.append({"login": login, "why": UNCHANGED, "reason": unchanged})
            else:
                stepped.append(uid)
        refused = [s for s in plan.skipped if s["why"] == NOT_ALLOWED]
        if refused and len(refused) == plan.selected:  # the role allows this for nobody selected: a refusal, not a plan
            raise NotAllowed(refused[0]["reason"])
        self.changes.settle(change)  # rule memberships follow, as when the change commits
        plan.changed = [(before[uid], self._standing(change, uid)) for uid in stepped]
        return plan

    def _step(self, change: Change, request: BulkRequest, user_id: str, standing: Standing) -> str | None:
        """Do one person's step; why nothing was to be done, if so.  A refusal is raised before anything is written."""
        action = request.action
        if action in ("suspend", "deactivate"):
            target = TRANSITIONS[action][1]
            if standing.state == target:
                return f"already {target.value}"
            self.users.change_state_in(change, user_id, action)
            return None
        if action == "move":
            assert request.group is not None and request.to_group is not None  # checked by bulk_request
            if request.group not in standing.groups and request.to_group in standing.groups:
                return f"already in {request.to_group}"
            self.groups.move_in(change, standing.login, request.group, request.to_group)
            return None
        assert request.app is not None  # assign, unassign: checked by _request
        assign = action == "assign"
        if self.apps.set_assignment_in(change, request.app, standing.login, None, assign=assign, values={}):
            return None
        return f"already assigned {request.app}" if assign else f"{request.app} is not assigned to them directly"

    def _check_targets(self, change: Change, request: BulkRequest) -> None:
        """The groups and the app named exist (else the whole request is bad input, naming the option)."""
        names = [("--group", request.group, self.directory.group), ("--to-group", request.to_group, self.directory.group)]
        for option, name, find in [*names, ("--app", request.app, self.directory.app)]:
            if name is None:
                continue
            try:
                found = find(name, change)
            except NotFound:
                raise InvalidInput(option, f"no {option[2:].replace('to-', '')} named {name!r}") from None
            if option != "--app" and found.get("kind", "provtui") != "provtui":
                raise InvalidInput(option, f"{name} is a {found['kind']} group: its membership comes from there")

    def _selection(self, change: Change, request: BulkRequest) -> list[str]:
        """User ids, each once, in the order named (a filter's: by login)."""
        if request.where is None:
            ids: list[str] = []
            for login in request.logins:
                try:
                    user_id = self.directory.user_id(login, change)
                except NotFound:
                    raise InvalidInput("--users", f"no user named {login!r}") from None
                if user_id not in ids:
                    ids.append(user_id)
            return ids
        self.rules.typed(request.where, field="--filter")  # a bad expression is named as the option typed
        _, matched = self.reads.list_users(where=request.where)
        return [user["id"] for user in matched]

    def _standing(self, change: Change, user_id: str) -> Standing:
        user = stored(change, USERS, user_id)
        paths = self.directory.paths(user_id, change)
        entitled = frozenset(app for app, via in paths.items() if is_entitled(user["state"], via))
        return Standing(user["login"], user["state"], frozenset(self.directory.groups_of(user_id, change).values()), entitled)

    # -- what it shows -------------------------------------------------------------------------------

    def _breaches(self, change: Change, plan: Plan) -> list[Breach]:
        """Apps the change would take from more than the safeguard's share of their active users (counted
        as the store has them: the change's own writes are not committed yet)."""
        losses = plan.losses()
        entitled = {}
        for app_id in {loss.app for loss in losses}:
            users = (self.store.get(USERS, uid) for uid in self.directory.entitled_to(app_id))
            entitled[app_id] = sum(1 for user in users if user and user["state"] == State.ACTIVE)
        return safeguard_breaches(losses, entitled, self._threshold(change))

    @staticmethod
    def _threshold(change: Change) -> float:
        return safeguard_threshold(change)

    def _view(self, change: Change, request: BulkRequest, plan: Plan, *, applied: bool) -> dict[str, Any]:
        def app_names(ids: frozenset[str]) -> list[str]:
            return sorted(stored(change, APPS, app_id)["name"] for app_id in ids)

        changed = [
            {
                "login": after.login,
                "state": before.state,
                "state_after": after.state,
                "joins": sorted(after.groups - before.groups),
                "leaves": sorted(before.groups - after.groups),
                "gains": app_names(after.entitled - before.entitled),
                "losses": app_names(before.entitled - after.entitled),
            }
            for before, after in plan.changed
        ]
        return {
            "action": request.action,
            "group": request.group,
            "to_group": request.to_group,
            "app": request.app,
            "filter": request.where,
            "applied": applied,
            "counts": {
                "selected": plan.selected,
                "changed": len(changed),
                "skipped": len(plan.skipped),
                "gains": sum(len(p["gains"]) for p in changed),
                "losses": sum(len(p["losses"]) for p in changed),
            },
            "changed": changed,
            "skipped": plan.skipped,
            "safeguard": breach_views(change, self._breaches(change, plan)),
            "threshold": self._threshold(change),
        }


def _held_message(request: BulkRequest, view: dict[str, Any]) -> str:
    counts = view["counts"]
    people = f"{counts['changed']} {'person' if counts['changed'] == 1 else 'people'}"
    safeguard = (
        f"; it takes {', '.join(b['app'] for b in view['safeguard'])} from more than {view['threshold']:.0%} of its users "
        "(confirming needs the role `held approve` needs)"
        if view["safeguard"]
        else ""
    )
    return f"held: bulk {request.action} would change {people} ({counts['skipped']} skipped){safeguard}; confirm it to apply (--yes)"


def _audited(request: BulkRequest, view: dict[str, Any]) -> dict[str, Any]:
    """The bulk change's own audit event (each person's step is audited as well, under the same correlation)."""
    return {
        "group": request.group,
        "to_group": request.to_group,
        "app": request.app,
        "filter": request.where,
        "users": [p["login"] for p in view["changed"]],
        "skipped": [{"login": s["login"], "why": s["why"]} for s in view["skipped"]],
    }
