"""An app's existing accounts (linked to users) and its groups (as app groups)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from provtui.clock import utc_now_iso
from provtui.domain.apps import AppKind
from provtui.domain.errors import HeldForConfirmation, InvalidInput, SourceFailed
from provtui.domain.lifecycle import State
from provtui.domain.roles import Action, Scope
from provtui.domain.users import normalise_login
from provtui.model.outbox import queue
from provtui.model.schema import ACCOUNTS, GROUPS, ORPHANS, PUSHED_GROUPS, PUSHES, USERS, Reader, account_key, group_key, stored
from provtui.service.imports.groups import GroupImports, GroupOp, group_counts, source_members

if TYPE_CHECKING:
    from provtui.connectors.base import Connector, RemoteGroup, RemoteUser

MATCH_RULES = ("userName", "email", "externalId")
APP_PAGE_SIZE = 200

T = TypeVar("T")


def remote_email(attributes: dict[str, Any]) -> str | None:
    """A remote account's email: the work one, else the first other typed one."""
    work = attributes.get('emails[type eq "work"].value')
    if isinstance(work, str) and work.strip():
        return work.strip()
    for key, value in attributes.items():
        if key.startswith("emails[") and key.endswith("].value") and isinstance(value, str) and value.strip():
            return value.strip()
    return None


@dataclass
class Link:
    remote: RemoteUser
    user_id: str
    login: str
    entitled: bool
    entry: dict[str, Any]


@dataclass
class LinkPlan:
    linked: list[Link] = field(default_factory=list)
    already_linked: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)

    def result(self, app: str, match: str) -> dict[str, Any]:
        """Counts and the accounts of each kind (the CLI's JSON)."""
        linked = [{**link.entry, "login": link.login, "entitled": link.entitled} for link in self.linked]

        def by_name(e: dict[str, Any]) -> tuple[str, str]:
            return (str(e.get("userName") or ""), e["remote_id"])

        return {
            "app": app,
            "match": match,
            "accounts": len(self.linked) + len(self.already_linked) + len(self.conflicts) + len(self.orphans),
            "linked": len(self.linked),
            "already_linked": len(self.already_linked),
            "conflicts": len(self.conflicts),
            "orphans": len(self.orphans),
            "not_entitled": sorted(link.login for link in self.linked if not link.entitled),
            "details": {
                "linked": sorted(linked, key=by_name),
                "conflicts": sorted(self.conflicts, key=by_name),
                "orphans": sorted(self.orphans, key=by_name),
                "already_linked": sorted(self.already_linked, key=by_name),
            },
        }


class AppImports(GroupImports):
    def import_app_groups(self, app_name: str, *, dry_run: bool = False, groups: list[RemoteGroup] | None = None) -> dict[str, Any]:
        """An app's own groups, as app groups (kind ``app:<APP>``): kept apart from provtui's groups,
        their membership exactly the app's for the accounts provtui has linked; rules can read them
        (isMemberOfGroupName), so their members can be placed in provtui groups and inherit their apps."""
        self.access.authorise(None, Action.MANAGE_SOURCES)
        app = self.directory.app(app_name)
        if app["kind"] not in (AppKind.SCIM, AppKind.LDAP):
            raise InvalidInput("APP", f"{app_name} is a {app['kind']} app: app groups are read from SCIM and LDAP apps")
        if groups is None:
            groups = asyncio.run(self.read_app_groups(app))
        via = f"app:{app['name']}"
        accounts = (stored(self.store, ACCOUNTS, k) for k in self.store.lookup(ACCOUNTS, "app", app["id"]))
        owners = {a["remote_id"]: a["user"] for a in accounts if a.get("remote_id")}
        with self.store.transaction() as locked:  # the lock: plan against the state we will change
            tx = self.changes.within(locked)
            ops = self._plan_app_groups(tx, app, via, groups, owners)
            if not dry_run:
                counts = self._apply_groups(tx, app["name"], ops, via=via)
                tx.audit("import.app-groups", app["name"], None, counts)
                self.changes.settle(tx)
        result = {"app": app["name"], **group_counts(ops)}
        if dry_run:
            result.update(dry_run=True, groups=[op.as_dict() for op in ops])
        return result

    async def read_app_groups(self, app: dict[str, Any]) -> list[RemoteGroup]:
        from provtui.connectors.base import DownstreamError

        async def read(connector: Connector) -> list[RemoteGroup]:
            return [group async for group in connector.list_groups()]

        try:
            return await self._read_app(app, read)
        except DownstreamError as error:
            raise SourceFailed(f"reading {app['name']}'s groups failed: {error.message}", retryable=error.retryable) from None

    async def _read_app(self, app: dict[str, Any], read: Callable[[Connector], Awaitable[T]]) -> T:
        """``await read(connector)`` with a connector of ``app`` made for this read alone (no engine run);
        its calls are audited in one commit, as the engine's are."""
        from provtui.connectors.config import connector_for
        from provtui.engine.calls import CallLog

        calls = CallLog(run_by=self.access.actor)
        connector = None
        try:
            connector = connector_for(app, on_call=calls.hook(app["name"]), secrets=self.secrets)
            return await read(connector)
        finally:
            calls.write(self.store)  # type: ignore[arg-type]  # CallLog.write names the journal Store; it needs only transaction()
            if connector is not None:
                await connector.aclose()

    def _plan_app_groups(
        self, reader: Reader, app: dict[str, Any], via: str, groups: list[RemoteGroup], owners: dict[str, str]
    ) -> list[GroupOp]:
        existing = {(g.get("source_ref") or {}).get("id"): g for g in self.store.all(GROUPS).values() if g.get("kind") == via}
        pushed = {
            d["remote_id"]
            for d in (stored(self.store, PUSHED_GROUPS, k) for k in self.store.lookup(PUSHED_GROUPS, "app", app["id"]))
            if d.get("remote_id")
        }
        ops: list[GroupOp] = []
        claimed: set[str] = set()
        seen: set[str] = set()
        for group in groups:
            if group.id in seen or group.id in pushed or (group.external_id and reader.get(GROUPS, group.external_id)):
                continue  # a group provtui pushed there itself is not an app group
            seen.add(group.id)
            current = existing.get(group.id)
            name = self._group_name(reader, group.display_name, app["name"], current["id"] if current else None, claimed)
            if name is None:
                ops.append(GroupOp("skipped", group.id, group.display_name, reason=f"no free name for {group.display_name!r}"))
                continue
            claimed.add(name.lower())
            logins: dict[str, str] = {}
            for m in group.members:
                owner = reader.get(USERS, owners[m]) if m in owners else None
                if owner:
                    logins[owner["login"]] = owners[m]
            have = source_members(reader, current["id"], via) if current else {}
            op = GroupOp(
                "create" if current is None else "update",
                group.id,
                name,
                group_id=current["id"] if current else None,
                ref={"id": group.id},
                add=sorted(set(logins) - set(have)),
                remove=sorted(set(have) - set(logins)),
            )
            if current is not None:
                op.rename = current["name"] if current["name"] != name else None
                op.changed = op.rename is not None or bool(current.get("removed_from_source"))
                if not (op.changed or op.add or op.remove):
                    op.action = "unchanged"
            op.user_ids = {**{login: logins[login] for login in op.add}, **{login: have[login] for login in op.remove}}
            ops.append(op)
        for remote_id, stale in existing.items():
            if remote_id not in seen and not stale.get("removed_from_source"):
                have = source_members(reader, stale["id"], via)
                op = GroupOp("removed", remote_id or "", stale["name"], group_id=stale["id"], remove=sorted(have))
                op.user_ids = dict(have)
                ops.append(op)
        return ops

    def import_app(
        self,
        app_name: str,
        *,
        match: str = "userName",
        dry_run: bool = False,
        confirm: bool = False,
        accounts: list[RemoteUser] | None = None,
    ) -> dict[str, Any]:
        """Link an app's existing accounts to users (see the module docstring).

        ``accounts``: the app's accounts when the caller read them already (``await
        read_app_accounts(app)``, e.g. from the console's event loop); None reads them here.
        """
        if match not in MATCH_RULES:
            raise InvalidInput("--match", f"{match!r} is not a match rule (one of {', '.join(MATCH_RULES)})")
        self.access.read()
        app = self.directory.app(app_name)
        scope = Scope(apps=frozenset({app["id"]}))
        self.access.authorise(None, Action.MANAGE_APP, scope)
        if app["kind"] != AppKind.SCIM:
            raise InvalidInput("APP", f"{app['name']} is not a SCIM app ({app['kind']}): app import reads accounts over SCIM")
        if accounts is None:
            accounts = asyncio.run(self.read_app_accounts(app))
        plan = self._plan_links(self.store, app, accounts, match)
        result = plan.result(app["name"], match)
        if dry_run:
            return {**result, "dry_run": True}
        if plan.linked and not confirm:
            not_entitled = len(result["not_entitled"])
            raise HeldForConfirmation(
                f"held: this import would link {len(plan.linked)} accounts of {app['name']} to users"
                + (f" ({not_entitled} of them not entitled to it: the next sync deactivates those)" if not_entitled else "")
                + "; run it again with --confirm to link them",
                result,
            )
        now = utc_now_iso()
        with self.changes() as tx:
            tx.authorise(Action.MANAGE_APP, scope)
            plan = self._plan_links(tx, app, accounts, match)  # under the lock: links made meanwhile are respected
            if plan.linked:  # linking is held for --confirm, which needs the role `held approve` needs
                tx.authorise(Action.CONFIRM)
            for link in plan.linked:
                key = account_key(app["id"], link.user_id)
                old = tx.get(ACCOUNTS, key) or {"app": app["id"], "user": link.user_id}
                remote = link.remote
                tx.put(
                    ACCOUNTS,
                    key,
                    {
                        **old,
                        "remote_id": remote.id,
                        "active": remote.active,
                        "attributes": dict(remote.attributes),
                        "state": "active" if remote.active else "deactivated",
                        "deactivated_at": None if remote.active else now,
                        "last_error": None,
                        "attempts": 0,
                        "last_sync": now,
                        "last_action": "link",
                        "linked": True,
                        "task": None,
                        "correlation": tx.correlation,
                    },
                )
                tx.audit(
                    "account.link", link.login, None, {"app": app["name"], "remote_id": remote.id, "match": match, "active": remote.active}
                )
                tx.mark_dirty([(app["id"], link.user_id)])
                for group_id in self.directory.groups_of(link.user_id, tx):  # its pushed groups gain the account
                    if (tx.get(PUSHES, group_key(app["id"], group_id)) or {}).get("state") == "pushed":
                        queue(tx, group_key(app["id"], group_id), {"app": app["id"], "group": group_id})
            previous = {k: d for k, d in self.store.all(ORPHANS).items() if d.get("app") == app["id"]}
            current = {}
            for orphan in plan.orphans:
                key = f"{app['id']}|{orphan['remote_id']}"
                first = (previous.get(key) or {}).get("first_seen") or (previous.get(key) or {}).get("seen") or now
                current[key] = {
                    "app": app["id"],
                    "remote_id": orphan["remote_id"],
                    "userName": orphan["userName"],
                    "email": orphan["email"],
                    "seen": now,
                    "first_seen": first,
                }
            for key in previous.keys() - current.keys():
                tx.delete(ORPHANS, key)
            for key, doc in current.items():
                tx.put(ORPHANS, key, doc)
            result = plan.result(app["name"], match)
            tx.audit(
                "app.import",
                app["name"],
                None,
                {k: result[k] for k in ("match", "accounts", "linked", "already_linked", "conflicts", "orphans")},
            )
        return result

    async def read_app_accounts(self, app: dict[str, Any]) -> list[RemoteUser]:
        """Every account of a SCIM app (GET /Users, paged), its calls audited."""
        from provtui.connectors.base import AccountListing, DownstreamError
        from provtui.connectors.config import ConfigError

        async def read(connector: Connector) -> list[RemoteUser]:
            listing = cast(AccountListing, connector)  # a SCIM app's (import_app reads only those)
            return [account async for account in listing.list_users(page_size=APP_PAGE_SIZE)]

        try:
            return await self._read_app(app, read)
        except ConfigError as error:
            raise SourceFailed(f"app {app['name']}: {error.message}", retryable=False) from None
        except DownstreamError as error:
            status = f" (HTTP {error.status})" if error.status else ""
            raise SourceFailed(
                f"could not read the accounts of {app['name']}{status}: {error.message}", retryable=error.retryable
            ) from None

    def _plan_links(self, reader: Reader, app: dict[str, Any], accounts: list[RemoteUser], match: str) -> LinkPlan:
        users = self.store.all(USERS)
        linked_by_remote: dict[str, str] = {}  # remote id -> user id, of this app's accounts
        remote_of_user: dict[str, str] = {}
        for key in reader.lookup(ACCOUNTS, "app", app["id"]):
            account = reader.get(ACCOUNTS, key)
            if account and account.get("remote_id") and account["remote_id"] != "manual":
                linked_by_remote[account["remote_id"]] = account["user"]
                remote_of_user[account["user"]] = account["remote_id"]
        by_email: dict[str, list[str]] = {}
        if match == "email":
            for user_id, user in users.items():
                email = (user.get("profile") or {}).get("email")
                if email:
                    by_email.setdefault(str(email).lower(), []).append(user_id)
        plan = LinkPlan()
        candidates: dict[str, list[tuple[RemoteUser, dict[str, Any]]]] = {}  # user id -> accounts matching them
        for remote in accounts:
            user_name = remote.attributes.get("userName")
            email = remote_email(remote.attributes)
            entry = {"remote_id": remote.id, "userName": user_name, "email": email, "active": remote.active}
            if remote.id in linked_by_remote:
                owner = users.get(linked_by_remote[remote.id])
                plan.already_linked.append({**entry, "login": owner["login"] if owner else linked_by_remote[remote.id]})
                continue
            found: list[str] = []
            if match == "userName" and isinstance(user_name, str) and user_name.strip():
                found = list(reader.lookup(USERS, "login", normalise_login(user_name)))
            elif match == "email" and email:
                found = by_email.get(email.lower(), [])
            elif match == "externalId":
                external = remote.attributes.get("externalId")
                if isinstance(external, str) and external in users:
                    found = [external]
            if not found:
                plan.orphans.append(entry)
            elif len(found) > 1:
                logins = sorted(users[u]["login"] for u in found)
                plan.conflicts.append({**entry, "login": None, "reason": f"matches {len(found)} users: {', '.join(logins)}"})
            else:
                candidates.setdefault(found[0], []).append((remote, entry))
        directory = self.directory
        for user_id, matched in candidates.items():
            login = users[user_id]["login"]
            if len(matched) > 1:
                others = ", ".join(sorted(r.id for r, _ in matched))
                for _, entry in matched:
                    plan.conflicts.append({**entry, "login": login, "reason": f"{len(matched)} accounts match {login}: {others}"})
                continue
            remote, entry = matched[0]
            if user_id in remote_of_user:
                plan.conflicts.append(
                    {**entry, "login": login, "reason": f"{login} is linked to another account ({remote_of_user[user_id]})"}
                )
                continue
            user = users[user_id]
            entitled = user["state"] == State.ACTIVE and bool(directory.paths(user_id, reader).get(app["id"]))
            plan.linked.append(Link(remote, user_id, login, entitled, entry))
        return plan
