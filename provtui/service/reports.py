"""Reports: read-only views over a service's store, as flat rows (CSV columns = keys).

Built from the read model (``service.reports()`` checks
that the actor may read first).  Nothing here writes.  Each method returns a list
of dicts with the same keys in the same order; ``COLUMNS`` names them for an
empty report.

Where the issue is silent:

* apps: ``active`` counts active accounts (provtui.domain.accounts: they hold a
  seat downstream, whatever work is queued on them: an account whose deactivation
  failed, or waits on a manual task, still uses a license), as `app status` does;
  ``entitled`` counts users who should have one.
  ``utilisation`` is active / licenses in percent (None without a license count,
  or with 0 licenses); ``over_license`` is active > licenses.
* access: one row per (user, app) where the user has a path to the app or an
  account in it; ``pivot=True`` gives the user-by-app table instead: one row per
  user, one column per app, the cell the account's state ("" when the user has
  nothing to do with the app).
* pending (deprovisions): provtui.domain.accounts' pending deprovisions, the one
  list the dashboard and the Tasks screen count: open manual *deprovision* tasks,
  and active accounts whose user is not entitled any more (queued, failed, or not
  yet noticed).  Provision tasks are not deprovisions: `provtui tasks` lists those.
* stale: accounts deactivated (downstream) more than N days ago, and users
  deprovisioned more than N days ago.
* changes: the newest N audit events other than downstream.call.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from provtui.clock import parse_iso, utc_now
from provtui.domain.accounts import DEPROVISION, OPEN, active_accounts, is_active_account, pending_deprovisions
from provtui.domain.errors import InvalidInput
from provtui.domain.lifecycle import State
from provtui.domain.numbers import LIMIT, STALE_DAYS
from provtui.model.audit_trail import DOWNSTREAM_CALL
from provtui.model.schema import ACCOUNTS, APPS, ASSIGNMENTS, DIRTY, ORPHANS, TASKS, USERS, account_key, stored

if TYPE_CHECKING:
    from provtui.model.directory import Directory

DEFAULT_STALE_DAYS = 90
DEFAULT_CHANGES = 50

COLUMNS: dict[str, list[str]] = {
    "apps": ["app", "kind", "entitled", "active", "deactivated", "failed", "licenses", "over_license", "utilisation"],
    "access": ["user", "user_state", "app", "entitled", "via", "account"],
    "pending": ["kind", "app", "user", "action", "state", "since", "task", "last_error"],
    "failures": ["app", "user", "last_error", "attempts", "last_sync", "last_action"],
    "orphans": ["app", "remote_id", "userName", "email", "seen"],
    "stale": ["kind", "app", "user", "since", "days"],
    "changes": ["seq", "time", "actor", "action", "target", "before", "after", "correlation"],
}
NAMES = tuple(COLUMNS)


def _days_since(text: str | None, now: datetime) -> float | None:
    if not text:
        return None
    try:
        return (now - parse_iso(text)).total_seconds() / 86400
    except ValueError:
        return None


class Reports:
    def __init__(self, directory: Directory):
        self.store = directory.store
        self.directory = directory

    # -- helpers ---------------------------------------------------------------------

    def _apps(self, app: str | None = None) -> list[dict[str, Any]]:
        if app is not None:
            return [self.directory.app(app)]
        return sorted(self.store.all(APPS).values(), key=lambda a: a["name"])

    def _app_name(self, app_id: str) -> str:
        app = self.store.get(APPS, app_id)
        return app["name"] if app else app_id

    def _login(self, user_id: str) -> str:
        user = self.store.get(USERS, user_id)
        return user["login"] if user else user_id

    def _accounts(self, app_id: str | None = None) -> list[dict[str, Any]]:
        if app_id is None:
            return list(self.store.all(ACCOUNTS).values())
        return [stored(self.store, ACCOUNTS, k) for k in self.store.lookup(ACCOUNTS, "app", app_id)]

    def account_state(self, app_id: str, user_id: str) -> str:
        """The account's state as `user show` gives it ("pending": queued, nothing downstream yet)."""
        key = account_key(app_id, user_id)
        state: str = (self.store.get(ACCOUNTS, key) or {}).get("state", "none")
        if state == "none" and self.store.get(DIRTY, key) is not None:
            return "pending"
        return state

    def _users_of_app(self, app_id: str) -> set[str]:
        """Users with a path to the app (any state) or an account in it."""
        users: set[str] = set()
        for key in self.store.lookup(ASSIGNMENTS, "app", app_id):
            users.update(self.directory.users_of_subject(stored(self.store, ASSIGNMENTS, key)["subject"]))
        users.update(a["user"] for a in self._accounts(app_id))
        return {u for u in users if self.store.get(USERS, u) is not None or self.store.get(ACCOUNTS, account_key(app_id, u))}

    # -- the reports -----------------------------------------------------------------

    def apps(self, app: str | None = None) -> list[dict[str, Any]]:
        """Per app: users entitled, accounts active / deactivated / failed, against the app's license count."""
        rows = []
        for doc in self._apps(app):
            accounts = self._accounts(doc["id"])
            active = active_accounts(accounts)
            entitled = 0
            for user_id in self._users_of_app(doc["id"]):
                user = self.store.get(USERS, user_id)
                if user and user["state"] == State.ACTIVE and self.directory.paths(user_id).get(doc["id"]):
                    entitled += 1
            licenses = (doc.get("settings") or {}).get("licenses")
            rows.append(
                {
                    "app": doc["name"],
                    "kind": doc["kind"],
                    "entitled": entitled,
                    "active": active,
                    "deactivated": sum(1 for a in accounts if a.get("state") == "deactivated"),
                    "failed": sum(1 for a in accounts if a.get("state") == "failed"),
                    "licenses": licenses,
                    "over_license": licenses is not None and active > licenses,
                    "utilisation": round(100 * active / licenses, 1) if licenses else None,
                }
            )
        return rows

    def access(self, app: str | None = None, *, pivot: bool = False) -> list[dict[str, Any]]:
        """Who has what and why: (user, app) rows, or with ``pivot`` a user-by-app table."""
        apps = self._apps(app)
        app_ids = {a["id"] for a in apps}
        if app is not None:
            user_ids = self._users_of_app(apps[0]["id"]) if apps else set()
        else:
            user_ids = set(self.store.all(USERS))
        users = sorted((self.store.get(USERS, u) or {"id": u, "login": u, "state": "unknown"} for u in user_ids), key=lambda u: u["login"])
        rows = []
        for user in users:
            paths = self.directory.paths(user["id"])
            accounts = {stored(self.store, ACCOUNTS, k)["app"] for k in self.store.lookup(ACCOUNTS, "user", user["id"])}
            touching = (set(paths) | accounts) & app_ids
            if pivot:
                row = {"user": user["login"], "user_state": user["state"]}
                for a in apps:
                    row[a["name"]] = self.account_state(a["id"], user["id"]) if a["id"] in touching else ""
                rows.append(row)
                continue
            for a in apps:
                if a["id"] not in touching:
                    continue
                via = paths.get(a["id"], [])
                rows.append(
                    {
                        "user": user["login"],
                        "user_state": user["state"],
                        "app": a["name"],
                        "entitled": user["state"] == State.ACTIVE and bool(via),
                        "via": ";".join(via),
                        "account": self.account_state(a["id"], user["id"]),
                    }
                )
        return rows

    def access_columns(self, app: str | None = None, *, pivot: bool = False) -> list[str]:
        if not pivot:
            return COLUMNS["access"]
        return ["user", "user_state", *(a["name"] for a in self._apps(app))]

    def pending(self, app: str | None = None) -> list[dict[str, Any]]:
        """Deprovisions not done yet (provtui.domain.accounts): open manual deprovision tasks, oldest first,
        then active accounts of users not entitled, by app and user."""
        app_ids = {a["id"] for a in self._apps(app)}
        tasks = [stored(self.store, TASKS, k) for k in self.store.lookup(TASKS, "state", OPEN)]
        # tasks made in one run share a time: then by app and user, so the list reads the same each time
        tasks = sorted(
            (t for t in tasks if t["app"] in app_ids), key=lambda t: (t["created"], self._app_name(t["app"]), self._login(t["user"]))
        )
        accounts = []
        for app_id in sorted(app_ids, key=self._app_name):
            accounts += sorted(self._accounts(app_id), key=lambda a: self._login(a["user"]))
        deprovision_tasks, awaiting = pending_deprovisions(
            tasks, accounts, lambda account: self.directory.desired(account["app"], account["user"]).active
        )
        rows = [
            {
                "kind": "task",
                "app": self._app_name(task["app"]),
                "user": self._login(task["user"]),
                "action": DEPROVISION,
                "state": "task-open",
                "since": task["created"],
                "task": task["id"],
                "last_error": None,
            }
            for task in deprovision_tasks
        ]
        for account in awaiting:
            dirty = self.store.get(DIRTY, account_key(account["app"], account["user"]))
            state = "failed" if account.get("state") == "failed" else ("queued" if dirty is not None else "not queued")
            rows.append(
                {
                    "kind": "account",
                    "app": self._app_name(account["app"]),
                    "user": self._login(account["user"]),
                    "action": "deactivate",
                    "state": state,
                    "since": dirty["since"] if dirty else account.get("last_sync"),
                    "task": None,
                    "last_error": account.get("last_error"),
                }
            )
        return rows

    def failures(self, app: str | None = None) -> list[dict[str, Any]]:
        """Accounts whose last provisioning failed."""
        rows = []
        for doc in self._apps(app):
            failed = [a for a in self._accounts(doc["id"]) if a.get("state") == "failed"]
            for account in sorted(failed, key=lambda a: self._login(a["user"])):
                rows.append(
                    {
                        "app": doc["name"],
                        "user": self._login(account["user"]),
                        "last_error": account.get("last_error"),
                        "attempts": account.get("attempts", 0),
                        "last_sync": account.get("last_sync"),
                        "last_action": account.get("last_action"),
                    }
                )
        return rows

    def orphans(self, app: str | None = None) -> list[dict[str, Any]]:
        """Accounts an app import found downstream that match no user here."""
        wanted = None if app is None else {self.directory.app(app)["id"], app}
        rows = []
        for doc in self.store.all(ORPHANS).values():
            if wanted is not None and doc.get("app") not in wanted:
                continue
            rows.append(
                {
                    "app": self._app_name(doc.get("app", "")),
                    "remote_id": doc.get("remote_id"),
                    "userName": doc.get("userName"),
                    "email": doc.get("email"),
                    "seen": doc.get("seen"),
                }
            )
        return sorted(rows, key=lambda r: (r["app"], str(r["userName"] or ""), str(r["remote_id"] or "")))

    def stale(self, days: int = DEFAULT_STALE_DAYS, app: str | None = None, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Accounts deactivated, and users deprovisioned, more than ``days`` days ago (oldest first)."""
        STALE_DAYS.check("--days", days)
        now = now or utc_now()
        rows = []
        for doc in self._apps(app):
            for account in self._accounts(doc["id"]):
                if is_active_account(account) or not account.get("deactivated_at"):
                    continue
                age = _days_since(account["deactivated_at"], now)
                if age is not None and age > days:
                    rows.append(
                        {
                            "kind": "account",
                            "app": doc["name"],
                            "user": self._login(account["user"]),
                            "since": account["deactivated_at"],
                            "days": int(age),
                        }
                    )
        if app is None:
            for user in self.store.all(USERS).values():
                if user["state"] != State.DEPROVISIONED:
                    continue
                age = _days_since(user.get("state_changed"), now)
                if age is not None and age > days:
                    rows.append({"kind": "user", "app": None, "user": user["login"], "since": user["state_changed"], "days": int(age)})
        return sorted(rows, key=lambda r: (r["since"], r["kind"], r["app"] or "", r["user"]))

    def changes(self, limit: int | None = DEFAULT_CHANGES) -> list[dict[str, Any]]:
        """The newest ``limit`` audit events that are not downstream calls, oldest first."""
        events = [e for e in self.store.audit_events() if e.get("action") != DOWNSTREAM_CALL]
        if limit is not None:
            events = events[-limit:] if limit > 0 else []
        return [{c: e.get(c) for c in COLUMNS["changes"]} for e in events]

    def run(
        self, name: str, *, app: str | None = None, days: int | None = None, limit: int | None = None, pivot: bool = False
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """One report by name, with its columns: what the CLI and the console call."""
        if name not in COLUMNS:
            raise InvalidInput("REPORT", f"no report {name!r} (reports: {', '.join(NAMES)})")
        if limit is not None:
            LIMIT.check("--limit", limit)
        columns: list[str] = COLUMNS[name]
        rows: list[dict[str, Any]]
        if name == "access":
            rows, columns = self.access(app, pivot=pivot), self.access_columns(app, pivot=pivot)
        elif name == "stale":
            rows = self.stale(DEFAULT_STALE_DAYS if days is None else days, app)
        elif name == "changes":
            rows = self.changes(DEFAULT_CHANGES if limit is None else limit)
        else:
            rows = getattr(self, name)(app)
        if limit is not None and name != "changes":
            rows = rows[:limit]
        return rows, columns
