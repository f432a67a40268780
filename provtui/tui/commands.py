"""The command palette (ctrl+p): users, groups, apps, group rules, screens and actions, by name.

Users are searched in the store (``service.list_users``, a page at a time) on
each keystroke, in a worker thread; groups, apps and rules are read once when the
palette opens.  Actions are the current screen's own key bindings (so "Move
group" or "Suspend" act on the user shown), plus the top-level screens.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from provtui.tui.text import shown
from provtui.tui.widgets.nav import NAV

USER_HITS = 8
# Actions on someone, from anywhere: pick the person, their page opens and the action starts.
PERSON_ACTIONS = (
    ("Move a user to another group…", "move"),
    ("Suspend a user…", "lifecycle('suspend')"),
    ("Unsuspend a user…", "lifecycle('unsuspend')"),
    ("Change a user's lifecycle state…", "choose_lifecycle"),
    ("Assign an app to a user…", "assign"),
    ("Unassign an app from a user…", "unassign"),
    ("Edit a user's profile…", "edit"),
)
USER_SCORE = 0.9  # a person found by the store's search ranks above fuzzy matches of other things


class ProvtuiCommands(Provider):
    async def startup(self) -> None:
        service = self.app.service

        def names() -> tuple[list[str], list[str], list[str]]:
            return (
                [g["name"] for g in service.list_groups()],
                [a["name"] for a in service.list_apps()],
                [r["name"] for r in service.rules().list()],
            )

        self.groups, self.apps, self.rules = await self.app.call_service(names)

    def _actions(self) -> list[tuple[str, str, str]]:
        """(description, key, action) of the current screen's enabled bindings that have ids."""
        screen = self.screen
        found = []
        for _key, binding in screen._bindings:
            if not binding.id or not binding.description or binding.action in ("back",):
                continue
            action_name = binding.action.partition("(")[0]
            if screen.check_action(action_name, action_params(binding.action)) is not True:
                continue
            # the long form (a tooltip) where the footer's description is short
            found.append((binding.tooltip or binding.description, self.app.get_key_display(binding), binding.action))
        return found

    def _run_action(self, action: str) -> None:
        self.app.call_later(self.screen.run_action, action)

    def _on_someone(self, title: str, action: str) -> None:
        from provtui.tui.screens.modals import UserPickModal

        def chosen(login: str | None) -> None:
            if login:
                self.app.open_user(login, then=action)

        self.app.push_screen(UserPickModal(title.rstrip("…")), chosen)

    def _global_actions(self) -> list[tuple[str, object]]:
        actions: list[tuple[str, object]] = [(title, partial(self._on_someone, title, action)) for title, action in PERSON_ACTIONS]
        actions += [
            ("Create a group…", partial(self._on_screen, "groups", "create")),
            ("Create a group rule…", partial(self._on_screen, "rules", "create")),
            ("Verify the audit trail's hash chain", partial(self._on_screen, "audit", "verify")),
            ("Retry all failed provisioning", partial(self._on_screen, "activity", "retry_all")),
        ]
        return actions

    def _on_screen(self, mode: str, action: str) -> None:
        self.app.action_go(mode)
        self.app.call_later(lambda: self.app.screen.run_action(action))

    async def discover(self) -> Hits:
        for description, key, action in self._actions():
            yield DiscoveryHit(description, partial(self._run_action, action), help=f"key {key}")
        for mode, key, label in NAV:
            yield DiscoveryHit(f"Go to {label}", partial(self.app.action_go, mode), help=f"key {key}")
        for title, command in self._global_actions():
            yield DiscoveryHit(title, command)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        service = self.app.service
        total, users = await self.app.call_service(service.list_users, query, limit=USER_HITS)
        for user in users:
            name = shown(user["displayName"] or user["login"])
            display = Content.assemble(
                ("user ", "dim"), matcher.highlight(name), ("  " + user["login"], "dim"), ("  " + user["state"], "dim")
            )
            yield Hit(USER_SCORE, display, partial(self.app.open_user, user["login"]), text=f"{name} {user['login']}")
        if total > len(users):
            yield Hit(
                USER_SCORE - 0.01,
                Content.styled(f"… {total - len(users):,} more users: search the directory", "dim"),
                partial(self._search_directory, query),
                text=query,
            )
        for kind, found, open_ in (
            ("group", self.groups, self.app.open_group),
            ("app", self.apps, self.app.open_app),
            ("rule", self.rules, self.app.open_rule),
        ):
            for name in found:
                score = matcher.match(name)
                if score > 0:
                    yield Hit(
                        score * 0.85, Content.assemble((f"{kind} ", "dim"), matcher.highlight(shown(name))), partial(open_, name), text=name
                    )
        for description, key, action in self._actions():
            score = matcher.match(description)
            if score > 0:
                yield Hit(
                    score * 0.8, matcher.highlight(description), partial(self._run_action, action), text=description, help=f"key {key}"
                )
        for title, command in self._global_actions():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score * 0.75, matcher.highlight(title), command, text=title)
        for mode, key, label in NAV:
            text = f"Go to {label}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score * 0.7, matcher.highlight(text), partial(self.app.action_go, mode), text=text, help=f"key {key}")

    def _search_directory(self, query: str) -> None:
        from textual.widgets import Input

        self.app.action_go("directory")

        def fill() -> None:
            field = self.app.screen.query_one("#search", Input)
            field.value = query
            field.focus()

        self.app.call_later(fill)


def action_params(action: str) -> tuple[object, ...]:
    """The literal parameters of an action string such as ``lifecycle('suspend')``."""
    import ast

    _, open_paren, rest = action.partition("(")
    if not open_paren:
        return ()
    try:
        value = ast.literal_eval(f"({rest.rstrip(')')},)")
    except (ValueError, SyntaxError):
        return ()
    return tuple(value)
