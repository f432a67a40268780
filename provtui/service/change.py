"""The shape of every change: one unit of work over one store transaction.

A ``Change`` owns the transaction, the actor making it, the correlation id that ties it to the
downstream calls it causes, the users it changed and what it queued for provisioning.  It
authorises, audits and queues; when its block ends, ``Changes`` settles it (the rules that read
what changed are re-evaluated, and the accounts and pushed groups that follow are queued) before
the transaction commits.  The service's parts receive a ``Changes`` factory, the read model and
the ``Access`` of the actor -- never the Service, and never each other's private names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from provtui.domain.errors import NotAllowed
from provtui.domain.roles import Action, Grant, Role, Scope, allowed, needed
from provtui.domain.scim_clients import SOURCE_PREFIX
from provtui.ids import new_id
from provtui.model.directory import Directory
from provtui.model.outbox import queue
from provtui.model.schema import ACCOUNTS, ADMINS, APPS, GROUPS, SCIM_CLIENTS, Reader, account_key, group_key, stored
from provtui.store import StoreBackend, StoreTransaction

NO_SCOPE = Scope()


@dataclass
class UserChange:
    """What changed about one user in this change: attributes (None: a new user, or everything), groups."""

    attributes: set[str] | None
    groups: set[str] = field(default_factory=set)


class Access:
    """Who is acting, and what their grants let them do."""

    def __init__(self, store: StoreBackend, actor: str):
        self.store = store
        self.actor = actor

    def grants(self, reader: Reader | None = None) -> list[Grant]:
        reader = reader or self.store
        admin = reader.get(ADMINS, self.actor)
        if admin:
            return [Grant.from_doc(g) for g in admin["grants"]]
        # An inbound SCIM client acts as its source (scim:NAME, a name no OS user can have): while it exists.
        client = self.actor.removeprefix(SOURCE_PREFIX) if self.actor.startswith(SOURCE_PREFIX) else None
        return [Grant(Role.SCIM_CLIENT)] if client and reader.get(SCIM_CLIENTS, client) is not None else []

    def may(self, action: Action, scope: Scope = NO_SCOPE) -> bool:
        return allowed(self.grants(), action, scope)

    def authorise(self, reader: Reader | None, action: Action, scope: Scope = NO_SCOPE) -> None:
        if not allowed(self.grants(reader), action, scope):
            raise NotAllowed(f"{self.actor} may not {action.value}{self._scope_text(scope)}: it needs the {needed(action)} role")

    def read(self) -> None:
        """Every admin may read; anyone else may not."""
        self.authorise(None, Action.READ)

    def _scope_text(self, scope: Scope) -> str:
        apps = (self.store.get(APPS, a) for a in sorted(scope.apps))
        groups = (self.store.get(GROUPS, g) for g in sorted(scope.groups))
        names = [f"app {app['name']}" for app in apps if app] + [f"group {group['name']}" for group in groups if group]
        return f" ({', '.join(names)})" if names else ""


class Change:
    """One change in the making: reads see its own writes; it audits and queues as it goes."""

    def __init__(self, tx: StoreTransaction, access: Access, directory: Directory):
        self.tx = tx
        self.access = access
        self.actor = access.actor
        self.directory = directory
        self.correlation = tx.correlation = new_id()
        self.user_changes: dict[str, UserChange] = {}

    # reads and writes, as the transaction's (so a Change is a reader for the read model)
    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self.tx.get(table, key)

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        self.tx.put(table, key, doc)

    def delete(self, table: str, key: str) -> None:
        self.tx.delete(table, key)

    def lookup(self, table: str, fieldname: str, value: Any) -> set[str]:
        return self.tx.lookup(table, fieldname, value)

    def authorise(self, action: Action, scope: Scope = NO_SCOPE) -> None:
        self.access.authorise(self, action, scope)

    def audit(self, action: str, target: str, before: Any, after: Any) -> None:
        self.tx.audit(
            {"actor": self.actor, "action": action, "target": target, "before": before, "after": after, "correlation": self.correlation}
        )

    def mark_dirty(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Queue the (app, user) accounts for reconciliation."""
        for app_id, user_id in pairs:
            queue(self.tx, account_key(app_id, user_id), {"app": app_id, "user": user_id})

    def mark_app_accounts(self, app_id: str) -> None:
        """Queue every account the app holds: its settings or mappings changed."""
        self.mark_dirty((app_id, stored(self, ACCOUNTS, key)["user"]) for key in self.lookup(ACCOUNTS, "app", app_id))

    def mark_groups(self, group_id: str) -> None:
        """Queue the group's pushed copies: its name or members changed."""
        for push in self.directory.pushes_of(group_id, self):
            queue(self.tx, group_key(push["app"], group_id), {"app": push["app"], "group": group_id})

    def mark_user(self, user_id: str, before_apps: set[str] | None = None) -> None:
        apps = self.directory.apps_touching(user_id, self) | (before_apps or set())
        self.mark_dirty((app, user_id) for app in apps)

    def note_user_change(
        self, user_id: str, *, attributes: AbstractSet[str] | None = frozenset(), groups: AbstractSet[str] = frozenset()
    ) -> None:
        """Remember what changed about a user (``attributes`` None: a new user, or everything); when the
        change settles, what follows from it is worked out once."""
        change = self.user_changes.get(user_id)
        if change is None:
            self.user_changes[user_id] = UserChange(None if attributes is None else set(attributes), set(groups))
            return
        if attributes is None or change.attributes is None:
            change.attributes = None
        else:
            change.attributes |= attributes
        change.groups |= groups


Reevaluate = Callable[[Change, dict[str, UserChange]], dict[str, set[str]]]


class Changes:
    """Makes Changes: ``with changes(Action.X) as change: ...`` authorises, then settles and commits."""

    def __init__(self, store: StoreBackend, directory: Directory, access: Access):
        self.store = store
        self.directory = directory
        self.access = access
        self.reevaluate: Reevaluate | None = None  # the rules' re-evaluation, set once the rules part exists

    @contextmanager
    def __call__(self, action: Action | None = None, scope: Scope = NO_SCOPE, *, correlation: str | None = None) -> Iterator[Change]:
        """One transaction for one change; ``action`` is authorised first (or by the caller, once it knows the scope).
        ``correlation``: the id its audit events carry (a request's own; by default a new one)."""
        with self.store.transaction() as tx:
            change = Change(tx, self.access, self.directory)
            if correlation is not None:
                change.correlation = tx.correlation = correlation
            if action is not None:
                change.authorise(action, scope)
            yield change
            self.settle(change)

    def preview(self) -> Change:
        """A Change that is never committed: a preview runs the very steps the change would, on it."""
        from provtui.store.tables import Transaction

        # A Transaction reads through only get and lookup, which every StoreBackend has; it is typed as over Tables.
        return Change(Transaction(self.store), self.access, self.directory)  # type: ignore[arg-type]

    def within(self, tx: StoreTransaction) -> Change:
        """A Change over a transaction the caller already holds (it planned against it); settle it before the end."""
        return Change(tx, self.access, self.directory)

    def settle(self, change: Change) -> None:
        """What the change's user changes imply: rule memberships, then the accounts and pushed groups to reconcile."""
        while change.user_changes:
            changed, change.user_changes = change.user_changes, {}
            before = {uid: set() if c.attributes is None else self.directory.apps_touching(uid, change) for uid, c in changed.items()}
            assert self.reevaluate is not None, "the rules part sets Changes.reevaluate"
            changed_groups = self.reevaluate(change, changed)
            for user_id, apps in before.items():
                change.mark_user(user_id, apps)
            for gid in {g for gids in changed_groups.values() for g in gids}:
                change.mark_groups(gid)
