"""One user: profile, lifecycle, groups (move, join, leave), apps with their entitlement paths,
downstream accounts and assignment values (which path's value wins), and the user's history.

The helpdesk's screen: ``m`` moves the user from one group to another, and the
apps section then shows the provisioning that follows (accounts going pending,
then active or deactivated as the engine runs).  The banner above says what the last change made
here did; it goes when anything else is started from the page or the page is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import CommandPalette
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from provtui.domain.users import CORE_ATTRIBUTES
from provtui.tui import queries
from provtui.tui.screens.assign_values import ask_and_assign
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.group_detail import leave_text
from provtui.tui.screens.help import HelpScreen
from provtui.tui.screens.modals import InputModal, MoveGroupModal, PickModal
from provtui.tui.screens.person_access import ask_and_change_state, ask_and_unassign, change_banner
from provtui.tui.text import shown
from provtui.tui.widgets.user_detail import HEADING, MUTED, render_user, render_values

if TYPE_CHECKING:
    from provtui.service import Service

DESTRUCTIVE = {"suspend", "deactivate", "delete"}  # lifecycle actions that take access away: confirmed first
LIFECYCLE_TEXT = {
    "activate": "Activate: accounts are created in the apps the user is entitled to",
    "suspend": "Suspend: accounts are deactivated until unsuspended",
    "unsuspend": "Unsuspend: accounts are reactivated",
    "deactivate": "Deactivate (deprovision): every account is deactivated",
    "reactivate": "Reactivate: accounts are reactivated",
    "delete": "Delete: the user is marked deleted",
}
EVENT_TEXT = {
    "user.create": "created",
    "user.update": "profile changed",
    "user.activate": "activated",
    "user.suspend": "suspended",
    "user.unsuspend": "unsuspended",
    "user.deactivate": "deactivated",
    "user.reactivate": "reactivated",
    "user.delete": "deleted",
    "user.password": "password set",
    "group.add-member": "joined {target}",
    "group.remove-member": "left {target}",
    "app.assign": "assigned {target}",
    "app.unassign": "unassigned {target}",
    "downstream.failed": "{target} failed",
    "task.done": "{target} task done",
    "provisioning.retry": "retry {target}",
}


def _literal_params(action: str) -> tuple[object, ...]:
    from provtui.tui.commands import action_params

    return action_params(action)


CALL_PATH_WIDTH = 24  # a downstream call's path (an LDAP DN can be long) as the history shows it: a line fits 80 columns


def short_time(text: str | None) -> str:
    """2026-01-15T09:00:00.000Z -> 2026-01-15 09:00"""
    return (text or "")[:16].replace("T", " ")


def describe_event(event: dict) -> str:
    action = event.get("action", "")
    text = EVENT_TEXT.get(action, f"{action} {event.get('target') or ''}").format(target=event.get("target") or "")
    after = event.get("after") if isinstance(event.get("after"), dict) else {}
    if action == "user.update" and after:
        text = f"changed {', '.join(sorted(after))}"
    elif action == "downstream.failed" and after.get("error"):
        text = f"{text}: {after['error']}"
    elif action == "downstream.call":
        path = str(after.get("path") or "")
        path = path if len(path) <= CALL_PATH_WIDTH else path[: CALL_PATH_WIDTH - 1] + "…"
        status = after.get("status")
        text = f"{event.get('target') or ''} {after.get('method', '')} {path} → {'no reply' if status is None else status}"
    return text


def render_history(events: list[dict]) -> Content:
    parts: list[Any] = [("History", HEADING), "\n"]
    if not events:
        parts += [("nothing recorded", MUTED)]
    for event in events:
        tone = "$text-error" if event.get("action") == "downstream.failed" else ""
        parts += [
            (short_time(event.get("time")), MUTED),
            "  ",
            (shown(describe_event(event)), tone),
            "  ",
            (shown(event.get("actor") or ""), MUTED),
            "\n",
        ]
    return Content.assemble(*parts).rstrip()


class UserDetailScreen(BaseScreen):
    CSS_PATH = "user_detail.tcss"
    NAV = "directory"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # The footer shows the helpdesk's most used keys, in that order, and fits 80 columns with all of them
    # (tests/console/test_tui_footer.py); the tooltip is the long form that ? and the palette show.
    BINDINGS = [
        Binding("m", "move", "Move", id="user.move", tooltip="Move to another group"),
        Binding("n", "assign", "Assign", id="user.assign", tooltip="Assign an app"),
        Binding("x", "unassign", "Unassign", id="user.unassign", tooltip="Unassign a direct app"),
        Binding("s", "lifecycle('suspend')", "Suspend", id="user.suspend"),
        Binding("s", "lifecycle('unsuspend')", "Unsuspend", id="user.unsuspend"),
        Binding("ctrl+r", "retry", "Retry", id="user.retry", tooltip="Retry failed provisioning"),
        Binding("c", "choose_lifecycle", "Lifecycle", id="user.lifecycle", tooltip="Change the lifecycle state"),
        Binding("plus", "join", "Join group", id="user.join", show=False),
        Binding("minus", "leave", "Leave group", id="user.leave", show=False),
        Binding("e", "edit", "Edit profile", id="user.edit", show=False),
        Binding("N", "assign_values", "Assign with values", id="user.assign_values", show=False),
    ]

    def __init__(self, login: str, *, then: str | None = None) -> None:
        """``then``: an action to run once the user is loaded (the palette's "Suspend a user…")."""
        super().__init__()
        self.login = login
        self.banner: Content | None = None
        self._then = then

    def compose_body(self) -> ComposeResult:
        yield Static(id="banner")
        with VerticalScroll(id="body", can_focus=True):
            with Vertical(id="profile"):
                yield Static(Content.styled(f"Loading {self.login}…", MUTED), id="main")
                yield Static(id="values")
            yield Static(id="history")

    def on_mount(self) -> None:
        self.query_one("#body").focus()
        self.query_one("#banner").display = False

    # -- reading -----------------------------------------------------------------------------

    def read(self, service: Service) -> dict:
        return queries.user_page(service, self.login)

    def show(self, data: dict) -> None:
        view = data["view"]
        self.login = view["login"]  # renamed by an edit
        self.sub_title = view["login"]
        self.query_one("#main", Static).update(render_user(view))
        values = render_values(view["apps"])
        self.query_one("#values", Static).display = values is not None
        self.query_one("#values", Static).update(values or "")
        self.query_one("#history", Static).update(render_history(data["history"]))
        may = data["may"]
        membership = set(may["membership"])
        current = set(view["groups"])
        self.allowed = {
            "move": bool(current & membership) and bool((set(data["groups"]) - current) & membership),
            "join": bool((set(data["groups"]) - current) & membership),
            "leave": bool(current & membership),
            "choose_lifecycle": may["manage"] or may["suspend"],
            "edit": may["manage"],
            "assign": bool(may["assign"]),
            "assign_values": bool(may["assign"]),
            # hidden without a direct assignment; greyed when the actor may unassign none of them
            "unassign": any(a in may["assign"] for a in data["direct"]) if data["direct"] else None,
            "retry": may["retry"] and any(a["account"]["state"] == "failed" for a in view["apps"]),
        }
        self.refresh_bindings()
        if self._then is not None:
            action, self._then = self._then, None
            if self.check_action(action.partition("(")[0], _literal_params(action)):
                self.call_after_refresh(self.run_action, action)
            else:
                self.notify(f"{self.login}: not possible here ({action.partition('(')[0].replace('_', ' ')})", severity="warning")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "lifecycle" and self.data is not None:
            wanted = parameters[0] if parameters else None
            state = self.data["view"]["state"]
            fits = (wanted, state) in (("suspend", "active"), ("unsuspend", "suspended"))
            if not fits:
                return False
            return True if self.data["may"]["suspend"] else None
        if action == "lifecycle":
            return False
        return super().check_action(action, parameters)

    def set_banner(self, content: Content | None) -> None:
        banner = self.query_one("#banner", Static)
        banner.display = content is not None
        banner.update(content or "")

    def act(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.set_banner(None)  # a new change: the banner said what the last one did
        return super().act(fn, *args, **kwargs)

    def on_screen_suspend(self) -> None:
        # Covered by a dialog an action opened, or left for another page: the banner is about the past.
        # Looking at the keys (?) or opening the palette is not an action: it stays.
        if not isinstance(self.app.screen, (HelpScreen, CommandPalette)):
            self.set_banner(None)

    # -- groups --------------------------------------------------------------------------------

    def action_move(self) -> None:
        if self.data is None:
            return
        view, groups = self.data["view"], self.data["groups"]
        others = [g for g in groups if g not in view["groups"]]
        allowed = self.data["may"]["membership"]
        # the group the person most likely leaves: the smallest they are in that may be changed (the most specific;
        # all-staff, the biggest, last), so the usual move needs no arrow key
        sizes = self.data.get("group_sizes", {})
        candidates = [g for g in view["groups"] if g in allowed]
        likely = min(candidates, key=lambda g: (sizes.get(g, 0), g)) if candidates else None
        self.app.push_screen(MoveGroupModal(view["login"], view["groups"], others, allowed=allowed, leave=likely), self._move_chosen)

    def _move_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice is not None:
            self.preview_move(*choice)

    def _move_preview_text(self, leave: str, join: str, preview: dict) -> Content:
        parts: list[Any] = [f"{self.login}: leave ", (leave, "bold"), ", join ", (join, "bold"), "\n\n"]
        if preview["gains"]:
            parts += [("Gains ", "$text-success"), ", ".join(preview["gains"]), "\n"]
        if preview["losses"]:
            parts += [("Loses ", "$text-error"), ", ".join(preview["losses"]), " (accounts deactivated)", "\n"]
        if not preview["gains"] and not preview["losses"]:
            parts += [("No app access changes", MUTED), "\n"]
        if not preview["active"]:
            parts += [("The user is not active: nothing is provisioned until they are", "$text-warning")]
        return Content.assemble(*parts).rstrip()

    def preview_move(self, leave: str, join: str) -> None:
        async def preview() -> None:
            result = await self.app.call_service(self.app.service.move_preview, self.login, leave, join)
            body = self._move_preview_text(leave, join, result)
            self.confirm(
                "Move to another group", body, lambda: self._move(leave, join, result), confirm="Move", destructive=bool(result["losses"])
            )

        self.run_worker(preview(), group="action", exit_on_error=False)

    def _move(self, leave: str, join: str, preview: dict) -> None:
        banner = change_banner([("Moved ", "bold"), f"from {leave} to {join}"], preview)
        self.act(self.app.service.move_member, self.login, leave, join, then=lambda _: self.set_banner(banner))

    def action_join(self) -> None:
        if self.data is None:
            return
        view = self.data["view"]
        options = [(g, g) for g in self.data["groups"] if g not in view["groups"]]
        denied = [g for _, g in options if g not in self.data["may"]["membership"]]

        def chosen(group: str | None) -> None:
            if group:
                self.act(self.app.service.add_members, group, [self.login], done=f"{self.login} joined {group}")

        self.app.push_screen(PickModal(f"Add {self.login} to a group", options, disabled_values=denied), chosen)

    def action_leave(self) -> None:
        if self.data is None:
            return
        view = self.data["view"]
        denied = [g for g in view["groups"] if g not in self.data["may"]["membership"]]

        def chosen(group: str | None) -> None:
            if not group:
                return
            body = leave_text(self.login, group, self.data["group_apps"].get(group, []))
            self.confirm(
                "Leave group",
                body,
                lambda: self.act(self.app.service.remove_members, group, [self.login], done=f"{self.login} left {group}"),
                confirm="Remove",
            )

        self.app.push_screen(
            PickModal(f"Remove {self.login} from a group", [(g, g) for g in view["groups"]], disabled_values=denied), chosen
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def action_lifecycle(self, action: str) -> None:
        self.change_state(action)

    def action_choose_lifecycle(self) -> None:
        if self.data is None:
            return
        may = self.data["may"]
        actions = queries.lifecycle_actions(self.data["view"]["state"])
        denied = [a for a in actions if not (may["suspend"] if a in ("suspend", "unsuspend") else may["manage"])]
        options = [(LIFECYCLE_TEXT[a], a) for a in actions]
        self.app.push_screen(
            PickModal(f"{self.login} is {self.data['view']['state']}", options, disabled_values=denied),
            lambda action: action and self.change_state(action),
        )

    def change_state(self, action: str) -> None:
        """Run a lifecycle step; one that takes access away is asked first, with the accounts it deactivates."""

        def run(preview: dict | None = None) -> None:
            headline = [(f"{shown(self.login)} {EVENT_TEXT[f'user.{action}']}", "bold")] if preview is not None else None
            self.act(
                self.app.service.change_state,
                self.login,
                action,
                done=lambda view: f"{self.login} is now {view['state']}",
                then=lambda _: headline is not None and self.set_banner(change_banner(headline, preview or {})),
            )

        if action in DESTRUCTIVE:
            ask_and_change_state(self, action, LIFECYCLE_TEXT[action], run)
        else:
            run()

    # -- profile -------------------------------------------------------------------------------

    def action_edit(self) -> None:
        if self.data is None:
            return
        view = self.data["view"]
        profile = view["profile"]
        mastered = view.get("mastered") or {}  # attribute -> the source that supplies it
        fields = list(dict.fromkeys([*CORE_ATTRIBUTES, *sorted(profile)]))
        options = []
        for field in fields:
            value = profile.get(field)
            label = Content.assemble((shown(field).ljust(16), "bold"), shown(value) if value is not None else ("—", MUTED))
            if field in mastered:
                label = Content.assemble(label, (f"  from {mastered[field]}", MUTED))
            options.append((label, field))
        note = (
            ""
            if view["source"] == "provtui"
            else Content.styled(f"{self.login} comes from the source {view['source']}: what it supplies is changed there.", MUTED)
        )
        self.app.push_screen(PickModal(f"Edit {self.login}", options, note=note, disabled_values=list(mastered)), self._edit_field)

    def _edit_field(self, field: str | None) -> None:
        if not field:
            return
        current = self.data["view"]["profile"].get(field)

        def typed(value: str | None) -> None:
            if value is not None and value != (str(current) if current is not None else ""):
                self.act(
                    self.app.service.update_user,
                    self.login,
                    {field: value},
                    done=f"{field} changed",
                    then=lambda view: setattr(self, "login", view["login"]),
                )

        self.app.push_screen(
            InputModal(
                f"{self.login}: {field}", value="" if current is None else str(current), note="An empty value removes the attribute."
            ),
            typed,
        )

    # -- apps ----------------------------------------------------------------------------------

    def action_assign(self) -> None:
        if self.data is None:
            return
        direct = set(self.data["direct"])
        options = []
        for app in self.data["apps"]:
            label = Content.assemble(app, ("  assigned directly: enter removes it", MUTED)) if app in direct else app
            options.append((label, app))
        denied = [a for a in self.data["apps"] if a not in self.data["may"]["assign"]]

        def chosen(app: str | None) -> None:
            if not app:
                return
            if app in direct:
                ask_and_unassign(self, app)
            else:
                self.act(self.app.service.assign, app, login=self.login, done=f"{app} assigned to {self.login}")

        self.app.push_screen(PickModal(f"Assign an app to {self.login}", options, disabled_values=denied), chosen)

    def action_unassign(self) -> None:
        """Remove one of the person's direct assignments (asked first, with what it deactivates); with one, no list."""
        if self.data is None:
            return
        direct, may = self.data["direct"], self.data["may"]["assign"]
        if len(direct) == 1 and direct[0] in may:
            ask_and_unassign(self, direct[0])
            return
        self.app.push_screen(
            PickModal(
                f"Unassign an app from {self.login}", [(app, app) for app in direct], disabled_values=[a for a in direct if a not in may]
            ),
            lambda app: app and ask_and_unassign(self, app),
        )

    def action_assign_values(self) -> None:
        """Assign an app directly with values, or change a direct assignment's values."""
        if self.data is None:
            return
        current = self.data["direct_values"]
        options = [
            (
                Content.assemble(app, ("  " + (queries.assignment_text({"values": current[app]}) or "no values"), MUTED))
                if app in current
                else app,
                app,
            )
            for app in self.data["apps"]
        ]
        denied = [a for a in self.data["apps"] if a not in self.data["may"]["assign"]]
        self.app.push_screen(
            PickModal(f"Assign an app to {self.login}, with values", options, disabled_values=denied),
            lambda app: app and ask_and_assign(self, app, login=self.login, current={"values": current.get(app, {})}),
        )

    def action_retry(self) -> None:
        self.act(self.app.service.retry, login=self.login, done=lambda n: f"{n} failed account(s) queued again")
