"""Groups: the list (provtui's own, and the read-only groups of sources and apps), and one group's
members (with how each is in it), rules, apps assigned with their values, and where it is pushed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Input, Static

from provtui.tui import queries
from provtui.tui.screens.assign_values import ask_and_assign
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.modals import InputModal, PickModal, UserPickModal
from provtui.tui.text import shown
from provtui.tui.widgets.row_table import Col, RowTable, tone_by
from provtui.tui.widgets.user_detail import HEADING, MUTED

if TYPE_CHECKING:
    from provtui.service import Service

STATE_TONES = {"active": "good", "staged": "info", "suspended": "warn", "deprovisioned": "bad", "deleted": "muted"}
PUSH_STYLE = {
    "pushed": "$text-success",
    "pushing": "$text-primary",
    "unpushing": "$text-primary",
    "unpushed": "$text-warning",
    "failed": "$text-error",
    "not pushed": MUTED,
}
PUSH_PENDING = {"pushing": "syncing", "unpushing": "syncing"}  # the engine has not done it yet


def kind_text(kind: str) -> str:
    """provtui, ``source corp``, ``app Slack``: where a group and its membership come from."""
    origin, _, name = kind.partition(":")
    return f"{origin} {name}" if name else origin


def leave_text(login: str, group: str, apps: list[str]) -> str:
    """The question before ``login`` leaves ``group``, naming the apps the group gives."""
    body = f"Remove {login} from {group}?"
    if apps:
        body += f"\n\nAccess that comes only through {group} is taken away: {', '.join(apps)}."
    return body


GROUP_COLUMNS = [
    Col("name", "Group", 10, 20),
    Col("kind", "Kind", 7, 16, priority=2, format=kind_text, tone=lambda r: None if r["kind"] == "provtui" else "info"),
    Col("members", "Members", 7, 8, right=True),
    Col("apps", "Apps", 8, 24, priority=1),
    Col("rules", "Rules", 6, 16, priority=3),
    Col("description", "Description", 10, 60, priority=2),
]
MEMBER_COLUMNS = [
    Col("login", "Login", 8, 14),
    Col("displayName", "Name", 10, 20, priority=1),
    Col("state", "State", 13, 13, tone=tone_by("state", STATE_TONES)),
    Col("department", "Department", 10, 14, priority=2),
    Col("email", "Email", 14, 30, priority=3),
    Col("via", "Via", 6, 20, priority=4),  # manual, rule:…, source:… (when the service says)
]


class GroupsScreen(BaseScreen):
    CSS_PATH = "group_detail.tcss"
    NAV = "groups"
    BINDINGS = [Binding("n", "create", "New group", id="groups.create"), Binding("escape", "back", "Clear/Back", id="groups.back")]

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="Filter groups  (/)", id="search", compact=True)
        yield RowTable(GROUP_COLUMNS, row_key=lambda r: r["name"], empty="No groups", id="groups")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.groups_page(service)

    def show(self, data: dict) -> None:
        self.allowed = {"create": data["may_create"]}
        self._filter()

    @on(Input.Changed, "#search")
    def _filter(self) -> None:
        if self.data is None:
            return
        needle = self.query_one("#search", Input).value.strip().lower()
        rows = [g for g in self.data["groups"] if needle in g["name"].lower() or needle in g["description"].lower()]
        self.query_one(RowTable).set_rows(rows, empty="No groups match" if needle else "No groups yet")
        self.query_one("#status", Static).update(f"{len(rows)} of {len(self.data['groups'])} groups · enter opens one")

    @on(Input.Submitted, "#search")
    def _to_list(self) -> None:
        self.query_one(RowTable).focus()

    def action_back(self) -> None:
        field = self.query_one("#search", Input)
        if field.value:
            field.value = ""
            self.query_one(RowTable).focus()
        else:
            super().action_back()

    @on(RowTable.RowSelected, "#groups")
    def _open(self, event: RowTable.RowSelected) -> None:
        self.app.open_group(event.row["name"])

    def action_create(self) -> None:
        def named(name: str | None) -> None:
            if name:
                self.act(
                    self.app.service.create_group, name, done=f"group {name} created", then=lambda group: self.app.open_group(group["name"])
                )

        self.app.push_screen(InputModal("New group", placeholder="name (letters, digits, space, - _ .)"), named)


def render_group(data: dict) -> Content:
    parts: list[Any] = [(data["name"], "bold"), "  ", (f"{data['members']:,} members", MUTED)]
    if data["description"]:
        parts += ["  ", (shown(data["description"]), MUTED)]
    parts += ["\n"]
    if data["kind"] != "provtui":
        parts += [
            ("From ", HEADING),
            kind_text(data["kind"]),
            ("  read-only: its members change there, and at the next import here", MUTED),
            "\n",
        ]
    if data["rules"]:
        for rule in data["rules"]:
            parts += [
                ("Rule ", HEADING),
                (rule["name"], "bold"),
                "  ",
                shown(rule.get("expr", "")),
                (f"  ({rule.get('state', '')})", MUTED),
                "\n",
            ]
    elif data["kind"] == "provtui":
        parts += [("Rule ", HEADING), ("none: members are added by hand", MUTED), "\n"]
    parts += [("Apps ", HEADING)]
    for i, app in enumerate(data["apps"]):
        values = queries.assignment_text(app)
        parts += [", " if i else "", (app["app"], "bold"), (f" ({values})", MUTED) if values else ""]
    parts += [] if data["apps"] else [("none assigned", MUTED)]
    parts += ["\n", ("Push ", HEADING)]
    if data["pushes"]:
        for i, push in enumerate(data["pushes"]):
            asked = push["intent"] or "not pushed"  # what an admin asked for; then how far the engine got
            parts += [
                ", " if i else "",
                (push["app"], "bold"),
                " ",
                (asked + (" (deleted there)" if push["delete"] else ""), PUSH_STYLE.get(asked, "")),
            ]
            if push["state"] == "failed":
                parts += [(f" failed: {shown(push['last_error'])}", "$text-error")]
            elif push["state"] in PUSH_PENDING:
                parts += [(f" ({PUSH_PENDING[push['state']]})", PUSH_STYLE[push["state"]])]
    else:
        parts += [("no app takes pushed groups", MUTED)]
    return Content.assemble(*parts)


class GroupDetailScreen(BaseScreen):
    CSS_PATH = "group_detail.tcss"
    NAV = "groups"
    BINDINGS = [
        Binding("plus", "add_member", "Add member", id="group.add_member"),
        Binding("minus", "remove_member", "Remove member", id="group.remove_member"),
        Binding("n", "assign", "Assign app", id="group.assign"),
        Binding("p", "push", "Push", id="group.push"),
        Binding("N", "assign_values", "Assign with values", id="group.assign_values", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.group = name

    def compose_body(self) -> ComposeResult:
        yield Static(Content.styled(f"Loading {self.group}…", MUTED), id="summary")
        yield RowTable(MEMBER_COLUMNS, row_key=lambda r: r["login"], empty="No members", id="members")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.group_page(service, self.group)

    def show(self, data: dict) -> None:
        self.sub_title = f"group {data['name']}"
        self.query_one("#summary", Static).update(render_group(data))
        page = data["member_page"]
        self.query_one(RowTable).set_rows(page)
        more = f" (the first {len(page):,} shown)" if data["members"] > len(page) else ""
        self.query_one("#status", Static).update(f"{data['members']:,} members{more} · enter opens a member")
        may = data["may"]
        by_hand = data["kind"] == "provtui"  # a source's or an app's group: no add or remove offered
        self.allowed = {
            "add_member": may["membership"] if by_hand else None,
            "remove_member": (may["membership"] and bool(page)) if by_hand else None,
            "assign": bool(may["assign"]),
            "assign_values": bool(may["assign"]),
            "push": bool(set(may["push"]) & {p["app"] for p in data["pushes"]}) if data["pushes"] else None,
        }

    @on(RowTable.RowSelected, "#members")
    def _open(self, event: RowTable.RowSelected) -> None:
        self.app.open_user(event.row["login"])

    def action_add_member(self) -> None:
        def chosen(login: str | None) -> None:
            if login:
                self.act(self.app.service.add_members, self.group, [login], done=f"{login} added to {self.group}")

        members = [m["login"] for m in self.data["member_page"]] if self.data else []
        self.app.push_screen(UserPickModal(f"Add to {self.group}", exclude=members), chosen)

    def action_remove_member(self) -> None:
        row = self.query_one(RowTable).highlighted
        if row is None:
            return
        login = row["login"]
        apps = [a["app"] for a in self.data["apps"]] if self.data else []
        self.confirm(
            "Remove member",
            leave_text(login, self.group, apps),
            lambda: self.act(self.app.service.remove_members, self.group, [login], done=f"{login} removed from {self.group}"),
            confirm="Remove",
        )

    def action_assign(self) -> None:
        data = self.data
        assigned = {a["app"] for a in data["apps"]}
        options = [(Content.assemble(a, ("  assigned: enter removes it", MUTED)) if a in assigned else a, a) for a in data["all_apps"]]
        denied = [a for a in data["all_apps"] if a not in data["may"]["assign"]]

        def chosen(app: str | None) -> None:
            if not app:
                return
            if app in assigned:
                self.confirm(
                    "Unassign app",
                    f"Stop giving {app} to the members of {self.group}?\n\nMembers without another path to it lose their account.",
                    lambda: self.act(self.app.service.unassign, app, group=self.group, done=f"{app} unassigned"),
                    confirm="Unassign",
                )
            else:
                self.act(self.app.service.assign, app, group=self.group, done=f"{app} assigned to {self.group}")

        self.app.push_screen(PickModal(f"Assign an app to {self.group}", options, disabled_values=denied), chosen)

    def action_assign_values(self) -> None:
        """Assign an app with values and a priority, or change an assignment's."""
        data = self.data
        assigned = {a["app"]: a for a in data["apps"]}
        options = [
            (Content.assemble(a, ("  " + (queries.assignment_text(assigned[a]) or "no values"), MUTED)) if a in assigned else a, a)
            for a in data["all_apps"]
        ]
        denied = [a for a in data["all_apps"] if a not in data["may"]["assign"]]
        self.app.push_screen(
            PickModal(f"Assign an app to {self.group}, with values", options, disabled_values=denied),
            lambda app: app and ask_and_assign(self, app, group=self.group, current=assigned.get(app)),
        )

    def action_push(self) -> None:
        data = self.data
        options = []
        for push in data["pushes"]:
            if push["intent"] == "pushed":
                options.append((Content.assemble(push["app"], ("  pushed: enter stops it", MUTED)), push["app"]))
            else:
                options.append((push["app"], push["app"]))
        denied = [p["app"] for p in data["pushes"] if p["app"] not in data["may"]["push"]]
        pushed = {p["app"] for p in data["pushes"] if p["intent"] == "pushed"}

        def chosen(app: str | None) -> None:
            if not app:
                return
            if app not in pushed:
                self.act(self.app.service.push_group, self.group, app, done=f"{self.group} pushed to {app}")
                return
            self.app.push_screen(
                PickModal(
                    f"Stop pushing {self.group} to {app}",
                    [(f"Stop, and leave the group in {app}", False), (f"Stop, and delete the group in {app}", True)],
                ),
                lambda delete: (
                    delete is not None
                    and self.confirm(
                        "Stop pushing",
                        f"Stop pushing {self.group} to {app}" + (" and delete it there?" if delete else "?"),
                        lambda: self.act(
                            self.app.service.unpush_group, self.group, app, delete=delete, done=f"{self.group} no longer pushed to {app}"
                        ),
                        confirm="Stop",
                    )
                ),
            )

        self.app.push_screen(PickModal(f"Push {self.group} to an app", options, disabled_values=denied), chosen)
