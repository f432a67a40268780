"""Group rules through the service: edit, preview, hold, apply, and keep memberships current.

A rule's memberships are marked ``rule:<id>`` beside manual ones and cannot be
removed by hand.  Editing or (de)activating a rule is one transaction: the new
memberships, the audit events and the provisioning they imply.  Before that, the
preview says who joins and leaves and which app access each gains or loses; a
change taking access from more than the safeguard's share of an app's entitled
users is held until confirmed.  Profile and membership changes re-evaluate only
the rules that read what changed, in one batch per transaction.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from provtui.clock import utc_now_iso
from provtui.domain.errors import HeldForConfirmation, InvalidInput
from provtui.domain.expressions import CompiledExpression, compile_expression
from provtui.domain.lifecycle import State
from provtui.domain.roles import Action, Scope, needed
from provtui.domain.rules import (
    AccessChange,
    Breach,
    RulePreview,
    RuleState,
    access_delta,
    attribute_warnings,
    entitled_apps,
    matches,
    membership_diff,
    rule_via,
    safeguard_breaches,
)
from provtui.domain.text import MAX_EXPRESSION, check_display_name, check_text, nfc
from provtui.domain.users import CORE_ATTRIBUTES
from provtui.ids import new_id
from provtui.model.directory import Directory
from provtui.model.schema import APPS, ASSIGNMENTS, GROUPS, HELD, MEMBERS, RULES, USERS, member_key, stored
from provtui.service.change import Access, Change, Changes, UserChange
from provtui.service.part import Part
from provtui.service.rule_views import breach_views, member_counts, preview_view, rule_config, rule_view
from provtui.service.settings import safeguard_threshold

MAX_CHAIN = 5  # rules feeding rules (isMemberOfGroupName): rounds before we stop following

Memberships = set[tuple[str, str]]  # (group id, user id) pairs
Diff = tuple[Memberships, Memberships]  # the memberships a rule change adds, and those it removes


class GroupRules(Part):
    _compiled: ClassVar[dict[str, CompiledExpression]] = {}  # expression text -> compiled, shared: compiling is the slow part

    def __init__(self, changes: Changes, directory: Directory, access: Access):
        super().__init__(changes, directory, access)
        self.held_kinds: dict[str, Callable[[Change, dict[str, Any]], dict[str, Any]]] = {}  # kind -> apply it, approved

    # -- compiling -------------------------------------------------------------------

    def compiled(self, text: str, field: str = "--expr") -> CompiledExpression:
        expression = self._compiled.get(text)
        if expression is None:
            expression = compile_expression(text, kind="boolean", field=field)
            if len(self._compiled) > 1000:
                self._compiled.clear()
            self._compiled[text] = expression
        return expression

    def warnings(self, text: str) -> builtins.list[str]:
        """What ``text`` reads that no person has and the schema does not declare (attribute_warnings)."""
        read = {attr for root, attr in self.compiled(text).attributes_read if root == "user"}
        return attribute_warnings(read, {*CORE_ATTRIBUTES, *self.directory.profile_attributes()})

    def typed(self, text: str, field: str = "--expr") -> CompiledExpression:
        """An expression an admin typed: no control characters, at most MAX_EXPRESSION characters, and it compiles."""
        check_text(field, text, MAX_EXPRESSION)
        return self.compiled(text, field)

    # -- editing -----------------------------------------------------------------------

    def create(self, name: str, *, groups: list[str], expr: str, exclude: list[str]) -> dict[str, Any]:

        name = check_display_name("NAME", name)
        self.typed(expr)
        with self.changes() as tx:
            group_ids = self._group_ids(tx, groups)
            self._authorise(tx, group_ids)
            if tx.lookup(RULES, "name", name):
                raise InvalidInput("NAME", f"a rule named {name!r} already exists")
            rule: dict[str, Any] = {
                "id": new_id(),
                "name": name,
                "expr": expr,
                "groups": group_ids,
                "exclude": self._user_ids(tx, exclude),
                "state": RuleState.INACTIVE.value,
                "created": utc_now_iso(),
            }
            tx.put(RULES, rule["id"], rule)
            tx.audit("rule.create", name, None, rule_config(tx, rule))
        return {**self._view(rule), "warnings": self.warnings(expr)}

    def change(
        self,
        name: str,
        *,
        expr: str | None = None,
        groups: list[str] | None = None,
        exclude: list[str] | None = None,
        state: RuleState | None = None,
        confirm: bool = False,
    ) -> dict[str, Any]:
        """Edit or (de)activate a rule; its memberships follow in the same transaction, unless held."""
        if expr is not None:
            self.typed(expr)
        with self.changes() as tx:
            rule = self._rule(tx, name)
            updated = self._updated(tx, rule, expr=expr, groups=groups, exclude=exclude, state=state)
            held, preview = self._change_in(tx, rule, updated, confirm=confirm)
        if held is not None:
            raise held
        return {"rule": self._view(updated), "preview": preview_view(self.store, preview), "warnings": self.warnings(updated["expr"])}

    def check_change(
        self,
        name: str,
        *,
        expr: str | None = None,
        groups: list[str] | None = None,
        exclude: list[str] | None = None,
        state: RuleState | None = None,
    ) -> dict[str, Any]:
        """What ``change`` with these arguments (and no confirm) would do, by its own steps, writing nothing:
        the rule as it would be, who joins and leaves and what access they gain and lose, and the safeguard's
        breaches (``held``: empty when it would apply, else it would be held).  For asking before a change."""
        self.access.read()
        if expr is not None:
            self.typed(expr)
        tx = self.changes.preview()  # read-only view: nothing is committed
        rule = self._rule(tx, name)
        updated = self._updated(tx, rule, expr=expr, groups=groups, exclude=exclude, state=state)
        preview, _, breaches = self._assess(tx, rule, updated)
        return {
            "rule": self._view(updated),
            "preview": preview_view(self.store, preview),
            "held": breach_views(self.store, breaches),
            "threshold": self._threshold(tx),
        }

    def _updated(
        self,
        tx: Change,
        rule: dict[str, Any],
        *,
        expr: str | None,
        groups: list[str] | None,
        exclude: list[str] | None,
        state: RuleState | None,
    ) -> dict[str, Any]:
        """``rule`` as a change would leave it (names resolved to ids); what is not given stays (no groups: the rule's)."""
        updated = dict(rule)
        if expr is not None:
            updated["expr"] = expr
        if groups:
            updated["groups"] = self._group_ids(tx, groups)
        if exclude is not None:
            updated["exclude"] = self._user_ids(tx, exclude)
        if state is not None:
            updated["state"] = state.value
        return updated

    def _assess(self, tx: Change, rule: dict[str, Any], updated: dict[str, Any]) -> tuple[RulePreview, Diff, list[Breach]]:
        """Authorise a change from ``rule`` to ``updated``, plan it and check it against the safeguard."""
        self._authorise(tx, set(rule["groups"]) | set(updated["groups"]))
        preview, diff = self._plan(tx, rule, updated)
        return preview, diff, self._breaches(tx, preview) if preview.losses else []

    def _change_in(
        self, tx: Change, rule: dict[str, Any], updated: dict[str, Any], *, confirm: bool
    ) -> tuple[HeldForConfirmation | None, RulePreview]:
        """Apply ``updated`` in ``tx``, or hold it (returned, to raise after the hold is committed)."""
        preview, diff, breaches = self._assess(tx, rule, updated)
        if breaches and not confirm:
            return self._hold(tx, rule, updated, preview, breaches), preview
        if breaches:  # confirming past the safeguard is approving in advance: the role `held approve` needs
            tx.authorise(Action.CONFIRM)
        self._apply(tx, rule, updated, diff)
        return None, preview

    def delete(self, name: str, *, confirm: bool = False) -> None:
        """Delete a rule; its members leave.  Deleting an active rule takes the access it gives away, so the
        safeguard judges it exactly as it judges deactivating the rule: above the threshold it is held (as that
        deactivation, to approve; the rule is deleted after), and confirming needs the role approving needs."""
        held = None
        with self.changes() as tx:
            rule = self._rule(tx, name)
            self._authorise(tx, set(rule["groups"]))
            if rule["state"] == RuleState.ACTIVE:
                inactive = {**rule, "state": RuleState.INACTIVE.value}
                preview, _, breaches = self._assess(tx, rule, inactive)
                if breaches and not confirm:
                    held = self._hold(tx, rule, inactive, preview, breaches)
                elif breaches:
                    tx.authorise(Action.CONFIRM)
            if held is None:
                _, diff = self._plan(tx, rule, None)
                self._apply(tx, rule, None, diff)
        if held is not None:
            raise held

    def preview(
        self,
        name: str,
        *,
        expr: str | None = None,
        groups: list[str] | None = None,
        exclude: list[str] | None = None,
        state: RuleState | None = None,
    ) -> dict[str, Any]:
        """Who would join and leave, and what access they would gain and lose (nothing is written)."""
        self.access.read()
        if expr is not None:
            self.typed(expr)
        tx = self.changes.preview()  # read-only view: nothing is committed
        rule = self._rule(tx, name)
        if state is None and rule["state"] == RuleState.INACTIVE:
            state = RuleState.ACTIVE  # previewing an inactive rule: what activating it does
        updated = self._updated(tx, rule, expr=expr, groups=groups, exclude=exclude, state=state)
        preview, _ = self._plan(tx, rule, updated)
        return {**preview_view(self.store, preview), "warnings": self.warnings(updated["expr"])}

    def list(self) -> list[dict[str, Any]]:  # from here on, ``list`` in the class's annotations is this method: builtins.list
        self.access.read()
        return self.views(sorted(self.store.all(RULES).values(), key=lambda r: r["name"]))

    def views(self, rules: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
        """``view`` of each rule, counting memberships in one pass for them all."""
        counts = member_counts(self.store) if rules else Counter()
        reader = self.changes.preview()
        return [rule_view(reader, rule, counts) for rule in rules]

    def _view(self, rule: dict[str, Any]) -> dict[str, Any]:
        return rule_view(self.changes.preview(), rule, member_counts(self.store))

    # -- held changes ------------------------------------------------------------------

    def _hold(
        self, tx: Change, rule: dict[str, Any], updated: dict[str, Any], preview: RulePreview, breaches: builtins.list[Breach]
    ) -> HeldForConfirmation:
        app_names = {b.app: stored(self.store, APPS, b.app)["name"] for b in breaches}
        counts = "; ".join(f"{app_names[b.app]}: {b.losing} of {b.entitled} entitled users would lose access" for b in breaches)
        change = {k: updated[k] for k in ("expr", "groups", "exclude", "state") if updated[k] != rule[k]}
        summary = {
            "joins": len(preview.joins),
            "leaves": len(preview.leaves),
            "gains": len(preview.gains),
            "losses": len(preview.losses),
            "breaches": breach_views(self.store, breaches),
        }
        held = {
            "id": new_id()[:8],
            "kind": "rule",
            "rule": rule["id"],
            "name": rule["name"],
            "change": change,
            "summary": summary,
            "state": "held",
            "created": utc_now_iso(),
            "by": self.access.actor,
        }
        tx.put(HELD, held["id"], held)
        tx.audit("rule.held", rule["name"], None, {"held": held["id"], **summary})
        approve = f"`provtui held approve {held['id']}`"
        then = (
            f"confirm with --confirm or {approve}"
            if self.access.may(Action.CONFIRM)
            else f"a {needed(Action.APPROVE)} may approve it: {approve}"
        )
        return HeldForConfirmation(
            f"held ({held['id']}): rule {rule['name']} would take access away from more than "
            f"{self._threshold(tx):.0%} of an app's users — {counts}; {then}",
            {"held": held["id"], **summary},
        )

    def decide(self, held_id: str, approve: bool) -> dict[str, Any]:
        """Approve (apply now, as the directory is now) or reject a held rule change: decided and applied in one
        transaction, so an approval that cannot be applied leaves the change held."""
        with self.changes(Action.APPROVE) as tx:
            held = tx.get(HELD, held_id)
            if held is None or held["state"] != "held":
                raise InvalidInput("ID", f"no held change {held_id!r}")
            other = self.held_kinds.get(held.get("kind", "rule"))  # another safeguard's (an inbound SCIM client's)
            if other is not None:
                outcome = other(tx, held) if approve else {"held": held_id, "state": "rejected"}
            elif approve:
                rule = tx.get(RULES, held["rule"])
                if rule is None:
                    raise InvalidInput("ID", f"the rule of {held_id} was deleted since; reject it")
                updated = {**rule, **held["change"]}  # stored as the rule stores them (group and user ids)
                if any(tx.get(GROUPS, g) is None for g in updated["groups"]):
                    raise InvalidInput("ID", f"a group of {held_id} was deleted since; reject it")
                _, preview = self._change_in(tx, rule, updated, confirm=True)
            tx.put(
                HELD,
                held_id,
                {**held, "state": "approved" if approve else "rejected", "decided_by": self.access.actor, "decided": utc_now_iso()},
            )
            tx.audit("held.approve" if approve else "held.reject", held["name"], None, {"held": held_id})
        if other is not None:
            return outcome
        if approve:
            return {"rule": self._view(updated), "preview": preview_view(self.store, preview), "warnings": self.warnings(updated["expr"])}
        return {"held": held_id, "state": "rejected"}

    def held(self) -> builtins.list[dict[str, Any]]:
        self.access.read()
        return sorted(self.store.all(HELD).values(), key=lambda h: h["created"])

    # -- planning and applying -----------------------------------------------------------

    def _plan(self, tx: Change, before: dict[str, Any], after: dict[str, Any] | None) -> tuple[RulePreview, Diff]:
        """The preview and the (group, user) memberships to add and remove."""
        via = rule_via(before["id"])
        current = {(m["group"], m["user"]) for m in self.store.all(MEMBERS).values() if m["via"] == via}
        wanted: set[tuple[str, str]] = set()
        if after is not None and after["state"] == RuleState.ACTIVE:
            for user_id in self._matching_users(tx, after):
                wanted.update((gid, user_id) for gid in after["groups"])
        add, remove = wanted - current, current - wanted
        preview = RulePreview()
        preview.joins, preview.leaves = membership_diff({u for _, u in current}, {u for _, u in wanted})
        added, removed = _groups_by_user(add), _groups_by_user(remove)
        affected = added.keys() | removed.keys()
        if affected:
            group_apps = self._group_apps()
            for user_id in sorted(affected):
                user = stored(tx, USERS, user_id)
                groups_before = self._groups_of(tx, user_id)
                # A group this rule stops filling stays the user's when another path (by hand, a source,
                # another rule) also holds them in it.
                left = {g for g in removed.get(user_id, ()) if self.directory.membership_paths(g, user_id, tx) == [via]}
                groups_after = (groups_before - left) | added.get(user_id, set())
                gained, lost = access_delta(user["state"], self._direct_apps(tx, user_id), groups_before, groups_after, group_apps)
                preview.gains += [AccessChange(user_id, a) for a in sorted(gained)]
                preview.losses += [AccessChange(user_id, a) for a in sorted(lost)]
        return preview, (add, remove)

    def _matching_users(self, tx: Change, rule: dict[str, Any]) -> builtins.list[str]:
        users = [u for u in self.store.all(USERS).values() if u["state"] != State.DELETED]
        expression = self.compiled(rule["expr"])
        results = expression.evaluate_all(self.directory.population(users, expression.groups_read))
        excluded = set(rule["exclude"])
        return [u["id"] for u, result in zip(users, results, strict=False) if matches(result, u["id"], excluded, u["state"])]

    def _apply(self, tx: Change, before: dict[str, Any], after: dict[str, Any] | None, diff: Diff) -> None:
        add, remove = diff
        via = rule_via(before["id"])
        touched = {u for _, u in add | remove}
        before_apps = {u: self.directory.apps_touching(u, tx) for u in touched}
        changed_groups: dict[str, set[str]] = {}
        for gid, user_id in add:
            tx.put(MEMBERS, member_key(gid, user_id, via), {"group": gid, "user": user_id, "via": via})
            changed_groups.setdefault(user_id, set()).add(gid)
        for gid, user_id in remove:
            tx.delete(MEMBERS, member_key(gid, user_id, via))
            changed_groups.setdefault(user_id, set()).add(gid)
        if after is None:
            tx.delete(RULES, before["id"])
            tx.audit("rule.delete", before["name"], rule_config(tx, before), None)
        else:
            tx.put(RULES, after["id"], {**after, "updated": utc_now_iso()})
            tx.audit("rule.update", after["name"], rule_config(tx, before), rule_config(tx, after))
        if add or remove:
            tx.audit("rule.membership", before["name"], None, {"joined": len({u for _, u in add}), "left": len({u for _, u in remove})})
        for user_id in touched:
            tx.mark_user(user_id, before_apps[user_id])
        for gid in {g for g, _ in add | remove}:
            tx.mark_groups(gid)
        for user_id, gids in changed_groups.items():  # rules that read these groups look again
            names = {group["name"] for group in (tx.get(GROUPS, g) for g in gids) if group}
            tx.note_user_change(user_id, groups=names)

    # -- keeping memberships current -----------------------------------------------------

    def reevaluate(self, tx: Change, changes: dict[str, UserChange]) -> dict[str, set[str]]:
        """Re-run the active rules that read what changed, for these users; returns user -> groups changed."""
        rules = [r for r in self.store.all(RULES).values() if r["state"] == RuleState.ACTIVE]
        if not rules:
            return {}
        changed_groups: dict[str, set[str]] = {}
        pending = dict(changes)
        for _ in range(MAX_CHAIN):
            by_rule: dict[str, list[str]] = {}
            for rule in rules:
                expression = self.compiled(rule["expr"])
                attributes = {attr for root, attr in expression.attributes_read if root == "user"}
                for user_id, change in pending.items():
                    if change.attributes is None or attributes & change.attributes or expression.groups_read & (change.groups or set()):
                        by_rule.setdefault(rule["id"], []).append(user_id)
            if not by_rule:
                break
            next_round: dict[str, UserChange] = {}
            for rule in rules:
                user_ids = by_rule.get(rule["id"])
                if not user_ids:
                    continue
                users = [stored(tx, USERS, u) for u in user_ids]
                expression = self.compiled(rule["expr"])
                results = expression.evaluate_all(self.directory.population(users, expression.groups_read, tx))
                via = rule_via(rule["id"])
                for user, result in zip(users, results, strict=False):
                    want = matches(result, user["id"], rule["exclude"], user["state"])
                    for gid in rule["groups"]:
                        key = member_key(gid, user["id"], via)
                        if (tx.get(MEMBERS, key) is not None) == want:
                            continue
                        if want:
                            tx.put(MEMBERS, key, {"group": gid, "user": user["id"], "via": via})
                        else:
                            tx.delete(MEMBERS, key)
                        name = stored(tx, GROUPS, gid)["name"]
                        changed_groups.setdefault(user["id"], set()).add(gid)
                        next_round.setdefault(user["id"], UserChange(attributes=set(), groups=set())).groups.add(name)
            if not next_round:
                break
            pending = next_round
        return changed_groups

    # -- reading helpers ---------------------------------------------------------------

    def _rule(self, tx: Change, name: str) -> dict[str, Any]:
        ids = tx.lookup(RULES, "name", nfc(name))
        if not ids:
            raise InvalidInput("NAME", f"no rule named {name!r}")
        return stored(tx, RULES, next(iter(ids)))

    def _group_ids(self, tx: Change, names: Iterable[str]) -> builtins.list[str]:
        ids = []
        for name in names:
            group = self.directory.group(name, tx)
            if group.get("kind", "provtui") != "provtui":
                raise InvalidInput("--group", f"{name} is a {group['kind']} group: a rule targets provtui's own groups")
            ids.append(group["id"])
        if not ids:
            raise InvalidInput("--group", "a rule needs at least one target group")
        return sorted(set(ids))

    def _user_ids(self, tx: Change, logins: Iterable[str]) -> builtins.list[str]:
        return sorted({self.directory.user_id(login, tx) for login in logins})

    def _authorise(self, tx: Change, group_ids: Iterable[str]) -> None:
        tx.authorise(Action.MANAGE_RULES, Scope(groups=frozenset(group_ids)))

    def _groups_of(self, tx: Change, user_id: str) -> set[str]:
        return set(self.directory.groups_of(user_id, tx))

    def _group_apps(self) -> dict[str, set[str]]:
        apps: dict[str, set[str]] = {}
        for assignment in self.store.all(ASSIGNMENTS).values():
            kind, _, ident = assignment["subject"].partition(":")
            if kind == "group":
                apps.setdefault(ident, set()).add(assignment["app"])
        return apps

    def _direct_apps(self, tx: Change, user_id: str) -> set[str]:
        return self.directory.apps_assigned_to(f"user:{user_id}", tx)

    def _threshold(self, tx: Change) -> float:
        return safeguard_threshold(tx)

    def _breaches(self, tx: Change, preview: RulePreview) -> builtins.list[Breach]:
        group_apps = self._group_apps()
        names: dict[str, set[str]] = {}
        for member in self.store.all(MEMBERS).values():
            names.setdefault(member["user"], set()).add(member["group"])
        direct: dict[str, set[str]] = {}
        for assignment in self.store.all(ASSIGNMENTS).values():
            kind, _, ident = assignment["subject"].partition(":")
            if kind == "user":
                direct.setdefault(ident, set()).add(assignment["app"])
        entitled: dict[str, int] = {}
        for user in self.store.all(USERS).values():
            for app in entitled_apps(user["state"], direct.get(user["id"], ()), names.get(user["id"], ()), group_apps):
                entitled[app] = entitled.get(app, 0) + 1
        return safeguard_breaches(preview.losses, entitled, self._threshold(tx))


def _groups_by_user(memberships: set[tuple[str, str]]) -> dict[str, set[str]]:
    """(group, user) pairs as each user's groups."""
    by_user: dict[str, set[str]] = {}
    for group_id, user_id in memberships:
        by_user.setdefault(user_id, set()).add(group_id)
    return by_user
