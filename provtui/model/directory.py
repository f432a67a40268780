"""Read model over the store: lookups the service, the engine and reports share.

Everything here reads; writes go through ``provtui.service`` (directory) or
``provtui.engine`` (downstream state).  Reads accept a Transaction too, so a
service call validates against the state it is about to change.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from provtui.domain.entitlement import direct_path, entitlement_paths, group_path
from provtui.domain.errors import NotFound
from provtui.domain.expressions import Population
from provtui.domain.group_push import DesiredGroup
from provtui.domain.mapping import (
    CompiledMapping,
    compile_mapping,
    create_only,
    default_mappings_for,
    map_attributes,
    map_fields,
    profile_fields,
)
from provtui.domain.plan import DesiredAccount, desired_account
from provtui.domain.text import nfc
from provtui.domain.users import SEARCH_FIELDS, normalise_login, search_text, user_summary
from provtui.model.history_index import HistoryIndex
from provtui.model.schema import (
    ACCOUNTS,
    APPS,
    ASSIGNMENTS,
    GROUPS,
    INDEXES,
    MEMBERS,
    PUSHES,
    SOURCES,
    USERS,
    Reader,
    account_key,
    assignment_key,
    group_key,
    group_subject,
    member_group,
    member_user,
    stored,
    user_subject,
)
from provtui.store import StoreBackend
from provtui.store.tables import capped

USER_SEARCH_PATHS = tuple(("profile", name) for name in SEARCH_FIELDS)  # what search_text reads, as store paths
FEW_USERS = 64  # Directory.population: up to this many users, look each one's groups up
Grants = tuple[dict[str, tuple[str, str, dict[str, Any], str]], dict[str, dict[str, Any]]]  # see Directory._granting_groups
_GRANT_TABLES = frozenset({ASSIGNMENTS, GROUPS})  # what a group's assignments (and their names) are read from


class Directory:
    """Queries over one store.  Keeps a search cache that follows every commit."""

    def __init__(self, store: StoreBackend):
        self.store = store
        for table, fieldname in INDEXES:
            store.add_index(table, fieldname)
        self._search: dict[str, str] | None = None
        self._mappings: dict[tuple[tuple[str, str, str], ...], list[CompiledMapping]] = {}
        self._app_mappings: dict[str, tuple[dict[str, Any], list[CompiledMapping]]] = {}  # app id -> (its doc, compiled)
        self._create_only: dict[str, tuple[dict[str, Any], list[CompiledMapping], frozenset[str], tuple[tuple[str, str], ...] | None]] = {}
        self._sorted_ids: list[str] | None = None
        # Summaries made once, not per search: a search matching 50,000 users then costs a scan, not 50,000 new dicts.
        self._summaries: dict[str, dict[str, Any]] | None = None
        self._history: HistoryIndex | None = None
        self._attributes: set[str] | None = None  # every attribute a profile has (grows with puts; a delete may leave one)
        # Each app's granting groups (see _granting_groups), for planning: every member's key of the app reads them,
        # and the engine's own commits (accounts, queue) leave them be.  Cleared by any assignment or group write.
        self._grants: dict[str, Grants] = {}
        # Each user's groups (by any path), for planning: a user's keys (one an app) read them in turn.  Dropped
        # for a user whose memberships a commit touches.
        self._user_groups: dict[str, tuple[str, ...]] = {}
        store.on_apply(self._invalidate)

    def history_index(self) -> HistoryIndex:
        """Each user's audit events, read from the trail on first use: one index per store, whoever reads it."""
        if self._history is None:
            self._history = HistoryIndex(self.store)
        return self._history

    def _invalidate(self, ops: list[list[Any]]) -> None:
        for op in ops:
            if op[1] in _GRANT_TABLES:
                self._grants.clear()
            elif op[1] == MEMBERS and self._user_groups:
                self._user_groups.pop(member_user(op[2]), None)
            if op[1] == USERS:
                doc = op[3] if op[0] == "put" else None
                if self._attributes is not None and doc is not None:
                    self._attributes.update(doc.get("profile") or ())
                if self._search is not None:
                    if doc is None:
                        self._search.pop(op[2], None)
                    else:
                        self._search[op[2]] = search_text(doc["profile"])
                before = self._summaries.pop(op[2], None) if self._summaries is not None else None
                if self._summaries is not None and doc is not None:
                    self._summaries[op[2]] = user_summary(doc)
                if before is None or doc is None or before["login"] != doc["login"]:
                    self._sorted_ids = None  # a user came, went or was renamed: the order by login changed

    def profile_attributes(self) -> set[str]:
        """The attribute names profiles have, read once and then kept up by every commit (rules warn of others)."""
        if self._attributes is None:
            self._attributes = {name for user in self.store.all(USERS).values() for name in user.get("profile") or ()}
        return self._attributes

    # -- finding things by name ----------------------------------------------------

    def user_id(self, login: str, reader: Reader | None = None) -> str:
        reader = reader or self.store
        ids = reader.lookup(USERS, "login", normalise_login(login))
        if not ids:
            raise NotFound("user", login)
        return next(iter(ids))

    def named(self, table: str, kind: str, name: str, reader: Reader | None = None) -> dict[str, Any]:
        reader = reader or self.store
        ids = reader.lookup(table, "name", nfc(name))
        if not ids:
            raise NotFound(kind, name)
        return stored(reader, table, next(iter(ids)))

    def group(self, name: str, reader: Reader | None = None) -> dict[str, Any]:
        return self.named(GROUPS, "group", name, reader)

    def app(self, name: str, reader: Reader | None = None) -> dict[str, Any]:
        return self.named(APPS, "app", name, reader)

    # -- relationships ---------------------------------------------------------------

    def groups_of(self, user_id: str, reader: Reader | None = None) -> dict[str, str]:
        """Group id -> name for the user's groups."""
        reader = reader or self.store
        groups = {}
        for key in reader.lookup(MEMBERS, "user", user_id):
            member = stored(reader, MEMBERS, key)
            group = reader.get(GROUPS, member["group"])
            if group is not None:
                groups[group["id"]] = group["name"]
        return groups

    def members_of(self, group_id: str, reader: Reader | None = None) -> list[str]:
        """The group's members, each once, whatever paths put them there."""
        reader = reader or self.store
        return sorted({stored(reader, MEMBERS, key)["user"] for key in reader.lookup(MEMBERS, "group", group_id)})

    def membership_paths(self, group_id: str, user_id: str, reader: Reader | None = None) -> list[str]:
        """How a user is in a group: "manual", "rule:<id>", "source:<name>"."""
        reader = reader or self.store
        return sorted(
            stored(reader, MEMBERS, k)["via"]
            for k in reader.lookup(MEMBERS, "user", user_id)
            if stored(reader, MEMBERS, k)["group"] == group_id
        )

    def apps_assigned_to(self, subject: str, reader: Reader | None = None) -> set[str]:
        reader = reader or self.store
        return {stored(reader, ASSIGNMENTS, key)["app"] for key in reader.lookup(ASSIGNMENTS, "subject", subject)}

    def paths(self, user_id: str, reader: Reader | None = None) -> dict[str, list[str]]:
        """App id -> entitlement paths for one user."""
        reader = reader or self.store
        groups = self.groups_of(user_id, reader)
        group_apps = {gid: self.apps_assigned_to(group_subject(gid), reader) for gid in groups}
        return entitlement_paths(self.apps_assigned_to(user_subject(user_id), reader), groups, group_apps)

    def apps_touching(self, user_id: str, reader: Reader | None = None) -> set[str]:
        """Apps where the user is entitled or has an account: what a change to the user may affect."""
        reader = reader or self.store
        apps = set(self.paths(user_id, reader))
        for key in reader.lookup(ACCOUNTS, "user", user_id):
            apps.add(stored(reader, ACCOUNTS, key)["app"])
        return apps

    def users_of_subject(self, subject: str, reader: Reader | None = None) -> list[str]:
        kind, _, ident = subject.partition(":")
        return [ident] if kind == "user" else self.members_of(ident, reader)

    def mappings(self, app: dict[str, Any]) -> list[CompiledMapping]:
        """The app's attribute mappings, compiled once per distinct set (and looked up once per app document)."""
        seen = self._app_mappings.get(app["id"])
        if seen is not None and seen[0] is app:  # the same stored document: its mappings are what they were
            return seen[1]
        specs = app.get("mappings") or default_mappings_for(app)
        key = tuple((m["target"], m["expr"], m["on"]) for m in specs)
        compiled = self._mappings.get(key)
        if compiled is None:
            compiled = self._mappings[key] = [compile_mapping(*spec) for spec in key]
        self._app_mappings[app["id"]] = (app, compiled)
        return compiled

    def desired(self, app_id: str, user_id: str) -> DesiredAccount:
        """The account the user should have in the app now; raises InvalidInput if a mapping fails on them.

        The engine's hot path (every queued key): it reads only the user's groups that assign this app,
        by the group id in each membership's key, against the app's granting groups read once (``_granting_groups``)."""
        store = self.store
        user = store.get(USERS, user_id)
        if user is None:
            return DesiredAccount(active=False, attributes={})
        seen = self._create_only.get(app_id)  # (the app's mappings as _mappings_of keeps them, read inline: hot)
        _, mappings, only, fields = seen if seen is not None and seen[0] is store.get(APPS, app_id) else self._mappings_of(app_id)
        grants = self._grants.get(app_id) or self._granting_groups(app_id)
        by_group = grants[0]
        groups = self._user_groups.get(user_id)
        if groups is None:
            groups = self._user_groups[user_id] = tuple({member_group(key) for key in store.lookup(MEMBERS, "user", user_id)})
        names: dict[str, str] = {}
        granting: dict[str, dict[str, Any]] = {}
        grant = None
        for group_id in groups:
            found = by_group.get(group_id)
            if found is not None:
                names[group_id], granting[group_id], grant = found[1], found[2], found
        direct = grants[1].get(user_id)
        paths = [direct_path()] if direct else []
        if len(names) == 1 and grant is not None:
            paths.append(grant[3])
        elif names:
            paths += [group_path(name) for name in sorted(names.values())]  # as entitlement_paths orders them
        if fields is not None:  # every mapping reads only the profile: no assignment's values can matter
            attributes = map_fields(user_id, user["profile"], fields)
        else:
            if direct is None and len(granting) == 1:
                values = next(iter(granting.values())).get("values") or {}  # (read only: map_attributes copies nothing into it)
            else:
                values = {}
                for _, layer in self._layers(names, granting, direct) if granting or direct else ():
                    values.update(layer)
            attributes = map_attributes(user_id, user["profile"], mappings, values)
        return desired_account(user["state"], paths, attributes, only)

    def _mappings_of(self, app_id: str) -> tuple[dict[str, Any], list[CompiledMapping], frozenset[str], tuple[tuple[str, str], ...] | None]:
        """The app's document, its compiled mappings, the targets set only on create, and (target, attribute) of
        each if every one only reads a profile attribute (``map_fields``), kept while its document is the same."""
        app = stored(self.store, APPS, app_id)
        seen = self._create_only.get(app_id)
        if seen is not None and seen[0] is app:
            return seen
        mappings = self.mappings(app)
        seen = self._create_only[app_id] = (app, mappings, create_only(mappings), profile_fields(mappings))
        return seen

    def assignment_values(self, app_id: str, user_id: str, reader: Reader | None = None) -> dict[str, Any]:
        """The app-specific values a user's assignments carry: group defaults by priority (lower wins;
        then by group name), and a direct assignment's own values over them."""
        values: dict[str, Any] = {}
        for _, layer in self.assignment_layers(app_id, user_id, reader):
            values.update(layer)
        return values

    def _granting_groups(self, app_id: str) -> Grants:
        """The app's assignments as committed, read once per app until an assignment or group write
        (``_invalidate``): group id -> (the id, its name, its assignment, its entitlement path) of each group assigning it, and user id
        -> the assignment of each user assigned it directly."""
        groups, direct = {}, {}
        for key in self.store.lookup(ASSIGNMENTS, "app", app_id):
            assignment = stored(self.store, ASSIGNMENTS, key)
            kind, _, subject_id = assignment["subject"].partition(":")
            if kind == "user":
                direct[subject_id] = assignment
            elif kind == "group" and (group := self.store.get(GROUPS, subject_id)) is not None:
                groups[subject_id] = (subject_id, group["name"], assignment, group_path(group["name"]))
        self._grants[app_id] = grants = (groups, direct)
        return grants

    def assignment_layers(self, app_id: str, user_id: str, reader: Reader | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(entitlement path, values) of each of the user's assignments of the app, weakest first: a later
        one wins the keys it shares with an earlier one (see assignment_values)."""
        reader = reader or self.store
        granting, assignments = {}, {}
        for group_id, name in self.groups_of(user_id, reader).items():
            assignment = reader.get(ASSIGNMENTS, assignment_key(app_id, group_subject(group_id)))
            if assignment is not None:
                granting[group_id], assignments[group_id] = name, assignment
        return self._layers(granting, assignments, reader.get(ASSIGNMENTS, assignment_key(app_id, user_subject(user_id))))

    @staticmethod
    def _layers(
        groups: dict[str, str], assignments: dict[str, dict[str, Any]], direct: dict[str, Any] | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """``groups`` (id -> name) assigning the app by ``assignments`` (group id -> its assignment), and the
        ``direct`` assignment: lower priority wins, then by group name; the direct one over them all."""
        ranked = []
        for group_id, name in groups.items():
            assignment = assignments[group_id]
            priority = assignment.get("priority")
            ranked.append((priority if priority is not None else float("inf"), name, assignment.get("values") or {}))
        layers = [(group_path(name), values) for _, name, values in sorted(ranked, reverse=True)]
        if direct is not None:
            layers.append((direct_path(), direct.get("values") or {}))
        return layers

    def subject_name(self, subject: str, reader: Reader | None = None) -> tuple[str, str]:
        """("user", login) or ("group", name) of an assignment's subject, by its current name."""
        reader = reader or self.store
        kind, _, ident = subject.partition(":")
        doc = reader.get(USERS if kind == "user" else GROUPS, ident)
        if doc is None:
            return kind, ident
        return kind, doc["login"] if kind == "user" else doc["name"]

    def pushes_of(self, group_id: str, reader: Reader | None = None) -> list[dict[str, Any]]:
        """Where a group is pushed (or being unpushed)."""
        reader = reader or self.store
        return [stored(reader, PUSHES, key) for key in reader.lookup(PUSHES, "group", group_id)]

    def desired_group(self, app_id: str, group_id: str) -> DesiredGroup:
        """The group as the app should hold it: its members' accounts there."""
        push = self.store.get(PUSHES, group_key(app_id, group_id))
        group = self.store.get(GROUPS, group_id)
        if push is None or group is None or push["state"] != "pushed":
            return DesiredGroup(False, group["name"] if group else "", frozenset(), bool(push and push.get("delete")))
        members = set()
        for user_id in self.members_of(group_id):
            account = self.store.get(ACCOUNTS, account_key(app_id, user_id))
            if account and account.get("remote_id") and account["remote_id"] != "manual":
                members.add(account["remote_id"])
        return DesiredGroup(True, group["name"], frozenset(members))

    # -- search ----------------------------------------------------------------------

    def search_users(
        self, text: str = "", *, state: str | None = None, among: set[str] | None = None, offset: int = 0, limit: int | None = 100
    ) -> tuple[int, list[dict[str, Any]]]:
        """(number of matches, one page of user docs sorted by login); ``among``: only these user ids."""
        if self.store.queried(USERS):
            return self._queried_page(text, state, among, offset, limit)
        matches = self._matching_ids(text, state, among)
        users = self.store.all(USERS)
        end = None if limit is None else offset + limit
        return len(matches), [users[uid] for uid in matches[offset:end]]

    def search_summaries(
        self,
        text: str = "",
        *,
        state: str | None = None,
        among: set[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        count_up_to: int | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """``search_users``, as user summaries (see ``user_summary``).  They are shared with the cache: read them
        only.  ``count_up_to``: as the store's search_page counts."""
        if self.store.queried(USERS):
            count, docs = self._queried_page(text, state, among, offset, limit, count_up_to)
            return count, [user_summary(doc) for doc in docs]
        matches = self._matching_ids(text, state, among)
        if self._summaries is None:
            self._summaries = {uid: user_summary(doc) for uid, doc in self.store.all(USERS).items()}
        summaries = self._summaries
        end = None if limit is None else offset + limit
        return capped(len(matches), count_up_to), [summaries[uid] for uid in matches[offset:end]]

    def _queried_page(
        self, text: str, state: str | None, among: set[str] | None, offset: int, limit: int | None, count_up_to: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """A search where the store answers it (the users read by query): the same matches, in the same order."""
        return self.store.search_page(
            USERS,
            order_by="login",
            text=text.strip().lower(),
            fields=USER_SEARCH_PATHS,
            equals=None if state is None else {"state": state},
            keys=among,
            offset=offset,
            limit=limit,
            count_up_to=count_up_to,
        )

    def _matching_ids(self, text: str, state: str | None, among: set[str] | None = None) -> list[str]:
        """Ids of the users whose login, name or email holds ``text`` (in ``state``, of ``among``), sorted by login."""
        if self._search is None:
            self._search = {uid: search_text(doc["profile"]) for uid, doc in self.store.all(USERS).items()}
        users = self.store.all(USERS)
        if self._sorted_ids is None:
            self._sorted_ids = sorted(users, key=lambda uid: users[uid]["login"])
        needle = text.strip().lower()
        if not needle and state is None and among is None:
            return self._sorted_ids
        search = self._search
        candidates = self._sorted_ids if among is None else sorted(among & users.keys(), key=lambda uid: users[uid]["login"])
        return [uid for uid in candidates if (not needle or needle in search[uid]) and (state is None or users[uid]["state"] == state)]

    def entitled_to(self, app_id: str, reader: Reader | None = None) -> set[str]:
        """Ids of the users an assignment of the app reaches (directly or through a group), whatever their state."""
        reader = reader or self.store
        users: set[str] = set()
        for key in reader.lookup(ASSIGNMENTS, "app", app_id):
            users.update(self.users_of_subject(stored(reader, ASSIGNMENTS, key)["subject"], reader))
        return users

    def population(self, users: list[dict[str, Any]], groups_read: Collection[str], reader: Reader | None = None) -> Population:
        """The users as an expression reading ``groups_read`` sees them: ``user.*`` is the profile, and
        each user's groups are those of ``groups_read`` they are in (no other group can change a result).

        For a few users each one's groups are looked up; for many, the members of each group read."""
        reader = reader or self.store
        profiles = [{"user": user["profile"]} for user in users]
        if not groups_read:
            return Population(profiles)
        if len(users) <= FEW_USERS:
            return Population(
                profiles, [{name for name in self.groups_of(user["id"], reader).values() if name in groups_read} for user in users]
            )
        names: dict[str, set[str]] = {}
        for name in groups_read:
            for group_id in reader.lookup(GROUPS, "name", name):
                for key in reader.lookup(MEMBERS, "group", group_id):
                    names.setdefault(stored(reader, MEMBERS, key)["user"], set()).add(name)
        return Population(profiles, [names.get(user["id"], ()) for user in users])

    def sourced_by(self, source: str) -> set[str]:
        """Ids of the users a source of truth masters ("provtui": those provtui itself masters)."""
        return {uid for uid, user in self.store.all(USERS).items() if user.get("source", "provtui") == source}


def mastered(reader: Reader, user: dict[str, Any]) -> dict[str, str]:
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
