"""What each screen reads, composed from the Service's public methods.

Each function here runs in a worker thread through ``App.call_service`` (one
locked call, so what a screen shows is one consistent moment), and returns plain
data the screen renders.  Screens never touch the store.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from provtui.domain.accounts import PROVISION, is_open_task
from provtui.domain.errors import NotFound
from provtui.domain.lifecycle import TRANSITIONS, State
from provtui.domain.roles import Action, Scope

if TYPE_CHECKING:
    from provtui.service import Service

USER_STATES = ("active", "staged", "suspended", "deprovisioned")
HISTORY = 60  # events of a user's history shown
MEMBER_PAGE = 500  # members of a group shown at once


# -- helpers ---------------------------------------------------------------------------


def _ids(rows: list[dict]) -> dict[str, str]:
    return {row["name"]: row["id"] for row in rows}


def _may_manage_apps(service: Service) -> list[str]:
    """The names of the apps the actor may manage (retry, complete tasks), sorted."""
    return sorted(a for a, i in _ids(service.list_apps()).items() if service.may(Action.MANAGE_APP, Scope(apps=frozenset({i}))))


def held_changes(service: Service) -> list[dict]:
    """Changes a safeguard holds until an admin approves or rejects them."""
    return [h for h in service.rules().held() if h.get("state") == "held"]


def rules(service: Service) -> list[dict]:
    return service.rules().list()


def provision_tasks(service: Service) -> list[dict]:
    """Manual apps' open provision tasks, oldest first; tasks made in one run share a time: then by app and
    user, so the list reads the same each time.  (Open deprovision tasks are pending deprovisions.)"""
    tasks = [t for t in service.task_list(open_only=True) if is_open_task(t, PROVISION)]
    return sorted(tasks, key=lambda t: (t["created"], t["app"], t["user"]))


def pending_deprovisions(service: Service) -> list[dict]:
    """Deprovisions not done yet, as `report pending` lists them (the service's one definition): open manual
    deprovision tasks (``kind`` "task") and active accounts of people no longer entitled ("account")."""
    return service.reports().run("pending")[0]


def group_apps(assignments: list[dict]) -> dict[str, list[dict]]:
    """Group name -> the apps assigned to it ({"app", "values", "priority"}), by app, of service.app_assignments()."""
    result: dict[str, list[dict]] = defaultdict(list)
    for assignment in assignments:
        if assignment["kind"] == "group":
            result[assignment["name"]].append({k: assignment[k] for k in ("app", "values", "priority")})
    return result


def assignment_text(assignment: dict) -> str:
    """An assignment's values and priority as one short line: ``role=admin, tier=2 · priority 1``."""
    values, priority = assignment.get("values") or {}, assignment.get("priority")
    parts = [", ".join(f"{k}={v}" for k, v in sorted(values.items()))] if values else []
    if priority is not None:
        parts.append(f"priority {priority}")
    return " · ".join(parts)


# -- dashboard -------------------------------------------------------------------------


def dashboard(service: Service) -> dict:
    states = {state: service.list_users("", state=state, limit=0)[0] for state in USER_STATES}
    apps = apps_page(service)["apps"]
    return {
        "total": service.user_count(),
        "states": states,
        "apps": apps,
        "queued": sum(a["queued"] for a in apps),
        "in_flight": sum(a["in_flight"] for a in apps),
        "failed": sum(a["failed"] for a in apps),
        "quarantined": [a["app"] for a in apps if a["quarantined"]],
        "credentials_rejected": [a["app"] for a in apps if a.get("credentials_rejected")],
        "provision_tasks": len(provision_tasks(service)),
        "pending_deprovisions": len(pending_deprovisions(service)),
        "held": len(held_changes(service)),
        "live_sources": [
            {"name": s["name"], "state": s.get("live_state"), "lag_ms": s.get("live_lag_ms")}
            for s in service.list_sources()
            if s.get("live")
        ],
    }


def health(status: dict) -> str:
    if status.get("credentials_rejected"):  # paused until a probe finds the credentials work again
        return "rejected"
    if status["quarantined"]:
        return "quarantined"
    if status["failed"]:
        return "failing"
    if status["queued"] or status["in_flight"]:
        return "syncing"
    return "ok" if status.get("last_success") or not status.get("last_failure") else "failing"


# -- users -----------------------------------------------------------------------------


def user_history(service: Service, login: str, limit: int = HISTORY) -> list[dict]:
    """The user's events, newest first; one commit's events (the engine's batch of results) in a fixed order."""
    return sorted(service.user_history(login, limit=limit), key=lambda e: (-e.get("seq", 0), str(e.get("action")), str(e.get("target"))))


def user_page(service: Service, login: str) -> dict:
    """user_view, the user's history, the groups and apps to offer, and what the actor may do."""
    view = service.user_view(login)
    groups = service.list_groups()
    apps = service.list_apps()
    app_ids = _ids(apps)
    may_membership = {
        g["name"]
        for g in groups
        if g.get("kind", "provtui") == "provtui" and service.may(Action.GROUP_MEMBERSHIP, Scope(groups=frozenset({g["id"]})))
    }
    may_assign = {a["name"] for a in apps if service.may(Action.ASSIGN_APP, Scope(apps=frozenset({a["id"]})))}
    direct = {a["app"] for a in view["apps"] if "direct" in a["via"]}
    assignments = service.app_assignments()
    return {
        "view": view,
        "history": user_history(service, view["login"]),
        "groups": [g["name"] for g in groups],
        "group_kinds": {g["name"]: g.get("kind", "provtui") for g in groups},
        "group_sizes": {g["name"]: g.get("members", 0) for g in groups},
        "group_apps": {name: [a["app"] for a in assigned] for name, assigned in group_apps(assignments).items()},
        "apps": [a["name"] for a in apps],
        "direct": sorted(direct),
        "direct_values": {a["app"]: a["values"] for a in assignments if a["kind"] == "user" and a["name"] == view["login"]},
        "may": {
            "suspend": service.may(Action.SUSPEND),
            "manage": service.may(Action.MANAGE_USERS),
            "membership": sorted(may_membership),
            "assign": sorted(may_assign),
            "retry": service.may(Action.MANAGE_APP, Scope(apps=frozenset(app_ids.values()))),
        },
    }


def lifecycle_actions(state: str) -> list[str]:
    return [a for a, (sources, _) in TRANSITIONS.items() if State(state) in sources]


# -- groups ----------------------------------------------------------------------------


def groups_page(service: Service) -> dict:
    assigned = group_apps(service.app_assignments())
    all_rules = rules(service)
    rows = []
    for group in service.list_groups():
        ruled = [r["name"] for r in all_rules if group["name"] in r.get("groups", ())]
        rows.append(
            {
                "name": group["name"],
                "kind": group.get("kind", "provtui"),
                "description": group.get("description") or "",
                "members": group["members"],
                "apps": ", ".join(a["app"] for a in assigned.get(group["name"], [])),
                "rules": ", ".join(ruled),
            }
        )
    return {"groups": rows, "may_create": service.may(Action.MANAGE_GROUPS)}


def group_page(service: Service, name: str, offset: int = 0) -> dict:
    """service.group_view (one page of members), the apps to offer, and what the actor may change."""
    view = service.group_view(name, offset=offset, limit=MEMBER_PAGE)
    groups = {g["name"]: g for g in service.list_groups()}
    apps = service.list_apps()
    scope = Scope(groups=frozenset({groups[view["name"]]["id"]}))
    return {
        **view,
        "all_apps": [a["name"] for a in apps],
        "may": {
            # an app's or a source's group is kept as the app or source has it: no change by hand
            "membership": view["kind"] == "provtui" and service.may(Action.GROUP_MEMBERSHIP, scope),
            "assign": sorted(
                a["name"]
                for a in apps
                if service.may(Action.ASSIGN_APP, Scope(apps=frozenset({a["id"]}), groups=scope.groups, app_assigned_elsewhere=True))
            ),
            "push": sorted(a["name"] for a in apps if service.may(Action.MANAGE_APP, Scope(apps=frozenset({a["id"]})))),
        },
    }


# -- apps ------------------------------------------------------------------------------


def apps_page(service: Service) -> dict:
    accounts = {a["name"]: a for a in service.list_apps()}
    rows = []
    for status in service.app_status():
        app = accounts[status["app"]]
        row = {**status, "accounts": app["accounts"], "health": health(status)}
        if status.get("credentials_rejected") and not status["quarantined"]:  # the "why" column: the server's word
            row["quarantine_reason"] = f"credentials rejected: {status['credentials_error']}"
        rows.append(row)
    return {"apps": rows}


def app_page(service: Service, name: str) -> dict:
    app = next((a for a in service.list_apps() if a["name"] == name), None)
    if app is None:
        raise NotFound("app", name)
    status = service.app_status(name)[0]
    report, _ = service.reports().run("apps", app=name)
    scope = Scope(apps=frozenset({app["id"]}))
    return {
        "app": {k: app.get(k) for k in ("name", "kind", "scim_url", "token_env", "notify", "capabilities", "settings", "created")},
        "ldap": ldap_settings(app),
        "status": {**status, "health": health(status)},
        "usage": report[0] if report else {},
        "assignments": service.app_assignments(name),
        "mapping": service.mappings(name) if app["kind"] != "manual" else [],
        "may": {"manage": service.may(Action.MANAGE_APP, scope), "assign": service.may(Action.ASSIGN_APP, scope)},
    }


LDAP_SHOWN = ("uri", "base_dn", "flavor", "rdn_attr", "disable_method", "groups_dn", "tls", "bind_dn", "password_env")


def ldap_settings(app: dict) -> dict[str, Any] | None:
    """An LDAP app's connection as the console shows it: where, how entries are named and disabled, and the
    variable that holds the bind password (never the password: the store does not have it)."""
    target = app.get("ldap")
    return None if target is None else {k: target[k] for k in LDAP_SHOWN if target.get(k) is not None}


# -- activity and tasks ----------------------------------------------------------------


def activity_page(service: Service) -> dict:
    failures, _ = service.reports().run("failures")
    apps = [{**s, "health": health(s)} for s in service.app_status()]
    return {"apps": apps, "failures": failures, "queued": service.pending_work(), "may_retry": _may_manage_apps(service)}


def tasks_page(service: Service) -> dict:
    """Open provision tasks, and every pending deprovision (its manual tasks among them), apart."""
    may_complete = _may_manage_apps(service)
    held = held_changes(service)
    return {
        "provision": provision_tasks(service),
        "pending": pending_deprovisions(service),
        "may_complete": may_complete,
        "held": held,
        "may_approve": service.may(Action.APPROVE),
    }


# -- moving a user between groups ------------------------------------------------------------
