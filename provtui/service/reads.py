"""The service's part for what the faces show: people, groups, apps, tasks, status, the audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from provtui.clock import parse_iso, utc_now
from provtui.domain.accounts import active_accounts
from provtui.domain.apps import Capability
from provtui.domain.errors import InvalidInput
from provtui.domain.lifecycle import State
from provtui.domain.rules import rule_via
from provtui.domain.users import user_summary
from provtui.model.audit_trail import account_key as call_key
from provtui.model.audit_trail import filter_events, newest_events
from provtui.model.directory import Directory, mastered
from provtui.model.history_index import HistoryIndex
from provtui.model.history_query import AuditQueries, newest_about
from provtui.model.schema import (
    ACCOUNTS,
    APP_HEALTH,
    APPS,
    ASSIGNMENTS,
    DIRTY,
    GROUPS,
    MEMBERS,
    PUSHED_GROUPS,
    PUSHES,
    RULES,
    SOURCES,
    TASKS,
    USERS,
    account_key,
    group_key,
    group_subject,
    stored,
)
from provtui.service.ca_bundles import shown_app
from provtui.service.change import Access, Changes
from provtui.service.part import Part
from provtui.store.chain import ChainReport, verify_chain, vouch_for
from provtui.store.tables import capped

if TYPE_CHECKING:
    from provtui.service.rules import GroupRules


class Reads(Part):
    """What the faces show: people, groups, apps, tasks, status, the audit trail."""

    def __init__(self, changes: Changes, directory: Directory, access: Access, *, rules: GroupRules):
        super().__init__(changes, directory, access)
        self.rules = rules

    def user_view(self, login: str) -> dict[str, Any]:
        """Everything known about one user, in the shape of `user show --json`."""
        self.access.read()
        d = self.directory
        user_id = d.user_id(login)
        user = stored(self.store, USERS, user_id)
        paths = d.paths(user_id)
        apps = []
        for app_id in sorted(d.apps_touching(user_id), key=lambda a: stored(self.store, APPS, a)["name"]):
            app = stored(self.store, APPS, app_id)
            via = paths.get(app_id, [])
            values: dict[str, Any] = {}
            values_via: dict[str, str] = {}  # value name -> the entitlement path whose value wins
            for path, layer in d.assignment_layers(app_id, user_id):
                values.update(layer)
                values_via.update(dict.fromkeys(layer, path))
            apps.append(
                {
                    "app": app["name"],
                    "entitled": user["state"] == State.ACTIVE and bool(via),
                    "via": via,
                    "values": values,
                    "values_via": values_via,
                    "account": self._account_view(app_id, user_id),
                }
            )
        return {
            "id": user_id,
            "login": user["login"],
            "state": user["state"],
            "source": user.get("source", "provtui"),
            "profile": user["profile"],
            "groups": sorted(d.groups_of(user_id).values()),
            "apps": apps,
            "mastered": mastered(self.store, user),
        }

    def user_history(self, login: str, limit: int = 60) -> list[dict[str, Any]]:
        """The user's audit events, newest first: about them by login (followed through renames), the
        memberships, assignments, tasks and failures that name them, and the downstream calls made for
        them or on their SCIM accounts.  Read from an index that grows with the trail, not by reading the trail."""
        self.access.read()
        user_id = self.directory.user_id(login)
        current = stored(self.store, USERS, user_id)["login"]
        accounts = []
        for key in self.store.lookup(ACCOUNTS, "user", user_id):
            account = stored(self.store, ACCOUNTS, key)
            app = self.store.get(APPS, account["app"])
            if app is not None and account.get("remote_id"):
                accounts.append((app["name"], account["remote_id"]))
        if isinstance(self.store, AuditQueries):  # the database indexes whom each event concerns
            return newest_about(self.store, current, accounts, limit)
        return self._history_index().newest([current.casefold(), *(call_key(app, rid) for app, rid in accounts)], limit)

    def prepare_history(self) -> None:
        """Read the audit trail into the user-history index now (the first history otherwise pays for it); a
        database that indexes the trail itself (PostgreSQL) needs none."""
        self.access.read()
        if not isinstance(self.store, AuditQueries):
            self._history_index().catch_up()

    def _history_index(self) -> HistoryIndex:
        return self.directory.history_index()  # the read model's: shared by every actor a server serves

    def _account_view(self, app_id: str, user_id: str) -> dict[str, Any]:
        key = account_key(app_id, user_id)
        account = self.store.get(ACCOUNTS, key) or {}
        state = account.get("state", "none")
        queued = self.store.get(DIRTY, key) is not None
        if queued and state == "none":
            state = "pending"
        return {
            "state": state,
            "remote_id": account.get("remote_id"),
            "last_error": account.get("last_error"),
            "last_sync": account.get("last_sync"),
            "attempts": account.get("attempts", 0),
            "queued": queued,
        }

    def list_users(
        self,
        search: str = "",
        *,
        state: str | None = None,
        where: str | None = None,
        group: str | None = None,
        app: str | None = None,
        source: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        count_up_to: int | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(matches, one page of summaries); ``where``: a condition in the rules' expression language;
        ``group``: its members; ``app``: the users an assignment of it reaches; ``source``: those it masters;
        ``count_up_to``: more matches than that are counted as ``count_up_to + 1`` (a console's "10,000+")."""
        self.access.read()
        among = self._users_among(group=group, app=app, source=source)
        if where is None:
            return self.directory.search_summaries(search, state=state, among=among, offset=offset, limit=limit, count_up_to=count_up_to)
        condition = self.rules.typed(where, field="--where")
        _, candidates = self.directory.search_users(search, state=state, among=among, limit=None)
        hits = condition.evaluate_all(self.directory.population(candidates, condition.groups_read))
        users = [u for u, hit in zip(candidates, hits, strict=False) if hit is True]
        end = None if limit is None else offset + limit
        return capped(len(users), count_up_to), [user_summary(u) for u in users[offset:end]]

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

    def list_groups(self) -> list[dict[str, Any]]:
        self.access.read()
        groups = sorted(self.store.all(GROUPS).values(), key=lambda g: g["name"])
        return [{**g, "members": len(self.store.lookup(MEMBERS, "group", g["id"]))} for g in groups]

    def app_assignments(self, app: str | None = None) -> list[dict[str, Any]]:
        """Every assignment (of one app, or all), by app then groups before users: the subject's kind and
        current name, its values and, for a group, its priority (lower wins; None: after those with one)."""
        self.access.read()
        docs: Iterable[dict[str, Any]]
        if app is None:
            docs = self.store.all(ASSIGNMENTS).values()
        else:
            docs = [stored(self.store, ASSIGNMENTS, k) for k in self.store.lookup(ASSIGNMENTS, "app", self.directory.app(app)["id"])]
        rows = []
        for doc in docs:
            kind, name = self.directory.subject_name(doc["subject"])
            rows.append(
                {
                    "app": stored(self.store, APPS, doc["app"])["name"],
                    "kind": kind,
                    "name": name,
                    "values": doc.get("values") or {},
                    "priority": doc.get("priority"),
                    "created": doc.get("created"),
                }
            )
        return sorted(rows, key=lambda r: (r["app"], r["kind"], r["name"]))

    def group_view(self, name: str, offset: int = 0, limit: int = 500) -> dict[str, Any]:
        """One group: what it is, one page of members (by login, with how each is in it), the apps
        assigned to it, where it is pushed (as the engine last left it), and the rules that fill it."""
        self.access.read()
        group = self.directory.group(name)
        vias: dict[str, list[str]] = {}
        for member in self.store.get_many(MEMBERS, self.store.lookup(MEMBERS, "group", group["id"])).values():
            vias.setdefault(member["user"], []).append(member["via"])
        _, users = self.store.search_page(USERS, order_by="login", keys=vias.keys(), offset=offset, limit=limit)  # one query
        page = [{**user_summary(u), "via": ", ".join(sorted(vias[u["id"]]))} for u in users]
        rules = sorted((r for r in self.store.all(RULES).values() if group["id"] in r["groups"]), key=lambda r: r["name"])
        assigned = [stored(self.store, ASSIGNMENTS, k) for k in self.store.lookup(ASSIGNMENTS, "subject", group_subject(group["id"]))]
        return {
            "name": group["name"],
            "description": group.get("description") or "",
            "kind": group.get("kind", "provtui"),
            "source": group.get("source"),
            "members": len(vias),
            "offset": offset,
            "member_page": page,
            "apps": sorted(
                (
                    {"app": stored(self.store, APPS, a["app"])["name"], "values": a.get("values") or {}, "priority": a.get("priority")}
                    for a in assigned
                ),
                key=lambda a: a["app"],
            ),
            "pushes": self._pushes(group),
            "rules": [{**view, "via": rule_via(rule["id"])} for rule, view in zip(rules, self.rules.views(rules), strict=False)],
        }

    def _pushes(self, group: dict[str, Any]) -> list[dict[str, Any]]:
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
            rows.append(
                {
                    "app": app["name"],
                    "state": state,
                    "intent": intent["state"] if intent else None,
                    "delete": bool(intent and intent.get("delete")),
                    "since": intent["since"] if intent else None,
                    "remote_id": known.get("remote_id"),
                    "last_sync": known.get("last_sync"),
                    "last_error": known.get("last_error"),
                    "queued": self.store.get(DIRTY, key) is not None,
                    "can_push": can_push,
                }
            )
        return rows

    def list_apps(self) -> list[dict[str, Any]]:
        self.access.read()
        apps = sorted(self.store.all(APPS).values(), key=lambda a: a["name"])
        return [
            {**shown_app(a), "accounts": self.store.count(ACCOUNTS, "app", a["id"]), "queued": self.store.count(DIRTY, "app", a["id"])}
            for a in apps
        ]

    def task_list(self, *, open_only: bool = False) -> list[dict[str, Any]]:
        """Manual apps' tasks with app and user names, oldest first."""
        self.access.read()
        if open_only:
            tasks = [stored(self.store, TASKS, k) for k in self.store.lookup(TASKS, "state", "open")]
        else:
            tasks = list(self.store.all(TASKS).values())
        views = []
        for task in sorted(tasks, key=lambda t: t["created"]):
            app, user = self.store.get(APPS, task["app"]), self.store.get(USERS, task["user"])
            views.append(
                {
                    "id": task["id"],
                    "app": app["name"] if app else task["app"],
                    "user": user["login"] if user else task["user"],
                    "action": task["action"],
                    "state": task["state"],
                    "created": task["created"],
                }
            )
        return views

    def pending_work(self) -> int:
        return self.store.count(DIRTY)

    def version(self) -> int:
        """Grows with every commit (ours or another process's): cheap change detection."""
        return self.store.seq

    def user_count(self) -> int:
        return self.store.count(USERS)

    def app_status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Per app: queued, in flight, failed, quarantined, last success."""
        self.access.read()
        apps = [self.directory.app(name)] if name else sorted(self.store.all(APPS).values(), key=lambda a: a["name"])
        return [self.status_of(app) for app in apps]

    def status_of(self, app: dict[str, Any]) -> dict[str, Any]:
        now = utc_now()
        dirty = [stored(self.store, DIRTY, k) for k in self.store.lookup(DIRTY, "app", app["id"])]
        in_flight = sum(1 for d in dirty if d.get("lease") and parse_iso(d["lease"]["until"]) > now)
        accounts = [stored(self.store, ACCOUNTS, k) for k in self.store.lookup(ACCOUNTS, "app", app["id"])]
        health = self.store.get(APP_HEALTH, app["id"]) or {}
        return {
            "app": app["name"],
            "kind": app["kind"],
            "queued": len(dirty) - in_flight,
            "in_flight": in_flight,
            "failed": sum(1 for a in accounts if a.get("state") == "failed"),
            "active": active_accounts(accounts),  # the one definition `report apps` counts too
            "quarantined": bool(health.get("quarantined")),
            "quarantine_reason": health.get("reason"),
            "last_success": health.get("last_success"),
            "last_failure": health.get("last_failure"),
            # 401/403: the app refused provtui's credentials; paused (accounts stay queued) until a probe gets through
            "credentials_rejected": bool(health.get("credentials_rejected")),
            "credentials_error": health.get("credentials_error") if health.get("credentials_rejected") else None,
            "credentials_status": health.get("credentials_status") if health.get("credentials_rejected") else None,
            "credentials_rejected_at": health.get("credentials_rejected_at") if health.get("credentials_rejected") else None,
            "next_probe": health.get("probe_at") if health.get("credentials_rejected") else None,
        }

    def audit(
        self,
        limit: int | None = None,
        *,
        actor: str | None = None,
        target: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        calls: bool = True,
        about: str | None = None,
    ) -> list[dict[str, Any]]:
        """The audit trail, oldest first, filtered (see provtui.model.audit_trail); ``limit``: the newest N,
        read from the trail's end; ``calls``: False leaves out downstream calls; ``about``: a thing or a
        person (the target, or a login the event names: a group's members, an assignment's subject)."""
        self.access.read()
        filters: dict[str, Any] = {"actor": actor, "target": target, "action": action, "since": since, "until": until}
        filters |= {"calls": calls, "about": about}
        if limit:
            return newest_events(self.store.audit_events_newest_first(), limit, **filters)
        return filter_events(self.store.audit_events(), **filters)

    def audit_verify(self, head: str | None = None) -> ChainReport:
        """Check the trail's hash chain, and that it ends at the store's head (a cut-off tail).

        ``head``: a head kept elsewhere (`audit head`, mailed away by a cron): the trail must still
        hold that event, so that rewriting anything up to it -- even re-chained -- is caught."""
        with self.store.reading():  # the shared lock: no compaction moves events while we read
            self.access.read()
            report = verify_chain(self.store.audit_events(), expected_head=self.store.audit_head)
        return report if head is None or not report.ok else vouch_for(report, self.store.audit_events(), head)

    def audit_head(self) -> dict[str, Any]:
        """The trail's newest hash and its length: what to keep elsewhere for `audit verify --head`."""
        with self.store.reading():
            self.access.read()
            return {"events": sum(1 for _ in self.store.audit_events_newest_first()), "head": self.store.audit_head}
