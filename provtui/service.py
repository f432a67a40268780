"""The one API that changes the directory.

Every call: authorise the actor, validate (naming the field at fault), apply the
change in one store transaction, append the audit event, and mark the downstream
accounts it affects for reconciliation.  A refused call writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from provtui.audit_trail import ChainReport, filter_events, newest_events, verify_chain, vouch_for
from provtui.audit_trail import account_key as call_key
from provtui.clock import parse_iso, utc_now, utc_now_iso
from provtui.directory import (
    ACCOUNTS,
    ADMINS,
    APP_HEALTH,
    APPS,
    ASSIGNMENTS,
    CONFIG,
    DIRTY,
    GROUPS,
    MEMBERS,
    META,
    PUSHED_GROUPS,
    PUSHES,
    RULES,
    SOURCES,
    TASKS,
    USERS,
    Directory,
    account_key,
    assignment_key,
    group_key,
    group_subject,
    member_key,
    user_subject,
)
from provtui.domain import numbers
from provtui.domain.apps import (
    DEFAULT_CAPABILITIES,
    DEFAULT_SETTINGS,
    AppKind,
    Capability,
    validate_dn,
    validate_ldap_target,
    validate_ldap_uri,
    validate_scim_url,
    validate_settings,
)
from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.domain.lifecycle import State, transition
from provtui.domain.mapping import ALWAYS, compile_mapping, default_mappings_for
from provtui.domain.passwords import validate_password
from provtui.domain.roles import (
    Action,
    Grant,
    Role,
    Scope,
    allowed,
    needed,
    parse_role,
    validate_grant,
)
from provtui.domain.rules import rule_via
from provtui.domain.secrets import validate_env_name
from provtui.domain.text import (
    MAX_ATTRIBUTE_NAME,
    MAX_DESCRIPTION,
    MAX_EMAIL,
    MAX_ENV_NAME,
    MAX_EXPRESSION,
    MAX_NAME,
    MAX_TARGET,
    MAX_URL,
    MAX_VALUE,
    check_text,
)
from provtui.domain.users import check_typed_profile, user_summary, validate_profile
from provtui.group_rules import GroupRules, UserChange
from provtui.history_index import HistoryIndex
from provtui.ids import new_id
from provtui.importing import Importer
from provtui.pending import queue
from provtui.reports import Reports
from provtui.maintenance import RepairReport, check_store, missing_creation, repair_store
from provtui.store import Store, StoreDamaged, StoreError, StoreUnreadable, Transaction  # noqa: F401  (the faces catch these from here)
from provtui.store.files import store_files

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. ")
# What create_user's fields are called where an admin types them (any other attribute: --set KEY).
_TYPED_LABELS = {"login": "login", "email": "--email", "firstName": "--first", "lastName": "--last"}


def share_with_group(path: Path, group: str) -> None:
    import grp

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidInput("--group", f"no Unix group named {group!r}") from None
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chown(path, -1, gid)
    os.chmod(path, 0o2770)  # setgid: files made here belong to the group


def current_os_user() -> str:
    """The actor: the OS user running provtui, by effective uid.

    Not $USER or $LOGNAME (what getpass.getuser() reads first): anyone can set those.
    """
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # no passwd entry (containers): the uid itself
        return f"uid:{os.geteuid()}"


def _validate_name(field: str, name: str) -> str:
    name = check_text(field, name, MAX_NAME).strip()
    if not name or not set(name) <= _NAME_OK:
        raise InvalidInput(field, f"{name!r} is not a valid name (letters, digits, space and - _ .)")
    return name


class Service:
    def __init__(self, store: Store, actor: str | None = None):
        self.store = store
        self.actor = actor or current_os_user()
        self.directory = Directory(store)
        self._history = None  # the user-history index, built on first use (provtui.history_index)

    # -- opening -------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | Path, actor: str | None = None, *, group: str | None = None) -> Service:
        """A new store; the actor becomes its first super admin.

        With ``group``, the store is shared by that Unix group: the directory is
        group-owned and setgid (2770) and every file is created 0660; else all is private (0700/0600).
        """
        path = Path(path)
        if Store.exists(path):
            present = ", ".join(store_files(path))
            raise InvalidInput("--store", f"a store already exists at {path} ({present}): `provtui init` never starts "
                                          f"a new one over it (a damaged store: `provtui store check`)")
        if group is not None:
            share_with_group(path, group)
        service = cls(Store.open(path, create=True), actor)
        with service.store.transaction() as tx:
            tx.put(META, "store", {"created": utc_now_iso(), "created_by": service.actor})
            tx.put(ADMINS, service.actor, {"user": service.actor, "grants": [Grant(Role.SUPER_ADMIN).to_doc()]})
            tx.audit({"actor": service.actor, "action": "store.init", "target": str(path), "before": None, "after": {"admin": service.actor}})
        return service

    @classmethod
    def open(cls, path: str | Path, actor: str | None = None) -> Service:
        store = Store.open(path)
        spot = missing_creation(store.tables, store.journal)
        if spot is not None:
            raise StoreDamaged(spot)
        return cls(store, actor)

    @staticmethod
    def check_store(path: str | Path) -> dict:
        """Every record of every store file checked, and the audit chain (provtui.maintenance); the
        store need not open.  Open to anyone who can read the files: it shows no data, only where
        damage is."""
        return check_store(Path(path))

    @classmethod
    def repair_store(cls, path: str | Path, actor: str | None = None) -> RepairReport:
        """Rebuild a damaged store from every intact record, after copying its files aside (super admin)."""
        return repair_store(Path(path), actor or current_os_user(), cls)

    def refresh(self) -> bool:
        return self.store.refresh()

    @property
    def location(self) -> Path:
        """Where the store lives."""
        return self.store.path

    # -- the shape of every change -------------------------------------------------

    @contextmanager
    def _change(self, action: Action | None = None, scope: Scope = Scope()):
        """One transaction for one change; ``action`` is authorised first (or by the caller, once it knows the scope)."""
        with self.store.transaction() as tx:
            if action is not None:
                self._authorise(tx, action, scope)
            tx.correlation = new_id()
            tx.user_changes = {}
            yield tx
            self._settle(tx)

    def grants(self, reader=None) -> list[Grant]:
        admin = (reader or self.store).get(ADMINS, self.actor)
        return [Grant.from_doc(g) for g in admin["grants"]] if admin else []

    def may(self, action: Action, scope: Scope = Scope()) -> bool:
        """Whether the actor may take ``action`` (the console greys out what it may not)."""
        return allowed(self.grants(), action, scope)

    def _authorise(self, tx: Transaction | None, action: Action, scope: Scope = Scope()) -> None:
        if not allowed(self.grants(tx), action, scope):
            raise NotAllowed(f"{self.actor} may not {action.value}{self._scope_text(scope)}: it needs the {needed(action)} role")

    def _read(self) -> None:
        self._authorise(None, Action.READ)

    def _scope_text(self, scope: Scope) -> str:
        apps = (self.store.get(APPS, a) for a in sorted(scope.apps))
        groups = (self.store.get(GROUPS, g) for g in sorted(scope.groups))
        names = [f"app {app['name']}" for app in apps if app] + [f"group {group['name']}" for group in groups if group]
        return f" ({', '.join(names)})" if names else ""

    def _audit(self, tx: Transaction, action: str, target: str, before: Any, after: Any) -> None:
        tx.audit({"actor": self.actor, "action": action, "target": target, "before": before, "after": after, "correlation": tx.correlation})

    def _mark_dirty(self, tx: Transaction, pairs: Iterable[tuple[str, str]]) -> None:
        """Queue the (app, user) accounts for reconciliation."""
        for app_id, user_id in pairs:
            queue(tx, account_key(app_id, user_id), {"app": app_id, "user": user_id})

    def _mark_app_accounts(self, tx: Transaction, app_id: str) -> None:
        """Queue every account the app holds: its settings or mappings changed."""
        self._mark_dirty(tx, ((app_id, tx.get(ACCOUNTS, key)["user"]) for key in tx.lookup(ACCOUNTS, "app", app_id)))

    def _mark_groups(self, tx: Transaction, group_id: str) -> None:
        """Queue the group's pushed copies: its name or members changed."""
        for push in self.directory.pushes_of(group_id, tx):
            queue(tx, group_key(push["app"], group_id), {"app": push["app"], "group": group_id})

    def _mark_user(self, tx: Transaction, user_id: str, before_apps: set[str] | None = None) -> None:
        apps = self.directory.apps_touching(user_id, tx) | (before_apps or set())
        self._mark_dirty(tx, ((app, user_id) for app in apps))

    def note_user_change(self, tx: Transaction, user_id: str, *, attributes: set[str] | None = frozenset(),
                         groups: set[str] = frozenset()) -> None:
        """Remember what changed about a user (``attributes`` None: a new user, or everything); at the end
        of the transaction, _settle works out what follows."""
        change = tx.user_changes.get(user_id)
        if change is None:
            tx.user_changes[user_id] = UserChange(None if attributes is None else set(attributes), set(groups))
            return
        if attributes is None or change.attributes is None:
            change.attributes = None
        else:
            change.attributes |= attributes
        change.groups |= groups

    def _settle(self, tx: Transaction) -> None:
        """What this transaction's user changes imply: rule memberships, then the accounts and pushed groups to reconcile."""
        while tx.user_changes:
            changes, tx.user_changes = tx.user_changes, {}
            before = {uid: set() if c.attributes is None else self.directory.apps_touching(uid, tx) for uid, c in changes.items()}
            changed_groups = self.rules().reevaluate(tx, changes)
            for user_id, apps in before.items():
                self._mark_user(tx, user_id, apps)
            for gid in {g for gids in changed_groups.values() for g in gids}:
                self._mark_groups(tx, gid)

    def rules(self) -> GroupRules:
        return GroupRules(self)

    # -- users -----------------------------------------------------------------------

    def create_user(self, login: str, email: str, first: str, last: str, extra: dict[str, Any] | None = None, *, activate: bool = False) -> dict:
        typed = {"login": login, "email": email, "firstName": first, "lastName": last}
        check_typed_profile({**(extra or {}), **typed}, labels=_TYPED_LABELS)
        profile = validate_profile({**(extra or {}), "login": login, "email": email, "firstName": first, "lastName": last})
        with self._change(Action.MANAGE_USERS) as tx:
            if tx.lookup(USERS, "login", profile["login"]):
                raise InvalidInput("login", f"{profile['login']!r} is already taken")
            user_id = new_id()
            now = utc_now_iso()
            state = State.ACTIVE if activate else State.STAGED
            doc = {"id": user_id, "login": profile["login"], "state": state.value, "source": "provtui", "profile": profile, "created": now, "state_changed": now}
            tx.put(USERS, user_id, doc)
            self._audit(tx, "user.create", profile["login"], None, {"state": doc["state"], "profile": profile})
            self.note_user_change(tx, user_id, attributes=None)
        return self.user_view(profile["login"])

    def update_user(self, login: str, changes: dict[str, Any]) -> dict:
        if not changes:
            raise InvalidInput("--set", "nothing to change")
        check_typed_profile(changes)
        with self._change(Action.MANAGE_USERS) as tx:
            user_id = self.directory.user_id(login, tx)
            user = tx.get(USERS, user_id)
            self._check_mastered(tx, user, changes)
            profile = {**user["profile"], **changes}
            profile = validate_profile({k: v for k, v in profile.items() if v not in ("", None)})
            if profile["login"] != user["login"] and tx.lookup(USERS, "login", profile["login"]):
                raise InvalidInput("login", f"{profile['login']!r} is already taken")
            before = {k: user["profile"].get(k) for k in changes}
            after = {k: profile.get(k) for k in changes}
            if before == after:
                return self.user_view(login)  # nothing changes: no audit event, no downstream work
            tx.put(USERS, user_id, {**user, "login": profile["login"], "profile": profile})
            self._audit(tx, "user.update", user["login"], before, after)
            self.note_user_change(tx, user_id, attributes={k for k in changes if before.get(k) != after.get(k)})
        return self.user_view(profile["login"])

    def _check_mastered(self, tx: Transaction, user: dict, changes: dict[str, Any]) -> None:
        """An attribute a source of truth supplies is changed there, not here."""
        mastered = self._mastered(tx, user)
        for key in changes:
            if key in mastered:
                raise InvalidInput(key, f"{user['login']}'s {key} is mastered by the source {mastered[key]!r}: change it there")

    def _mastered(self, reader, user: dict) -> dict[str, str]:
        """Attribute -> the source that masters it, for a user a source supplies: what the source's imports
        write (its attributes), or who last won it by priority (the user's attribute_sources)."""
        source_name = user.get("source", "provtui")
        if source_name == "provtui":
            return {}
        source = reader.get(SOURCES, source_name)
        owned = set(source.get("attributes", ())) if source else set()
        provenance = user.get("attribute_sources") or {}
        owners = {key: provenance.get(key) or (source_name if key in owned else None) for key in owned | set(provenance)}
        return {key: owner for key, owner in sorted(owners.items()) if owner and owner != "provtui"}

    def change_state(self, login: str, action: str) -> dict:
        """Run a lifecycle action (activate, suspend, unsuspend, deactivate, reactivate, delete)."""
        with self._change(Action.SUSPEND if action in ("suspend", "unsuspend") else Action.MANAGE_USERS) as tx:
            user_id = self.directory.user_id(login, tx)
            user = tx.get(USERS, user_id)
            target = transition(user["state"], action)
            tx.put(USERS, user_id, {**user, "state": target.value, "state_changed": utc_now_iso()})
            self._audit(tx, f"user.{action}", user["login"], {"state": user["state"]}, {"state": target.value})
            self.note_user_change(tx, user_id, attributes=set())
        return self.user_view(login)

    # -- groups ----------------------------------------------------------------------

    def create_group(self, name: str, description: str = "") -> dict:
        name = _validate_name("name", name)
        check_text("--description", description, MAX_DESCRIPTION)
        with self._change(Action.MANAGE_GROUPS) as tx:
            if tx.lookup(GROUPS, "name", name):
                raise InvalidInput("name", f"a group named {name!r} already exists")
            group = {"id": new_id(), "name": name, "description": description, "kind": "provtui", "created": utc_now_iso()}
            tx.put(GROUPS, group["id"], group)
            self._audit(tx, "group.create", name, None, {"description": description})
        return group

    def rename_group(self, name: str, new_name: str) -> dict:
        new_name = _validate_name("NEW_NAME", new_name)
        with self._change(Action.MANAGE_GROUPS) as tx:
            group = self.directory.group(name, tx)
            if new_name != name and tx.lookup(GROUPS, "name", new_name):
                raise InvalidInput("NEW_NAME", f"a group named {new_name!r} already exists")
            renamed = {**group, "name": new_name}
            tx.put(GROUPS, group["id"], renamed)
            self._audit(tx, "group.rename", name, {"name": name}, {"name": new_name})
            self._mark_groups(tx, group["id"])
            # Entitlement paths name the group ("group:eng"): nothing downstream depends on them.
        return renamed

    def push_group(self, group_name: str, app_name: str) -> dict:
        """Push a group and its membership to an app that supports groups."""
        with self._change() as tx:
            group = self.directory.group(group_name, tx)
            app = self.directory.app(app_name, tx)
            self._authorise(tx, Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            if Capability.PUSH_GROUPS not in app["capabilities"]:
                raise InvalidInput("--app", f"{app_name} does not push groups (turn it on: app update {app_name} --push-groups)")
            key = group_key(app["id"], group["id"])
            push = {"app": app["id"], "group": group["id"], "state": "pushed", "delete": False, "since": utc_now_iso()}
            before = tx.get(PUSHES, key)
            if before and before["state"] == "pushed":
                return before
            tx.put(PUSHES, key, push)
            self._audit(tx, "group.push", group_name, None, {"app": app_name})
            queue(tx, key, {"app": app["id"], "group": group["id"]})
        return push

    def unpush_group(self, group_name: str, app_name: str, *, delete: bool = False) -> dict:
        """Stop pushing a group; ``delete`` removes it downstream, otherwise it is left there."""
        with self._change() as tx:
            group = self.directory.group(group_name, tx)
            app = self.directory.app(app_name, tx)
            self._authorise(tx, Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            key = group_key(app["id"], group["id"])
            before = tx.get(PUSHES, key)
            if before is None or before["state"] != "pushed":
                raise InvalidInput("GROUP", f"{group_name} is not pushed to {app_name}")
            push = {**before, "state": "unpushed", "delete": delete, "since": utc_now_iso()}
            tx.put(PUSHES, key, push)
            self._audit(tx, "group.unpush", group_name, {"app": app_name}, {"app": app_name, "delete": delete})
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
        with self._change() as tx:
            group = self._manual_group(tx, group_name)
            changed = [login for login in (self._membership(tx, group, self.directory.user_id(login, tx), add=add)
                                           for login in logins) if login]
            self._audit_membership(tx, group, changed, add=add)
        return changed

    def move_member(self, login: str, leave: str, join: str) -> dict:
        """Take a user out of one group and into another in one transaction: both or neither."""
        if leave == join:
            raise InvalidInput("join", f"{join} is the group to leave: choose another")
        with self._change() as tx:
            old = self._manual_group(tx, leave, field="leave")
            new = self._manual_group(tx, join, field="join")
            user_id = self.directory.user_id(login, tx)
            if not self.directory.membership_paths(old["id"], user_id, tx):
                raise InvalidInput("leave", f"{login} is not a member of {leave}")
            left = self._membership(tx, old, user_id, add=False, field="leave")
            joined = self._membership(tx, new, user_id, add=True, field="join")
            self._audit_membership(tx, old, [left] if left else [], add=False)
            self._audit_membership(tx, new, [joined] if joined else [], add=True)
            login = tx.get(USERS, user_id)["login"]
        return self.user_view(login)

    def _manual_group(self, tx: Transaction, name: str, *, field: str = "GROUP") -> dict:
        """A group whose membership the actor may change by hand (a provtui group, in the actor's scope)."""
        group = self.directory.group(name, tx)
        self._authorise(tx, Action.GROUP_MEMBERSHIP, Scope(groups=frozenset({group["id"]})))
        if group.get("kind", "provtui") != "provtui":
            raise InvalidInput(field, f"{name} is a {group['kind']} group: its membership comes from there")
        return group

    def _membership(self, tx: Transaction, group: dict, user_id: str, *, add: bool, field: str = "LOGIN") -> str | None:
        """Add or remove one user's manual membership of ``group``; their login if that changed anything.

        Removing refuses a membership a rule or a source holds: that is changed there."""
        key = member_key(group["id"], user_id)
        present = tx.get(MEMBERS, key) is not None
        login = tx.get(USERS, user_id)["login"]
        if not add and not present and (others := self.directory.membership_paths(group["id"], user_id, tx)):
            raise InvalidInput(field, f"{login} is in {group['name']} by {', '.join(others)}, not by hand: "
                               "change the rule or the source instead")
        if present == add:
            return None
        before_apps = self.directory.apps_touching(user_id, tx)
        if add:
            tx.put(MEMBERS, key, {"group": group["id"], "user": user_id, "via": "manual"})
        else:
            tx.delete(MEMBERS, key)
        self._mark_user(tx, user_id, before_apps)
        self.note_user_change(tx, user_id, groups={group["name"]})  # rules reading this group look again
        return login

    def _audit_membership(self, tx: Transaction, group: dict, logins: list[str], *, add: bool) -> None:
        if logins:
            self._audit(tx, f"group.{'add-member' if add else 'remove-member'}", group["name"], None, {"users": logins})
            self._mark_groups(tx, group["id"])

    # -- apps ------------------------------------------------------------------------

    def create_app(self, name: str, *, scim_url: str | None = None, token_env: str | None = None, manual: bool = False,
                   notify: list[str] | None = None, ldap: dict | None = None, **settings: Any) -> dict:
        """Add a SCIM, LDAP/AD (``ldap``: validate_ldap_target's arguments) or manual app.

        ``settings``: concurrency, rate, push_groups, sync_password, delete_after_days, licenses.
        """
        name = _validate_name("name", name)
        if [bool(scim_url), manual, ldap is not None].count(True) != 1:
            raise InvalidInput("--scim-url", "give one of --scim-url (with --token-env), --ldap-uri or --manual")
        if scim_url:
            _validate_scim(scim_url, token_env)
        elif manual and not notify:
            raise InvalidInput("--notify", "a manual app needs someone to notify of its tasks")
        target = validate_ldap_target(**ldap) if ldap is not None else None
        kind = AppKind.MANUAL if manual else AppKind.LDAP if ldap is not None else AppKind.SCIM
        settings = validate_settings({**DEFAULT_SETTINGS, **settings})
        with self._change(Action.CREATE_APPS) as tx:
            if tx.lookup(APPS, "name", name):
                raise InvalidInput("name", f"an app named {name!r} already exists")
            app = {
                "id": new_id(), "name": name, "kind": kind.value, "scim_url": scim_url, "token_env": token_env,
                "notify": _validate_emails(notify or []), "capabilities": _capabilities(kind, settings),
                "settings": settings, "created": utc_now_iso(),
            }
            if target is not None:
                app["ldap"] = target
            tx.put(APPS, app["id"], app)
            self._audit(tx, "app.create", name, None, _app_config(app))
        return app

    def update_app(self, name: str, *, scim_url: str | None = None, token_env: str | None = None,
                   ldap: dict | None = None, notify: list[str] | None = None, **settings: Any) -> dict:
        """Change an app's connection or settings; only what is given (not None) changes.

        The connection is where the app's calls go (``scim_url``; ``ldap``'s ``uri`` and ``bind_dn``) and the
        secret they carry (``token_env``; ``ldap``'s ``password_env``): only a super admin changes it
        (Action.APP_CONNECTION), as an app admin could otherwise have the next sync send the app's secret to a
        server of their own.  A changed endpoint drops the secret reference unless one is given with it, so a
        secret never follows an app to a new endpoint.  Returns the app, with ``cleared``: the references dropped.
        """
        ldap = {k: v for k, v in (ldap or {}).items() if v is not None}
        unknown = sorted(set(ldap) - set(_LDAP_CONNECTION))
        if unknown:
            raise InvalidInput(unknown[0], "is not an LDAP connection setting update_app changes (uri, bind_dn, password_env)")
        # The shape of what is given first, so a secret typed where its name belongs is refused before anything is read.
        if scim_url is not None:
            validate_scim_url(scim_url)
        if token_env is not None:
            validate_env_name("--token-env", token_env, "the bearer token")
        if "uri" in ldap:
            validate_ldap_uri(ldap["uri"])
        if "bind_dn" in ldap:
            validate_dn("--bind-dn", ldap["bind_dn"])
        if "password_env" in ldap:
            validate_env_name("--password-env", ldap["password_env"], "the bind password")
        with self._change() as tx:
            app = self.directory.app(name, tx)
            scope = Scope(apps=frozenset({app["id"]}))
            self._authorise(tx, Action.MANAGE_APP, scope)
            kind = AppKind(app["kind"])
            updated = {**app, "settings": validate_settings({**app["settings"], **{k: v for k, v in settings.items() if v is not None}})}
            cleared: list[str] = []
            if (scim_url is not None or token_env is not None) and kind != AppKind.SCIM:
                raise InvalidInput("--scim-url" if scim_url is not None else "--token-env",
                                   f"{name} is a {kind.value} app: it has no SCIM endpoint")
            if ldap and kind != AppKind.LDAP:
                raise InvalidInput(_LDAP_CONNECTION[next(iter(ldap))], f"{name} is a {kind.value} app: it has no LDAP connection")
            if kind == AppKind.SCIM:
                given = {k: v for k, v in (("scim_url", scim_url), ("token_env", token_env)) if v is not None}
                current = {"scim_url": app["scim_url"], "token_env": app["token_env"]}
                updated.update(self._connection(tx, scope, current, given, ("scim_url",), "token_env", cleared))
            elif ldap:
                updated["ldap"] = self._connection(tx, scope, app["ldap"], ldap, ("uri", "bind_dn"), "password_env", cleared)
            if notify is not None:
                updated["notify"] = _validate_emails(notify)
            updated["capabilities"] = _capabilities(kind, updated["settings"])
            if updated == app:
                return {**app, "cleared": []}
            tx.put(APPS, app["id"], updated)
            self._audit(tx, "app.update", name, _app_config(app), _app_config(updated))
            # A new endpoint or retention period may change what every account needs.
            self._mark_app_accounts(tx, app["id"])
        return {**updated, "cleared": cleared}

    def _connection(self, tx: Transaction, scope: Scope, current: dict, given: dict, endpoint: tuple[str, ...],
                    secret: str, cleared: list[str]) -> dict:
        """``current`` (an app's SCIM fields or its ``ldap``) with ``given`` applied: authorised for a super admin
        when anything changes; a changed endpoint takes the secret reference given with it, else none."""
        changed = {k for k, v in given.items() if v != current.get(k)}
        if not changed:
            return dict(current)
        self._authorise(tx, Action.APP_CONNECTION, scope)
        result = {**current, **given}
        if changed & set(endpoint) and secret not in given:
            result[secret] = None  # the secret was the old endpoint's: it does not follow the app
            if current.get(secret):
                cleared.append(secret)
        return result

    def mappings(self, app_name: str) -> list[dict]:
        """The app's attribute mappings: target, expression, and when it is sent."""
        self._read()
        app = self.directory.app(app_name)
        return [dict(m) for m in (app.get("mappings") or default_mappings_for(app))]

    def set_mapping(self, app_name: str, target: str, expr: str | None, on: str = ALWAYS) -> list[dict]:
        """Map a downstream attribute to an expression (``expr`` None: stop sending it); accounts are re-provisioned."""
        check_text("TARGET", target, MAX_TARGET)
        if expr is not None:
            check_text("EXPR", expr, MAX_EXPRESSION)
            compile_mapping(target, expr, on)  # refuse a bad one, with the column, before anything is written
        with self._change() as tx:
            app = self.directory.app(app_name, tx)
            self._authorise(tx, Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            if app["kind"] == AppKind.MANUAL:
                raise InvalidInput("APP", f"{app_name} is a manual app: it has no attributes to map")
            before = [dict(m) for m in (app.get("mappings") or default_mappings_for(app))]
            after = [m for m in before if m["target"] != target]
            if expr is not None:
                after.append({"target": target, "expr": expr, "on": on})
            elif len(after) == len(before):
                raise InvalidInput("TARGET", f"{app_name} does not map {target}")
            if after == before:
                return after
            tx.put(APPS, app["id"], {**app, "mappings": after})
            self._audit(tx, "app.map", app_name, {"target": target, "mapping": next((m for m in before if m["target"] == target), None)},
                        {"target": target, "mapping": next((m for m in after if m["target"] == target), None)})
            self._mark_app_accounts(tx, app["id"])
        return after

    def preview_payload(self, app_name: str, login: str) -> dict:
        """Exactly what would be sent to the app for this user (the SCIM resource on create)."""
        from provtui.connectors.scim import to_resource

        self._read()
        app = self.directory.app(app_name)
        user_id = self.directory.user_id(login)
        desired = self.directory.desired(app["id"], user_id)
        return {"app": app_name, "user": login, "entitled": desired.active, "attributes": desired.attributes,
                "create_only": sorted(desired.create_only), "payload": to_resource(desired.attributes, active=desired.active)}

    def resume_app(self, name: str) -> dict:
        """Lift an app's quarantine; its queued work runs again."""
        with self._change() as tx:
            app = self.directory.app(name, tx)
            self._authorise(tx, Action.MANAGE_APP, Scope(apps=frozenset({app["id"]})))
            health = tx.get(APP_HEALTH, app["id"])
            if not health or not health.get("quarantined"):
                raise InvalidInput("APP", f"{name} is not quarantined")
            tx.put(APP_HEALTH, app["id"], {**health, "quarantined": False, "consecutive_failures": 0, "resumed_at": utc_now_iso()})
            self._audit(tx, "app.resume", name, {"quarantined": True, "reason": health.get("reason")}, {"quarantined": False})
            return self._app_status(app)

    def retry(self, *, app_name: str | None = None, login: str | None = None) -> int:
        """Queue failed accounts again (all, or of one app and/or one user). Returns how many."""
        with self._change() as tx:
            app_id = self.directory.app(app_name, tx)["id"] if app_name else None
            self._authorise(tx, Action.MANAGE_APP, Scope(apps=frozenset({app_id} if app_id else self.store.all(APPS))))
            user_id = self.directory.user_id(login, tx) if login else None
            if user_id is not None or app_id is not None:  # by index, not a scan of every account
                by, value = ("user", user_id) if user_id is not None else ("app", app_id)
                accounts = [tx.get(ACCOUNTS, k) for k in sorted(tx.lookup(ACCOUNTS, by, value))]
            else:
                accounts = self.store.all(ACCOUNTS).values()
            failed = [a for a in accounts
                      if a.get("state") == "failed" and app_id in (None, a["app"]) and user_id in (None, a["user"])]
            if failed:
                self._mark_dirty(tx, ((a["app"], a["user"]) for a in failed))
                self._audit(tx, "provisioning.retry", app_name or "*", None, {"user": login, "accounts": len(failed)})
        return len(failed)

    def set_config(self, key: str, value: str) -> dict:
        """Store-wide settings such as smtp.host; secrets are referenced (smtp.password-env), never stored."""
        entry = validate_config(key, value)
        with self._change(Action.CONFIGURE) as tx:
            before = tx.get(CONFIG, key)
            tx.put(CONFIG, key, entry)
            self._audit(tx, "config.set", key, before and before["value"], entry["value"])
        return entry

    def config(self) -> dict[str, Any]:
        self._read()
        return {key: entry["value"] for key, entry in sorted(self.store.all(CONFIG).items())}

    def assign(self, app_name: str, *, login: str | None = None, group: str | None = None,
               values: dict[str, Any] | None = None, priority: int | None = None) -> bool:
        """Assign an app to a user or a group, with app-specific ``values`` (mappings read them as
        ``assignment.<key>``) and, for a group, a ``priority`` (lower wins) for users several groups entitle.
        Returns False if nothing changed."""
        return self._set_assignment(app_name, login, group, assign=True, values=values, priority=priority)

    def unassign(self, app_name: str, *, login: str | None = None, group: str | None = None) -> bool:
        return self._set_assignment(app_name, login, group, assign=False)

    def _set_assignment(self, app_name: str, login: str | None, group_name: str | None, *, assign: bool,
                        values: dict[str, Any] | None = None, priority: int | None = None) -> bool:
        if (login is None) == (group_name is None):
            raise InvalidInput("--user", "give exactly one of --user or --group")
        if priority is not None and (login is not None or priority < 0):
            raise InvalidInput("--priority", "is for group assignments: a whole number, 0 or more (lower wins)")
        if priority is not None:
            numbers.PRIORITY.check("--priority", priority)
        values = _validate_values(values or {})
        with self._change() as tx:
            app = self.directory.app(app_name, tx)
            if login is not None:
                subject, target, groups = user_subject(self.directory.user_id(login, tx)), f"user:{login}", frozenset()
            else:
                group_id = self.directory.group(group_name, tx)["id"]
                subject, target, groups = group_subject(group_id), f"group:{group_name}", frozenset({group_id})
            elsewhere = any(tx.get(ASSIGNMENTS, k)["subject"] != subject for k in tx.lookup(ASSIGNMENTS, "app", app["id"]))
            self._authorise(tx, Action.ASSIGN_APP, Scope(apps=frozenset({app["id"]}), groups=groups, app_assigned_elsewhere=elsewhere))
            key = assignment_key(app["id"], subject)
            existing = tx.get(ASSIGNMENTS, key)
            if assign:
                doc = {"app": app["id"], "subject": subject, "created": existing["created"] if existing else utc_now_iso(),
                       "values": {**(existing or {}).get("values", {}), **values},
                       "priority": priority if priority is not None else (existing or {}).get("priority")}
                doc["values"] = {k: v for k, v in doc["values"].items() if v != ""}  # KEY= clears a value
                if existing == doc:
                    return False
                tx.put(ASSIGNMENTS, key, doc)
                before = {k: existing.get(k) for k in ("values", "priority")} if existing else None
                self._audit(tx, "app.assign", app["name"], before, {"subject": target, "values": doc["values"], "priority": doc["priority"]})
            else:
                if existing is None:
                    return False
                tx.delete(ASSIGNMENTS, key)
                self._audit(tx, "app.unassign", app["name"], None, {"subject": target})
            self._mark_dirty(tx, ((app["id"], uid) for uid in self.directory.users_of_subject(subject, tx)))
        return True

    # -- sources and imports ---------------------------------------------------------

    def importer(self) -> Importer:
        return Importer(self)

    def add_source(self, name: str, kind: str, settings: dict[str, Any]) -> dict:
        return self.importer().add_source(name, kind, settings)

    def list_sources(self) -> list[dict]:
        return self.importer().list_sources()

    def set_source_priority(self, attribute: str, sources: list[str]) -> dict[str, list[str]]:
        return self.importer().set_priority(attribute, sources)

    def import_csv(self, data: bytes, *, source: str | None = None, dry_run: bool = False, confirm: bool = False,
                   full: bool = True, allow_empty: bool = False, strict: bool = False) -> dict:
        return self.importer().import_csv(data, source=source, dry_run=dry_run, confirm=confirm, full=full,
                                          allow_empty=allow_empty, strict=strict)

    def add_ldap_source(self, name: str, **settings: Any) -> dict:
        return self.importer().add_ldap_source(name, **settings)

    def import_ldap(self, name: str, *, dry_run: bool = False, confirm: bool = False, full: bool | None = None,
                    allow_empty: bool = False) -> dict:
        return self.importer().import_ldap(name, dry_run=dry_run, confirm=confirm, full=full, allow_empty=allow_empty)

    def import_app(self, app: str, *, match: str = "userName", dry_run: bool = False, confirm: bool = False) -> dict:
        return self.importer().import_app(app, match=match, dry_run=dry_run, confirm=confirm)

    def import_app_groups(self, app: str, *, dry_run: bool = False) -> dict:
        return self.importer().import_app_groups(app, dry_run=dry_run)

    # -- admins ----------------------------------------------------------------------

    def grant(self, os_user: str, role: str, *, apps: list[str] = (), groups: list[str] = ()) -> dict:
        """Give an OS user an admin role (scoped to apps or groups where the role is scoped)."""
        parsed = validate_grant(role, list(apps), list(groups))
        if not os_user or not os_user.replace("-", "").replace("_", "").replace(".", "").replace(":", "").isalnum():
            raise InvalidInput("OSUSER", f"{os_user!r} is not a user name")
        with self._change(Action.MANAGE_ADMINS) as tx:
            grant = Grant(parsed, frozenset(self.directory.app(a, tx)["id"] for a in apps),
                          frozenset(self.directory.group(g, tx)["id"] for g in groups))
            admin = tx.get(ADMINS, os_user) or {"user": os_user, "grants": []}
            others = [g for g in admin["grants"] if g["role"] != parsed.value]
            updated = {**admin, "grants": [*others, grant.to_doc()]}
            tx.put(ADMINS, os_user, updated)
            self._audit(tx, "admin.grant", os_user, admin["grants"] or None, updated["grants"])
        return self._admin_view(updated)

    def revoke(self, os_user: str, role: str) -> dict:
        """Take a role away; the last super-admin cannot be removed."""
        parsed = parse_role(role)
        with self._change(Action.MANAGE_ADMINS) as tx:
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
            self._audit(tx, "admin.revoke", os_user, admin["grants"], remaining or None)
        return {"user": os_user, "grants": self._admin_view({"grants": remaining})["grants"]}

    def list_admins(self) -> list[dict]:
        self._read()
        return [self._admin_view(a) for _, a in sorted(self.store.all(ADMINS).items())]

    def _admin_view(self, admin: dict) -> dict:
        def names(table: str, ids: list[str]) -> list[str]:
            return sorted(self.store.get(table, i)["name"] for i in ids if self.store.get(table, i))

        return {"user": admin.get("user"), "grants": [
            {"role": g["role"], "apps": names(APPS, g.get("apps", [])), "groups": names(GROUPS, g.get("groups", []))}
            for g in admin["grants"]]}

    # -- passwords -------------------------------------------------------------------

    def password_targets(self, login: str) -> list[dict]:
        """The accounts a new password for ``login`` goes to: apps that sync passwords where the user has one.

        Authorised here, before anything is sent; nothing is written.
        """
        with self.store.transaction() as tx:  # the lock, so the answer is current; writes nothing
            self._authorise(tx, Action.RESET_PASSWORD)
            user_id = self.directory.user_id(login, tx)
            user = tx.get(USERS, user_id)
        if user["state"] != State.ACTIVE:
            raise InvalidInput("state", f"{login} is {user['state']}: only an active user's password can be set")
        targets = []
        for app_id in sorted(self.directory.apps_touching(user_id)):
            app = self.store.get(APPS, app_id)
            account = self.store.get(ACCOUNTS, account_key(app_id, user_id)) or {}
            if app["settings"].get("sync_password") and account.get("remote_id") and account.get("active"):
                targets.append({"app_id": app_id, "app": app["name"], "remote_id": account["remote_id"],
                                "attributes": account.get("attributes") or {}})
        return targets

    def check_password(self, password: str) -> str:
        """The password if it meets the store's policy (password.min-length, .classes, .blocklist)."""
        policy = {k: e["value"] for k, e in self.store.all(CONFIG).items() if k.startswith("password.")}
        password = validate_password(password, min_length=int(policy.get("password.min-length", 8)),
                                     min_classes=int(policy.get("password.classes", 1)))
        if password.lower() in set(policy.get("password.blocklist", ())):
            raise InvalidInput("password", "is on the blocklist of common or forbidden passwords")
        return password

    def record_password_change(self, login: str, results: list[dict], *, random: bool) -> None:
        """Audit a password change: which apps took it (never the password)."""
        with self._change(Action.RESET_PASSWORD) as tx:
            self._audit(tx, "user.password", login, None, {
                "random": random, "apps": [r["app"] for r in results if not r["error"]],
                "failed": [r["app"] for r in results if r["error"]]})

    # -- manual apps' tasks ----------------------------------------------------------

    def complete_task(self, task_id: str) -> dict:
        """An admin did a manual app's task: the account now is as the task said."""
        with self._change() as tx:
            task = tx.get(TASKS, task_id)
            if task is None:
                raise InvalidInput("ID", f"no task {task_id!r}")
            self._authorise(tx, Action.MANAGE_APP, Scope(apps=frozenset({task["app"]})))
            if task["state"] != "open":
                raise InvalidInput("ID", f"task {task_id} is {task['state']}, not open")
            key = account_key(task["app"], task["user"])
            account = tx.get(ACCOUNTS, key) or {"app": task["app"], "user": task["user"], "attributes": {}}
            active = task["action"] == "provision"
            tx.put(ACCOUNTS, key, {**account, "remote_id": "manual", "active": active, "task": None,
                                   "state": "active" if active else "deactivated", "last_sync": utc_now_iso()})
            done = {**task, "state": "done", "closed": utc_now_iso(), "closed_by": self.actor}
            tx.put(TASKS, task_id, done)
            user = tx.get(USERS, task["user"])
            self._audit(tx, "task.done", tx.get(APPS, task["app"])["name"], {"task": task_id, "state": "open"},
                        {"task": task_id, "state": "done", "action": task["action"], "user": user["login"] if user else task["user"]})
            self._mark_dirty(tx, [(task["app"], task["user"])])  # re-check: the user may have changed since
        return done

    # -- provisioning ------------------------------------------------------------------

    def reconciler(self, **kwargs):
        """The engine that provisions this store's pending work.  Each run is authorised when it starts
        (provisioning_scope): it touches only the apps the actor may provision, and names the actor in its audit."""
        from provtui.engine import Reconciler

        return Reconciler(self.store, self.directory, run_by=self.actor, scope=self.provisioning_scope, **kwargs)

    def provisioning_scope(self, reader=None) -> frozenset[str] | None:
        """The apps the actor may provision (sync, worker, the console's engine): None for all (a super
        admin), else the apps they are app admin of; NotAllowed when there are none."""
        grants = self.grants(reader)
        if any(g.role == Role.SUPER_ADMIN for g in grants):
            return None
        apps = frozenset(a for a in self.store.all(APPS) if allowed(grants, Action.MANAGE_APP, Scope(apps=frozenset({a}))))
        if not apps:
            raise NotAllowed(f"{self.actor} may not run provisioning: it needs the {needed(Action.MANAGE_APP)} role "
                             f"(an app-admin provisions only their apps)")
        return apps

    def may_provision(self) -> bool:
        """Whether the actor may run provisioning at all (the console runs its engine only then)."""
        try:
            self.provisioning_scope()
        except NotAllowed:
            return False
        return True

    # -- reading ---------------------------------------------------------------------

    def user_view(self, login: str) -> dict:
        """Everything known about one user, in the shape of `user show --json`."""
        self._read()
        d = self.directory
        user_id = d.user_id(login)
        user = self.store.get(USERS, user_id)
        paths = d.paths(user_id)
        apps = []
        for app_id in sorted(d.apps_touching(user_id), key=lambda a: self.store.get(APPS, a)["name"]):
            app = self.store.get(APPS, app_id)
            via = paths.get(app_id, [])
            values: dict[str, Any] = {}
            values_via: dict[str, str] = {}  # value name -> the entitlement path whose value wins
            for path, layer in d.assignment_layers(app_id, user_id):
                values.update(layer)
                values_via.update(dict.fromkeys(layer, path))
            apps.append({
                "app": app["name"],
                "entitled": user["state"] == State.ACTIVE and bool(via),
                "via": via,
                "values": values,
                "values_via": values_via,
                "account": self._account_view(app_id, user_id),
            })
        return {
            "id": user_id, "login": user["login"], "state": user["state"], "source": user.get("source", "provtui"),
            "profile": user["profile"], "groups": sorted(d.groups_of(user_id).values()), "apps": apps,
            "mastered": self._mastered(self.store, user),
        }

    def user_history(self, login: str, limit: int = 60) -> list[dict]:
        """The user's audit events, newest first: about them by login (followed through renames), the
        memberships, assignments, tasks and failures that name them, and the downstream calls made for
        them or on their SCIM accounts.  Read from an index that grows with the trail, not by reading the trail."""
        self._read()
        user_id = self.directory.user_id(login)
        keys = [self.store.get(USERS, user_id)["login"].casefold()]
        for key in self.store.lookup(ACCOUNTS, "user", user_id):
            account = self.store.get(ACCOUNTS, key)
            app = self.store.get(APPS, account["app"])
            if app is not None and account.get("remote_id"):
                keys.append(call_key(app["name"], account["remote_id"]))
        return self._history_index().newest(keys, limit)

    def prepare_history(self) -> None:
        """Read the audit trail into the user-history index now (the first history otherwise pays for it)."""
        self._read()
        self._history_index().catch_up()

    def _history_index(self) -> HistoryIndex:
        if self._history is None:
            self._history = HistoryIndex(self.store)
        return self._history

    def _account_view(self, app_id: str, user_id: str) -> dict:
        key = account_key(app_id, user_id)
        account = self.store.get(ACCOUNTS, key) or {}
        state = account.get("state", "none")
        queued = self.store.get(DIRTY, key) is not None
        if queued and state == "none":
            state = "pending"
        return {
            "state": state, "remote_id": account.get("remote_id"), "last_error": account.get("last_error"),
            "last_sync": account.get("last_sync"), "attempts": account.get("attempts", 0),
            "queued": queued,
        }

    def list_users(self, search: str = "", *, state: str | None = None, where: str | None = None,
                   group: str | None = None, app: str | None = None, source: str | None = None,
                   offset: int = 0, limit: int | None = None) -> tuple[int, list[dict]]:
        """(matches, one page of summaries); ``where``: a condition in the rules' expression language;
        ``group``: its members; ``app``: the users an assignment of it reaches; ``source``: those it masters."""
        self._read()
        among = self._users_among(group=group, app=app, source=source)
        if where is None:
            return self.directory.search_summaries(search, state=state, among=among, offset=offset, limit=limit)
        condition = self.rules().typed(where, field="--where")
        _, candidates = self.directory.search_users(search, state=state, among=among, limit=None)
        hits = condition.evaluate_all(self.directory.population(candidates, condition.groups_read))
        users = [u for u, hit in zip(candidates, hits) if hit is True]
        end = None if limit is None else offset + limit
        return len(users), [user_summary(u) for u in users[offset:end]]

    def _users_among(self, *, group: str | None, app: str | None, source: str | None) -> set[str] | None:
        """The user ids every filter given allows (None: no filter)."""
        sets = []
        if group is not None:
            sets.append(set(self.directory.members_of(self.directory.group(group)["id"])))
        if app is not None:
            sets.append(self.directory.entitled_to(self.directory.app(app)["id"]))
        if source is not None:
            if source != "provtui" and self.store.get(SOURCES, source) is None:
                raise InvalidInput("--source", f"no source named {source!r}")
            sets.append(self.directory.sourced_by(source))
        return set.intersection(*sets) if sets else None

    def list_groups(self) -> list[dict]:
        self._read()
        groups = sorted(self.store.all(GROUPS).values(), key=lambda g: g["name"])
        return [{**g, "members": len(self.store.lookup(MEMBERS, "group", g["id"]))} for g in groups]

    def app_assignments(self, app: str | None = None) -> list[dict]:
        """Every assignment (of one app, or all), by app then groups before users: the subject's kind and
        current name, its values and, for a group, its priority (lower wins; None: after those with one)."""
        self._read()
        if app is None:
            docs = self.store.all(ASSIGNMENTS).values()
        else:
            docs = [self.store.get(ASSIGNMENTS, k) for k in self.store.lookup(ASSIGNMENTS, "app", self.directory.app(app)["id"])]
        rows = []
        for doc in docs:
            kind, name = self.directory.subject_name(doc["subject"])
            rows.append({"app": self.store.get(APPS, doc["app"])["name"], "kind": kind, "name": name,
                         "values": doc.get("values") or {}, "priority": doc.get("priority"), "created": doc.get("created")})
        return sorted(rows, key=lambda r: (r["app"], r["kind"], r["name"]))

    def group_view(self, name: str, offset: int = 0, limit: int = 500) -> dict:
        """One group: what it is, one page of members (by login, with how each is in it), the apps
        assigned to it, where it is pushed (as the engine last left it), and the rules that fill it."""
        self._read()
        group = self.directory.group(name)
        vias: dict[str, list[str]] = {}
        for key in self.store.lookup(MEMBERS, "group", group["id"]):
            member = self.store.get(MEMBERS, key)
            vias.setdefault(member["user"], []).append(member["via"])
        users = sorted((self.store.get(USERS, uid) for uid in vias), key=lambda u: u["login"])
        page = [{**user_summary(u), "via": ", ".join(sorted(vias[u["id"]]))} for u in users[offset:offset + limit]]
        rules = sorted((r for r in self.store.all(RULES).values() if group["id"] in r["groups"]), key=lambda r: r["name"])
        assigned = [self.store.get(ASSIGNMENTS, k) for k in self.store.lookup(ASSIGNMENTS, "subject", group_subject(group["id"]))]
        return {
            "name": group["name"], "description": group.get("description") or "", "kind": group.get("kind", "provtui"),
            "source": group.get("source"), "members": len(users), "offset": offset, "member_page": page,
            "apps": sorted(({"app": self.store.get(APPS, a["app"])["name"], "values": a.get("values") or {},
                             "priority": a.get("priority")} for a in assigned), key=lambda a: a["app"]),
            "pushes": self._pushes(group),
            "rules": [{**view, "via": rule_via(rule["id"])} for rule, view in zip(rules, self.rules().views(rules))],
        }

    def _pushes(self, group: dict) -> list[dict]:
        """Per app that takes pushed groups or holds this one: the admin's intent and the engine's record of it."""
        rows = []
        for app in sorted(self.store.all(APPS).values(), key=lambda a: a["name"]):
            key = group_key(app["id"], group["id"])
            intent, known = self.store.get(PUSHES, key), self.store.get(PUSHED_GROUPS, key) or {}
            can_push = Capability.PUSH_GROUPS in app["capabilities"]
            if intent is None and not known and not can_push:
                continue
            if known.get("state") == "failed":
                state = "failed"
            elif intent is None:
                state = "not pushed"
            elif intent["state"] == "pushed":
                state = "pushed" if known.get("state") == "pushed" else "pushing"
            else:
                state = "unpushing" if known else "unpushed"
            rows.append({
                "app": app["name"], "state": state, "intent": intent["state"] if intent else None,
                "delete": bool(intent and intent.get("delete")), "since": intent["since"] if intent else None,
                "remote_id": known.get("remote_id"), "last_sync": known.get("last_sync"), "last_error": known.get("last_error"),
                "queued": self.store.get(DIRTY, key) is not None, "can_push": can_push,
            })
        return rows

    def list_apps(self) -> list[dict]:
        self._read()
        apps = sorted(self.store.all(APPS).values(), key=lambda a: a["name"])
        return [{**a, "accounts": len(self.store.lookup(ACCOUNTS, "app", a["id"])), "queued": len(self.store.lookup(DIRTY, "app", a["id"]))} for a in apps]

    def task_list(self, *, open_only: bool = False) -> list[dict]:
        """Manual apps' tasks with app and user names, oldest first."""
        self._read()
        if open_only:
            tasks = [self.store.get(TASKS, k) for k in self.store.lookup(TASKS, "state", "open")]
        else:
            tasks = list(self.store.all(TASKS).values())
        views = []
        for task in sorted(tasks, key=lambda t: t["created"]):
            app, user = self.store.get(APPS, task["app"]), self.store.get(USERS, task["user"])
            views.append({"id": task["id"], "app": app["name"] if app else task["app"], "user": user["login"] if user else task["user"],
                          "action": task["action"], "state": task["state"], "created": task["created"]})
        return views

    def pending_work(self) -> int:
        return len(self.store.all(DIRTY))

    def version(self) -> int:
        """Grows with every commit (ours or another process's): cheap change detection."""
        return self.store.seq

    def user_count(self) -> int:
        return len(self.store.all(USERS))

    def app_status(self, name: str | None = None) -> list[dict]:
        """Per app: queued, in flight, failed, quarantined, last success."""
        self._read()
        apps = [self.directory.app(name)] if name else sorted(self.store.all(APPS).values(), key=lambda a: a["name"])
        return [self._app_status(app) for app in apps]

    def _app_status(self, app: dict) -> dict:
        now = utc_now()
        dirty = [self.store.get(DIRTY, k) for k in self.store.lookup(DIRTY, "app", app["id"])]
        in_flight = sum(1 for d in dirty if d.get("lease") and parse_iso(d["lease"]["until"]) > now)
        accounts = [self.store.get(ACCOUNTS, k) for k in self.store.lookup(ACCOUNTS, "app", app["id"])]
        health = self.store.get(APP_HEALTH, app["id"]) or {}
        return {
            "app": app["name"], "kind": app["kind"], "queued": len(dirty) - in_flight, "in_flight": in_flight,
            "failed": sum(1 for a in accounts if a.get("state") == "failed"),
            "active": sum(1 for a in accounts if a.get("state") == "active"),
            "quarantined": bool(health.get("quarantined")), "quarantine_reason": health.get("reason"),
            "last_success": health.get("last_success"), "last_failure": health.get("last_failure"),
            # 401/403: the app refused provtui's credentials; paused (accounts stay queued) until a probe gets through
            "credentials_rejected": bool(health.get("credentials_rejected")),
            "credentials_error": health.get("credentials_error") if health.get("credentials_rejected") else None,
            "credentials_status": health.get("credentials_status") if health.get("credentials_rejected") else None,
            "credentials_rejected_at": health.get("credentials_rejected_at") if health.get("credentials_rejected") else None,
            "next_probe": health.get("probe_at") if health.get("credentials_rejected") else None,
        }

    def audit(self, limit: int | None = None, *, actor: str | None = None, target: str | None = None,
              action: str | None = None, since: datetime | None = None, until: datetime | None = None,
              calls: bool = True) -> list[dict]:
        """The audit trail, oldest first, filtered (see provtui.audit_trail); ``limit``: the newest N,
        read from the trail's end; ``calls``: False leaves out downstream calls."""
        self._read()
        filters = {"actor": actor, "target": target, "action": action, "since": since, "until": until, "calls": calls}
        if limit:
            return newest_events(self.store.audit_events_newest_first(), limit, **filters)
        return filter_events(self.store.audit_events(), **filters)

    def audit_verify(self, head: str | None = None) -> ChainReport:
        """Check the trail's hash chain, and that it ends at the store's head (a cut-off tail).

        ``head``: a head kept elsewhere (`audit head`, mailed away by a cron): the trail must still
        hold that event, so that rewriting anything up to it -- even re-chained -- is caught."""
        with self.store.reading():  # the shared lock: no compaction moves events while we read
            self._read()
            report = verify_chain(self.store.audit_events(), expected_head=self.store.audit_head)
        return report if head is None or not report.ok else vouch_for(report, self.store.audit_events(), head)

    def audit_head(self) -> dict:
        """The trail's newest hash and its length: what to keep elsewhere for `audit verify --head`."""
        with self.store.reading():
            self._read()
            return {"events": sum(1 for _ in self.store.audit_events_newest_first()), "head": self.store.audit_head}

    def reports(self) -> Reports:
        """The reports (read-only), once the actor may read."""
        self._read()
        return Reports(self)


def _validate_values(values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        check_text("--set", key, MAX_ATTRIBUTE_NAME)
        if not key.replace("_", "").isalnum() or not key[:1].isalpha():
            raise InvalidInput("--set", f"{key!r} is not a value name (letters, digits and _)")
        if isinstance(value, str):
            check_text(f"--set {key}", value, MAX_VALUE)
    return values


# What update_app changes of an LDAP app's ``ldap``, and the option each is given by.
_LDAP_CONNECTION = {"uri": "--ldap-uri", "bind_dn": "--bind-dn", "password_env": "--password-env"}


def _validate_scim(scim_url: str, token_env: str | None) -> None:
    check_text("--scim-url", scim_url, MAX_URL)
    check_text("--token-env", token_env or "", MAX_ENV_NAME)
    validate_scim_url(scim_url)
    if not token_env:
        raise InvalidInput("--token-env", "name the environment variable that holds the bearer token")
    validate_env_name("--token-env", token_env, "the bearer token")


def _validate_emails(emails: list[str]) -> list[str]:
    for email in emails:
        check_text("--notify", email, MAX_EMAIL)
        if "@" not in email or " " in email:
            raise InvalidInput("--notify", f"{email!r} is not an email address")
    return emails


def _capabilities(kind: AppKind, settings: dict) -> list[str]:
    capabilities = list(DEFAULT_CAPABILITIES[kind])
    if settings.get("delete_after_days") is not None:
        capabilities.append(Capability.DELETE)
    if settings.get("push_groups"):
        capabilities.append(Capability.PUSH_GROUPS)
    if settings.get("sync_password"):
        capabilities.append(Capability.SYNC_PASSWORD)
    return [c.value for c in capabilities]


def _app_config(app: dict) -> dict:
    """What the audit trail records of an app: its configuration (the token's variable name, never a token)."""
    return {k: app[k] for k in ("kind", "scim_url", "token_env", "notify", "settings", "ldap") if k in app}


CONFIG_KEYS = {
    "password.min-length": int, "password.classes": int, "password.blocklist": list,
    "safeguard.threshold": float,
    "smtp.host": str, "smtp.port": int, "smtp.from": str, "smtp.user": str, "smtp.password-env": str, "smtp.starttls": bool,
}


# The numeric settings' ranges (password.classes: lower case, upper case, digits, symbols), and how long a
# text setting may be (any other: MAX_NAME); a blocklist is a path.
_CONFIG_RANGES = {"password.min-length": numbers.PASSWORD_MIN_LENGTH, "password.classes": numbers.PASSWORD_CLASSES,
                  "safeguard.threshold": numbers.THRESHOLD, "smtp.port": numbers.PORT}
_CONFIG_LENGTHS = {"password.blocklist": 4096, "smtp.host": 253, "smtp.from": MAX_EMAIL, "smtp.user": 256,
                   "smtp.password-env": MAX_ENV_NAME}


def validate_config(key: str, value: str) -> dict:
    if key not in CONFIG_KEYS:
        raise InvalidInput("KEY", f"unknown setting {key!r} (known: {', '.join(sorted(CONFIG_KEYS))})")
    kind = CONFIG_KEYS[key]
    try:
        check_text(key, value, _CONFIG_LENGTHS.get(key, MAX_NAME))
        if key in _CONFIG_RANGES:
            try:
                parsed: Any = _CONFIG_RANGES[key].check(key, _CONFIG_RANGES[key].parse(value))
            except ValueError as error:
                raise InvalidInput(key, str(error)) from None
        elif kind is list:  # a file of words, one a line (a regular file, at most 16 MB): read now, kept lower-cased
            from provtui.input_files import MAX_BLOCKLIST, read_input

            lines = read_input(value, key, MAX_BLOCKLIST).decode("utf-8", errors="replace").splitlines()
            parsed = sorted({line.strip().lower() for line in lines if line.strip() and not line.startswith("#")})
        elif kind is bool:
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(value)
            parsed = value.lower() in ("true", "yes", "1")
        else:
            parsed = value
    except ValueError:
        raise InvalidInput(key, f"{value!r} is not a valid {kind.__name__}") from None
    if key == "smtp.password-env":
        validate_env_name(key, value, "the SMTP password")
    return {"key": key, "value": parsed}

