"""Apps: the list with health, and one app's connection (SCIM, LDAP/AD or manual), settings, capabilities,
status (quarantine and resume), assignments with their values, attribute mappings and a payload preview."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from provtui.tui import queries
from provtui.tui.screens.assign_values import ask_and_assign
from provtui.tui.screens.base import BaseScreen
from provtui.tui.screens.modals import InputModal, PickModal, UserPickModal
from provtui.tui.screens.user_detail import short_time
from provtui.tui.widgets.row_table import Col, RowTable, tone_by
from provtui.tui.widgets.user_detail import HEADING, MUTED

if TYPE_CHECKING:
    from provtui.service import Service

HEALTH_TONES = {"ok": "good", "syncing": "info", "failing": "bad", "quarantined": "bad", "rejected": "bad"}
HEALTH_STYLE = {
    "ok": "$text-success",
    "syncing": "$text-primary",
    "failing": "$text-error",
    "quarantined": "bold $text-error",
    "rejected": "bold $text-error",
}
APP_COLUMNS = [
    Col("app", "App", 8, 18),
    Col("kind", "Kind", 6, 6, priority=2),
    Col("accounts", "Accounts", 8, 8, right=True, priority=1),
    Col("active", "Active", 6, 8, right=True, priority=3),
    Col("queued", "Queued", 6, 8, right=True, priority=1),
    Col("in_flight", "In flight", 9, 9, right=True, priority=4),
    Col("failed", "Failed", 6, 8, right=True, priority=1, tone=lambda r: "bad" if r["failed"] else "muted"),
    Col("health", "Health", 11, 14, tone=tone_by("health", HEALTH_TONES)),
]
# Settings an admin edits here, with how the typed text becomes a value (None: unset).
SETTINGS = {"concurrency": int, "rate": float, "push_groups": bool, "sync_password": bool, "delete_after_days": int, "licenses": int}
MASKED = {"externalId": "‹provtui's user id›"}  # ids are random: the preview names them instead


def parse_setting(key: str, text: str) -> Any:
    kind = SETTINGS[key]
    text = text.strip()
    if text == "" or text.lower() == "none":
        return None
    if kind is bool:
        return text.lower() in ("yes", "true", "1", "on")
    try:
        return kind(text)
    except ValueError:
        from provtui.domain.errors import InvalidInput

        raise InvalidInput(key, f"{text!r} is not a {kind.__name__}") from None


def confirm_resume(screen: BaseScreen, app: str, reason: str | None) -> None:
    """Ask, then lift ``app``'s quarantine: the app page's and the activity screen's resume."""
    screen.confirm(
        "Resume app",
        f"Lift {app}'s quarantine ({reason or 'repeated failures'})?\n\nIts queued work runs again.",
        lambda: screen.act(screen.app.service.resume_app, app, done=f"{app} resumed"),
        confirm="Resume",
        destructive=False,
    )


class AppsScreen(BaseScreen):
    CSS_PATH = "apps.tcss"
    NAV = "apps"

    def compose_body(self) -> ComposeResult:
        yield RowTable(APP_COLUMNS, row_key=lambda r: r["app"], empty="No apps yet (provtui app create)", id="apps")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    def read(self, service: Service) -> dict:
        return queries.apps_page(service)

    def show(self, data: dict) -> None:
        self.query_one(RowTable).set_rows(data["apps"])
        self.query_one("#status", Static).update(f"{len(data['apps'])} apps · enter opens one")

    @on(RowTable.RowSelected, "#apps")
    def _open(self, event: RowTable.RowSelected) -> None:
        self.app.open_app(event.row["app"])


def _kv(rows: list[tuple[str, Any]], width: int = 18) -> list[Any]:
    parts: list[Any] = []
    for key, value in rows:
        text = value if isinstance(value, (tuple, Content)) else ("—", MUTED) if value in (None, "", []) else str(value)
        parts += [(key.ljust(width), MUTED), text, "\n"]
    return parts


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def render_app(data: dict) -> Content:
    app, status, usage = data["app"], data["status"], data["usage"]
    settings = app["settings"]
    parts: list[Any] = [
        (app["name"], "bold"),
        "  ",
        (app["kind"], MUTED),
        "  ",
        (status["health"], HEALTH_STYLE.get(status["health"], "")),
        "\n",
    ]
    if status["quarantined"]:
        parts += [("Quarantined: ", "bold $text-error"), status["quarantine_reason"] or "", ("  (R resumes)", MUTED), "\n"]
    if status.get("credentials_rejected"):
        code = f"HTTP {status['credentials_status']}: " if status.get("credentials_status") else ""
        parts += [
            ("Credentials rejected: ", "bold $text-error"),
            f"{code}{status['credentials_error'] or ''}",
            (
                f"  (paused since {short_time(status['credentials_rejected_at'])}; accounts stay queued, "
                f"next check {short_time(status['next_probe'])})",
                MUTED,
            ),
            "\n",
        ]
    parts += ["\n", ("Status", HEADING), "\n"]
    parts += _kv(
        [
            (
                "accounts active",
                f"{status['active']:,}" + (f" of {usage['licenses']:,} licenses" if usage.get("licenses") is not None else ""),
            ),
            ("entitled users", f"{usage.get('entitled', 0):,}"),
            ("queued", f"{status['queued']:,}"),
            ("in flight", f"{status['in_flight']:,}"),
            ("failed", (f"{status['failed']:,}", "$text-error") if status["failed"] else "0"),
            ("last success", short_time(status["last_success"])),
            ("last failure", short_time(status["last_failure"])),
        ]
    )
    parts += ["\n", ("Connection", HEADING), "\n"]
    if app["kind"] == "scim":
        parts += _kv([("SCIM URL", app["scim_url"]), ("token from", f"${app['token_env']}" if app["token_env"] else None)])
    elif data["ldap"] is not None:
        parts += _kv(_ldap_rows(data["ldap"]))
    else:
        parts += _kv([("manual", "an admin does each change (tasks)"), ("notify", ", ".join(app["notify"] or []))])
    parts += ["\n", ("Settings", HEADING), ("  e edits", MUTED), "\n"]
    parts += _kv(
        [
            ("concurrency", settings.get("concurrency")),
            ("rate", f"{settings['rate']}/s" if settings.get("rate") else "unlimited"),
            ("push groups", _yes(settings.get("push_groups"))),
            ("sync passwords", _yes(settings.get("sync_password"))),
            ("delete after", f"{settings['delete_after_days']} days" if settings.get("delete_after_days") is not None else "never"),
            ("licenses", settings.get("licenses")),
        ]
    )
    parts += ["\n", ("Capabilities", HEADING), "\n", ", ".join(app["capabilities"]), "\n"]
    parts += ["\n", ("Assigned to", HEADING), "\n"]
    if data["assignments"]:
        width = min(24, max(len(a["name"]) for a in data["assignments"]))
        for a in data["assignments"]:
            parts += [(a["kind"].ljust(7), MUTED), a["name"].ljust(width), "  ", queries.assignment_text(a) or ("no values", MUTED), "\n"]
    else:
        parts += [("nobody", MUTED), "\n"]
    if data["mapping"]:
        parts += ["\n", ("Mappings", HEADING), ("  v previews one user's payload", MUTED), "\n"]
        width = min(28, max(len(_short_target(m["target"])) for m in data["mapping"]))
        for m in data["mapping"]:
            parts += [
                _short_target(m["target"]).ljust(width),
                (" ← ", MUTED),
                m["expr"],
                ("  on create" if m.get("on") == "create" else "", MUTED),
                "\n",
            ]
    return Content.assemble(*parts).rstrip()


LDAP_LABELS = {
    "uri": "URI",
    "base_dn": "base DN",
    "flavor": "flavor",
    "rdn_attr": "RDN attribute",
    "disable_method": "disable by",
    "groups_dn": "groups DN",
    "tls": "TLS",
    "bind_dn": "bind DN",
    "password_env": "password from",
}


def _ldap_rows(ldap: dict) -> list[tuple[str, Any]]:
    return [(LDAP_LABELS[key], f"${value}" if key == "password_env" else value) for key, value in ldap.items() if key in LDAP_LABELS]


def _short_target(target: str) -> str:
    """The enterprise extension's long URN shortened for display."""
    return target.replace("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:", "enterprise:")


def render_preview(preview: dict, login: str, kind: str = "scim") -> Content:
    """The SCIM resource, or an LDAP app's entry attributes: what the connector is handed."""
    sent = preview["attributes"] if kind == "ldap" else preview["payload"]
    payload = {k: MASKED.get(k, v) if k in MASKED else v for k, v in sent.items()}
    state = "entitled: an account is created or kept" if preview["entitled"] else "not entitled: no account (or it is deactivated)"
    return Content.assemble(
        ("Payload for ", HEADING), (login, "bold"), "  ", (state, MUTED), "\n", json.dumps(payload, indent=2, ensure_ascii=False)
    )


class AppDetailScreen(BaseScreen):
    CSS_PATH = "apps.tcss"
    NAV = "apps"
    BINDINGS = [
        Binding("n", "assign", "Assign", id="app_detail.assign"),
        Binding("x", "unassign", "Unassign", id="app_detail.unassign"),
        Binding("v", "preview", "Preview", id="app_detail.preview", tooltip="Preview payload"),
        Binding("e", "edit", "Edit", id="app_detail.edit", tooltip="Edit setting"),
        Binding("R", "resume", "Resume", id="app_detail.resume"),
        Binding("ctrl+r", "retry", "Retry", id="app_detail.retry", tooltip="Retry failed"),
        Binding("N", "assign_values", "Assign with values", id="app_detail.assign_values", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.app_name = name

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="body", can_focus=True):
            yield Static(Content.styled(f"Loading {self.app_name}…", MUTED), id="detail")
            yield Static(id="preview")

    def on_mount(self) -> None:
        self.query_one("#body").focus()
        self.query_one("#preview").display = False

    def read(self, service: Service) -> dict:
        return queries.app_page(service, self.app_name)

    def show(self, data: dict) -> None:
        self.sub_title = f"app {self.app_name}"
        self.query_one("#detail", Static).update(render_app(data))
        may, status = data["may"], data["status"]
        self.allowed = {
            "assign": may["assign"],
            "assign_values": may["assign"],
            "unassign": may["assign"] and bool(data["assignments"]),
            "preview": True if data["mapping"] else None,
            "edit": may["manage"],
            "resume": may["manage"] if status["quarantined"] else None,
            "retry": may["manage"] if status["failed"] else None,
        }

    # -- assignments ---------------------------------------------------------------------------

    def action_assign(self) -> None:
        def kind_chosen(kind: str | None) -> None:
            if kind == "group":
                self._assign_group()
            elif kind == "user":
                self.app.push_screen(
                    UserPickModal(f"Assign {self.app_name} to a user"),
                    lambda login: (
                        login and self.act(self.app.service.assign, self.app_name, login=login, done=f"{self.app_name} assigned to {login}")
                    ),
                )

        self.app.push_screen(PickModal(f"Assign {self.app_name} to", [("a group", "group"), ("a user", "user")]), kind_chosen)

    def _assign_group(self) -> None:
        async def pick() -> None:
            groups = await self.app.call_service(self.app.service.list_groups)
            assigned = {a["name"] for a in self.data["assignments"] if a["kind"] == "group"}
            options = [(g["name"], g["name"]) for g in groups if g["name"] not in assigned]
            self.app.push_screen(
                PickModal(f"Assign {self.app_name} to a group", options),
                lambda group: (
                    group and self.act(self.app.service.assign, self.app_name, group=group, done=f"{self.app_name} assigned to {group}")
                ),
            )

        self.run_worker(pick(), group="action", exit_on_error=False)

    def action_assign_values(self) -> None:
        """Assign with values (and a group's priority), or change an assignment's: its subject first."""

        def ask(kind: str, name: str | None) -> None:
            if name:
                current = next((a for a in self.data["assignments"] if a["kind"] == kind and a["name"] == name), None)
                ask_and_assign(self, self.app_name, **{"login" if kind == "user" else "group": name}, current=current)

        async def pick_group() -> None:
            groups = await self.app.call_service(self.app.service.list_groups)
            assigned = {a["name"]: a for a in self.data["assignments"] if a["kind"] == "group"}
            options = [
                (
                    Content.assemble(g["name"], ("  " + (queries.assignment_text(assigned[g["name"]]) or "no values"), MUTED))
                    if g["name"] in assigned
                    else g["name"],
                    g["name"],
                )
                for g in groups
            ]
            self.app.push_screen(PickModal(f"Assign {self.app_name} to a group, with values", options), lambda group: ask("group", group))

        def kind_chosen(kind: str | None) -> None:
            if kind == "group":
                self.run_worker(pick_group(), group="action", exit_on_error=False)
            elif kind == "user":
                self.app.push_screen(UserPickModal(f"Assign {self.app_name} to a user, with values"), lambda login: ask("user", login))

        self.app.push_screen(PickModal(f"Assign {self.app_name} with values to", [("a group", "group"), ("a user", "user")]), kind_chosen)

    def action_unassign(self) -> None:
        options = [(Content.assemble((a["kind"] + " ", MUTED), a["name"]), (a["kind"], a["name"])) for a in self.data["assignments"]]

        def chosen(subject: tuple[str, str] | None) -> None:
            if not subject:
                return
            kind, name = subject
            self.confirm(
                "Unassign",
                f"Stop giving {self.app_name} to {kind} {name}?\n\nUsers without another path to it lose their account (deactivated).",
                lambda: self.act(
                    self.app.service.unassign,
                    self.app_name,
                    **{"login" if kind == "user" else "group": name},
                    done=f"{self.app_name} unassigned from {name}",
                ),
                confirm="Unassign",
            )

        self.app.push_screen(PickModal(f"Unassign {self.app_name}", options), chosen)

    # -- preview, settings, quarantine -----------------------------------------------------------

    def action_preview(self) -> None:
        def chosen(login: str | None) -> None:
            if not login:
                return

            async def load() -> None:
                preview = await self.app.call_service(self.app.service.preview_payload, self.app_name, login)
                widget = self.query_one("#preview", Static)
                widget.update(render_preview(preview, login, self.data["app"]["kind"]))
                widget.display = True
                self.call_after_refresh(widget.scroll_visible, animate=False, top=True)

            self.run_worker(load(), group="action", exit_on_error=False)

        self.app.push_screen(UserPickModal(f"Preview {self.app_name}'s payload for"), chosen)

    def action_edit(self) -> None:
        settings = self.data["app"]["settings"]
        options = [(Content.assemble(key.ljust(20), str(settings.get(key))), key) for key in SETTINGS]

        def chosen(key: str | None) -> None:
            if not key:
                return
            hint = "yes or no" if SETTINGS[key] is bool else "a number"
            current = settings.get(key)
            self.app.push_screen(
                InputModal(f"{self.app_name}: {key}", value="" if current is None else str(current), note=hint),
                lambda text: text is not None and self._set(key, text),
            )

        self.app.push_screen(PickModal(f"Edit {self.app_name}", options), chosen)

    def _set(self, key: str, text: str) -> None:
        def update(service: Service) -> dict:
            value = parse_setting(key, text)
            if value is None:  # update_app reads None as "not given"
                from provtui.domain.errors import InvalidInput

                raise InvalidInput(key, "clearing a setting is not supported yet")
            return service.update_app(self.app_name, **{key: value})

        self.act(update, self.app.service, done=f"{self.app_name}: {key} changed")

    def action_resume(self) -> None:
        confirm_resume(self, self.app_name, self.data["status"]["quarantine_reason"])

    def action_retry(self) -> None:
        self.act(self.app.service.retry, app_name=self.app_name, done=lambda n: f"{n} failed account(s) queued again")
