"""The detail pane: one user's profile, groups, and apps with why they are entitled."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from provtui.tui.text import shown

# Shown in the summary lines at the top rather than in the profile list.
SUMMARY_KEYS = {"displayName", "login", "email", "title", "department", "location", "firstName", "lastName"}
STATE_STYLE = {
    "active": "$text-success",
    "staged": "$text-primary",
    "suspended": "$text-warning",
    "deprovisioned": "$text-error",
    "deleted": "$text-muted",
}
ACCOUNT_STYLE = {
    "active": "$text-success",
    "pending": "$text-primary",
    "error": "$text-error",
    "failed": "$text-error",
    "deactivated": "$text-warning",
    "none": "$text-muted",
}
HEADING = "bold $text-accent"
MUTED = "$text-muted"

Part = str | tuple[str, str]


def _table(header: tuple[str, ...], rows: list[tuple[Part, ...]]) -> list[Part]:
    """Rows of cells padded to their column's width, under a muted header."""

    def text(cell: Part) -> str:
        return cell if isinstance(cell, str) else cell[0]

    widths = [max(len(text(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    parts: list[Part] = []
    for row in [tuple((h, MUTED) for h in header), *rows]:
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(text(cell)) + 2) if i < len(row) - 1 else "\n"
            parts += [cell, pad]
    return parts


def render_user(view: dict) -> Content:
    """``service.user_view`` as text: who, apps (with entitlement paths and accounts), groups, profile.
    Every value is ``shown``: a name from an import may hold ESC or a newline."""
    view = {
        **view,
        "login": shown(view["login"]),
        "source": shown(view["source"]),
        "profile": {shown(k): shown(v) for k, v in view["profile"].items()},
        "groups": [shown(g) for g in view["groups"]],
        "apps": [
            {
                **app,
                "app": shown(app["app"]),
                "via": [shown(v) for v in app["via"]],
                "account": {
                    **app["account"],
                    "last_error": shown(app["account"]["last_error"])
                    if app["account"].get("last_error")
                    else app["account"].get("last_error"),
                },
            }
            for app in view["apps"]
        ],
    }
    profile = view["profile"]
    job = ", ".join(str(profile[k]) for k in ("title", "department") if profile.get(k))
    parts: list[Part] = [
        (profile.get("displayName") or view["login"], "bold"),
        "  ",
        (view["state"], f"bold {STATE_STYLE.get(view['state'], '')}"),
        "\n",
        (" · ".join(filter(None, [view["login"], profile.get("email")])), MUTED),
        "\n",
    ]
    if job or profile.get("location"):
        parts += [" · ".join(filter(None, [job, profile.get("location")])), "\n"]

    parts += ["\n", ("Apps", HEADING), "\n"]
    if view["apps"]:
        rows: list[tuple[Part, ...]] = []
        for app in view["apps"]:
            state = app["account"]["state"]
            via = ", ".join(app["via"])
            if not app["entitled"]:  # a path but an inactive user, or an account left behind
                via = (f"{via} (not entitled)" if via else "not entitled", "$text-warning")
            rows.append(((app["app"], "bold"), (state, ACCOUNT_STYLE.get(state, "")), via))
        parts += _table(("App", "Account", "Via"), rows)
        for app in view["apps"]:
            if app["account"]["last_error"]:
                parts += [(f"{app['app']}: {app['account']['last_error']}", "$text-error"), "\n"]
    else:
        parts += [("none", MUTED), "\n"]

    parts += ["\n", ("Groups", HEADING), "\n", ", ".join(view["groups"]) or ("none", MUTED), "\n"]

    extra = {k: v for k, v in profile.items() if k not in SUMMARY_KEYS}
    extra["source"] = view["source"]
    width = max(map(len, extra))
    parts += ["\n", ("Profile", HEADING), "\n"]
    for key in sorted(extra):
        parts += [(key.ljust(width), MUTED), "  ", str(extra[key]), "\n"]
    return Content.assemble(*parts).rstrip()


def render_values(apps: list[dict]) -> Content | None:
    """Per app, the values its mappings read (``assignment.KEY``) and the path each comes from; None: no values."""
    rows = [app for app in apps if app["values"]]
    if not rows:
        return None
    parts: list[Any] = [("Assignment values", HEADING), ("  each from the path that wins it", MUTED), "\n"]
    width = max(len(app["app"]) for app in rows)
    pairs = [f"{key}={value}" for app in rows for key, value in app["values"].items()]
    value_width = min(32, max(map(len, pairs)))
    for app in rows:
        for i, (key, value) in enumerate(sorted(app["values"].items())):
            parts += [
                (app["app"] if i == 0 else "").ljust(width),
                "  ",
                shown(f"{key}={value}").ljust(value_width),
                "  ",
                (shown(app["values_via"][key]), MUTED),
                "\n",
            ]
    return Content.assemble(*parts).rstrip()


class UserDetail(VerticalScroll, can_focus=True):
    """Scrollable pane showing the highlighted user."""

    DEFAULT_CSS = """
    UserDetail { padding: 0 1; scrollbar-size-vertical: 1; }
    UserDetail > Static { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("No user selected", MUTED))

    def show_user(self, view: dict | None, message: str = "No user selected") -> None:
        body = render_user(view) if view else Content.styled(message, MUTED)
        self.query_one(Static).update(body)
