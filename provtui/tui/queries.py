"""What each screen reads, composed from the Service's public methods.

Each function here runs in a worker thread through ``App.call_service`` (one
locked call, so what a screen shows is one consistent moment), and returns plain
data the screen renders.  Screens never touch the store.

Where the service has no method yet for what a screen needs (a group's apps and
pushes, an app's assignments, a user's whole history), the answer is composed
from public calls -- the audit trail replayed, a membership condition -- and
the service's own method is used instead as soon as it exists (``group_view``,
``app_assignments``, ``user_history``).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import Any

from provtui.audit_trail import DOWNSTREAM_CALL, target_matches
from provtui.domain.errors import InvalidInput, NotFound, ProvtuiError
from provtui.domain.lifecycle import TRANSITIONS, State
from provtui.domain.roles import Action, Scope
from provtui.service import Service

USER_STATES = ("active", "staged", "suspended", "deprovisioned")
HISTORY = 60  # events of a user's history shown
MEMBER_PAGE = 500  # members of a group shown at once
RECENT_EVENTS = 5_000  # the newest events searched for a user's group and downstream history


# -- helpers ---------------------------------------------------------------------------


def _rules_api(service: Service, method: str):
    """``service.rules().<method>`` if this service has group rules (they are being built), else None."""
    if not hasattr(service, "rules"):
        return None
    return getattr(service.rules(), method, None)


def _ids(rows: list[dict]) -> dict[str, str]:
    return {row["name"]: row["id"] for row in rows}


def held_changes(service: Service) -> list[dict] | None:
    """Changes a safeguard holds (None: this store's service has no safeguard yet)."""
    held = _rules_api(service, "held")
    return None if held is None else [h for h in held() if h.get("state") == "held"]


def rules(service: Service) -> list[dict] | None:
    listing = _rules_api(service, "list")
    return None if listing is None else listing()


# -- dashboard -------------------------------------------------------------------------


def dashboard(service: Service) -> dict:
    states = {state: service.list_users("", state=state, limit=0)[0] for state in USER_STATES}
    accounts = {a["name"]: a["accounts"] for a in service.list_apps()}
    apps = []
    for status in service.app_status():
        apps.append({**status, "accounts": accounts.get(status["app"], 0),
                     "health": health(status)})
    pending, _ = service.reports().run("pending")
    held = held_changes(service)
    return {
        "total": service.user_count(), "states": states, "apps": apps,
        "queued": sum(a["queued"] for a in apps), "in_flight": sum(a["in_flight"] for a in apps),
        "failed": sum(a["failed"] for a in apps), "quarantined": [a["app"] for a in apps if a["quarantined"]],
        "open_tasks": len(service.task_list(open_only=True)), "pending_deprovisions": len(pending),
        "held": None if held is None else len(held),
    }


def health(status: dict) -> str:
    if status["quarantined"]:
        return "quarantined"
    if status["failed"]:
        return "failing"
    if status["queued"] or status["in_flight"]:
        return "syncing"
    return "ok" if status.get("last_success") or not status.get("last_failure") else "failing"


# -- users -----------------------------------------------------------------------------


def _mentions(event: dict, login: str) -> bool:
    """Whether an event not targeted at the user is about them (a membership, an account, a task)."""
    for side in (event.get("before"), event.get("after")):
        if isinstance(side, dict) and (side.get("user") == login or login in (side.get("users") or ())):
            return True
    return False


_trails: weakref.WeakKeyDictionary[Service, tuple[int, list[dict]]] = weakref.WeakKeyDictionary()


def _trail(service: Service) -> list[dict]:
    """The whole audit trail, oldest first, read once per store version (each read parses the trail's file)."""
    version = service.version()
    cached = _trails.get(service)
    if cached is None or cached[0] != version:
        cached = _trails[service] = (version, service.audit(None))
    return cached[1]


def user_history(service: Service, login: str, limit: int = HISTORY) -> list[dict]:
    """The user's events, newest first: about them by name, and the memberships and accounts that name them."""
    if hasattr(service, "user_history"):
        return service.user_history(login, limit=limit)
    trail = _trail(service)
    found = []
    scanned = 0  # events other than downstream calls looked at: memberships are searched among the newest
    for event in reversed(trail):
        if event.get("action") == DOWNSTREAM_CALL:
            continue
        scanned += 1
        if target_matches(login, event.get("target")) or (scanned <= RECENT_EVENTS and _mentions(event, login)):
            found.append(event)
            if len(found) == limit:
                break
    return found


def user_page(service: Service, login: str) -> dict:
    """user_view, the user's history, the groups and apps to offer, and what the actor may do."""
    view = service.user_view(login)
    groups = service.list_groups()
    apps = service.list_apps()
    group_ids, app_ids = _ids(groups), _ids(apps)
    may_membership = {g["name"] for g in groups if service.may(Action.GROUP_MEMBERSHIP, Scope(groups=frozenset({g["id"]})))}
    may_assign = {a["name"] for a in apps if service.may(Action.ASSIGN_APP, Scope(apps=frozenset({a["id"]})))}
    direct = {a["app"] for a in view["apps"] if "direct" in a["via"]}
    return {
        "view": view,
        # newest commit first; one commit's events (the engine's batch of results) in a fixed order
        "history": sorted(user_history(service, view["login"]),
                          key=lambda e: (-e.get("seq", 0), str(e.get("action")), str(e.get("target")))),
        "groups": [g["name"] for g in groups],
        "group_apps": _group_apps(service, group_ids),
        "apps": [a["name"] for a in apps],
        "direct": sorted(direct),
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


# -- assignments and pushes, from the audit trail until the service answers them ------------


_replayed: weakref.WeakKeyDictionary[Service, tuple[int, dict, dict]] = weakref.WeakKeyDictionary()


def _replay(service: Service) -> tuple[dict[str, set[str]], dict[str, dict[str, dict]]]:
    """(app -> subjects assigned, group -> app -> latest push), from one pass over the audit trail.

    Subjects are "group:<name>" and "user:<login>", following renames.  Cached per store version.
    """
    version = service.version()
    cached = _replayed.get(service)
    if cached is not None and cached[0] == version:
        return cached[1], cached[2]
    assigned: dict[str, set[str]] = defaultdict(set)
    pushed: dict[str, dict[str, dict]] = defaultdict(dict)
    for event in _trail(service):
        action = event.get("action")
        if action not in REPLAYED:
            continue
        after, before, target = event.get("after") or {}, event.get("before") or {}, event.get("target")
        if action == "app.assign":
            assigned[target].add(after.get("subject"))
        elif action == "app.unassign":
            assigned[target].discard(after.get("subject"))
        elif action == "group.push":
            pushed[target][after.get("app")] = {"state": "pushed", "delete": False, "time": event.get("time")}
        elif action == "group.unpush":
            pushed[target][after.get("app")] = {"state": "unpushed", "delete": bool(after.get("delete")),
                                                "time": event.get("time")}
        elif action == "group.rename":
            _rename(assigned, f"group:{before.get('name')}", f"group:{after.get('name')}")
            if before.get("name") in pushed:
                pushed[after.get("name")] = pushed.pop(before.get("name"))
        elif action == "user.update" and "login" in after:
            _rename(assigned, f"user:{before.get('login')}", f"user:{after.get('login')}")
    _replayed[service] = (version, assigned, pushed)
    return assigned, pushed


REPLAYED = frozenset({"app.assign", "app.unassign", "group.push", "group.unpush", "group.rename", "user.update"})


def assignments(service: Service) -> dict[str, set[str]]:
    """App name -> subjects assigned ("group:<name>", "user:<login>")."""
    if hasattr(service, "app_assignments"):
        return {app: set(subjects) for app, subjects in service.app_assignments().items()}
    return _replay(service)[0]


def _rename(current: dict[str, set[str]], old: str, new: str) -> None:
    for subjects in current.values():
        if old in subjects:
            subjects.discard(old)
            subjects.add(new)


def pushes(service: Service) -> dict[str, dict[str, dict]]:
    """Group name -> app name -> the latest push or unpush ({"state", "delete", "time"})."""
    return _replay(service)[1]


def _group_apps(service: Service, group_ids: dict[str, str]) -> dict[str, list[str]]:
    """Group name -> apps assigned to it."""
    result: dict[str, list[str]] = defaultdict(list)
    for app, subjects in sorted(assignments(service).items()):
        for subject in subjects:
            kind, _, name = subject.partition(":")
            if kind == "group" and name in group_ids:
                result[name].append(app)
    return result


# -- groups ----------------------------------------------------------------------------


def groups_page(service: Service) -> dict:
    groups = service.list_groups()
    group_apps = _group_apps(service, _ids(groups))
    all_rules = rules(service) or []
    rows = []
    for group in groups:
        ruled = [r["name"] for r in all_rules if group["name"] in r.get("groups", ())]
        rows.append({"name": group["name"], "description": group.get("description") or "", "members": group["members"],
                     "apps": ", ".join(group_apps.get(group["name"], [])), "rules": ", ".join(ruled)})
    return {"groups": rows, "may_create": service.may(Action.MANAGE_GROUPS)}


def members(service: Service, group: str, offset: int = 0, limit: int = MEMBER_PAGE) -> tuple[int, list[dict]]:
    """(members in all, one page of their summaries by login)."""
    try:
        return service.list_users("", where=f'isMemberOfGroupName("{group}")', offset=offset, limit=limit)
    except (TypeError, InvalidInput):  # a service without conditions (or without that function): look at each user
        _, everyone = service.list_users("")
        found = [u for u in everyone if group in service.user_view(u["login"])["groups"]]
        return len(found), found[offset:offset + limit]


def group_page(service: Service, name: str) -> dict:
    """The group, a page of its members, its rules, apps and pushes, and what the actor may change."""
    groups = service.list_groups()
    group = next((g for g in groups if g["name"] == name), None)
    if group is None:
        raise NotFound("group", name)
    apps = service.list_apps()
    if hasattr(service, "group_view"):
        view = service.group_view(name, limit=MEMBER_PAGE)
    else:
        view = _composed_group_view(service, group, apps)
    scope = Scope(groups=frozenset({group["id"]}))
    return {
        **view,
        "all_apps": [a["name"] for a in apps],
        "may": {
            "membership": service.may(Action.GROUP_MEMBERSHIP, scope),
            "assign": sorted(a["name"] for a in apps if service.may(
                Action.ASSIGN_APP, Scope(apps=frozenset({a["id"]}), groups=scope.groups, app_assigned_elsewhere=True))),
            "push": sorted(a["name"] for a in apps if service.may(Action.MANAGE_APP, Scope(apps=frozenset({a["id"]})))),
        },
    }


def _composed_group_view(service: Service, group: dict, apps: list[dict]) -> dict:
    """What ``service.group_view`` would answer, from public calls (pushes: as last asked for, not as done)."""
    name = group["name"]
    total, page = members(service, name)
    pushed = pushes(service).get(name, {})
    push_rows = []
    for app in apps:
        push = pushed.get(app["name"])
        can_push = "push_groups" in app["capabilities"]
        if push or can_push:
            push_rows.append({"app": app["name"], "state": push["state"] if push else "not pushed",
                              "delete": bool(push and push["delete"]), "since": push["time"] if push else None,
                              "can_push": can_push})
    return {
        "name": name, "description": group.get("description") or "", "kind": group.get("kind", "provtui"),
        "members": total, "member_page": page, "apps": _group_apps(service, {name: group["id"]}).get(name, []),
        "pushes": push_rows, "rules": [r for r in rules(service) or [] if name in r.get("groups", ())],
    }


# -- apps ------------------------------------------------------------------------------


def apps_page(service: Service) -> dict:
    accounts = {a["name"]: a for a in service.list_apps()}
    rows = []
    for status in service.app_status():
        app = accounts[status["app"]]
        rows.append({**status, "accounts": app["accounts"], "health": health(status)})
    return {"apps": rows}


def app_page(service: Service, name: str) -> dict:
    app = next((a for a in service.list_apps() if a["name"] == name), None)
    if app is None:
        raise NotFound("app", name)
    status = service.app_status(name)[0]
    subjects = sorted(assignments(service).get(name, set()))
    report, _ = service.reports().run("apps", app=name)
    scope = Scope(apps=frozenset({app["id"]}))
    return {
        "app": {k: app.get(k) for k in ("name", "kind", "scim_url", "token_env", "notify", "capabilities", "settings", "created")},
        "status": {**status, "health": health(status)},
        "usage": report[0] if report else {},
        "assignments": [{"kind": s.partition(":")[0], "name": s.partition(":")[2]} for s in subjects],
        "mapping": mapping(service, name) if app["kind"] == "scim" else [],
        "may": {"manage": service.may(Action.MANAGE_APP, scope), "assign": service.may(Action.ASSIGN_APP, scope)},
    }


def mapping(service: Service, app: str) -> list[dict]:
    """The app's attribute mappings ({target, expr, on})."""
    return service.mappings(app) if hasattr(service, "mappings") else []


def payload_preview(service: Service, app: str, login: str) -> dict[str, Any] | None:
    """What the app would receive for one user (None: this service cannot preview yet)."""
    return service.preview_payload(app, login) if hasattr(service, "preview_payload") else None


# -- activity and tasks ----------------------------------------------------------------


def activity_page(service: Service) -> dict:
    failures, _ = service.reports().run("failures")
    apps = [{**s, "health": health(s)} for s in service.app_status()]
    app_ids = _ids(service.list_apps())
    return {"apps": apps, "failures": failures, "queued": service.pending_work(),
            "may_retry": sorted(a for a, i in app_ids.items() if service.may(Action.MANAGE_APP, Scope(apps=frozenset({i}))))}


def tasks_page(service: Service) -> dict:
    # oldest first; tasks made in one run share a time: then by app and user, so the list reads the same each time
    tasks = sorted(service.task_list(open_only=True), key=lambda t: (t["created"], t["app"], t["user"]))
    pending, _ = service.reports().run("pending")
    app_ids = _ids(service.list_apps())
    may_complete = sorted(a for a, i in app_ids.items() if service.may(Action.MANAGE_APP, Scope(apps=frozenset({i}))))
    held = held_changes(service)
    return {"tasks": tasks, "pending": [p for p in pending if p["kind"] == "account"], "may_complete": may_complete,
            "held": held, "may_approve": service.may(Action.APPROVE)}


# -- moving a user between groups ------------------------------------------------------------


def move_preview(service: Service, login: str, leave: str, join: str) -> dict:
    """The apps the user would gain and lose by leaving ``leave`` for ``join`` (by entitlement paths)."""
    view = service.user_view(login)
    group_apps = _group_apps(service, _ids(service.list_groups()))
    gains, losses = [], []
    paths = {a["app"]: set(a["via"]) for a in view["apps"] if a["via"]}
    for app in group_apps.get(join, []):
        if app not in paths:
            gains.append(app)
    for app in group_apps.get(leave, []):
        if paths.get(app, set()) - {f"group:{leave}"} == set() and app not in group_apps.get(join, []):
            losses.append(app)
    return {"gains": sorted(gains), "losses": sorted(losses), "active": view["state"] == "active"}


def move_user(service: Service, login: str, leave: str, join: str) -> dict:
    """Both or neither.  Until the service moves in one transaction: join, then leave, and if leaving is
    refused (a rule or a source holds the membership, or the actor's scope), leave the joined group again."""
    if hasattr(service, "move_member"):
        return service.move_member(login, leave, join)
    joined = service.add_members(join, [login])
    try:
        service.remove_members(leave, [login])
    except ProvtuiError:
        if joined:
            service.remove_members(join, [login])
        raise
    return service.user_view(login)
