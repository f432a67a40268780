"""The directory: search and filter users, see one user's groups, apps and accounts; select people and change
them in bulk.

space selects the person under the cursor (and moves on, as in ranger and mc), * everyone the search shows, esc
clears the selection before the search; b opens the bulk dialog (screens.bulk) on the people selected, or, with
nobody selected, on those the search and filters show.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Select, Static
from textual.worker import Worker

from provtui.domain.errors import NotFound, ProvtuiError
from provtui.tui.messages import StoreChanged
from provtui.tui.screens.bulk import BulkModal, result_text
from provtui.tui.screens.modals import PickModal
from provtui.tui.widgets.nav import NavBar
from provtui.tui.widgets.user_detail import UserDetail
from provtui.tui.widgets.user_table import UserTable

if TYPE_CHECKING:
    from provtui.service import Service

STATE_FILTERS = ("all", "active", "staged", "suspended", "deprovisioned")
DETAIL_DEBOUNCE = 0.05  # holding down an arrow should not load every user on the way


SCOPES = ("group", "app", "source")
# Through a server, a search shows its first page at once, then the rest: 50,000 rows are 9 MB over the socket.
FIRST_PAGE = 200  # the other filters: one name each, set with f
QUERIED_ROWS = 2000  # where the directory is read by query (a million people, say): rows a list holds at most
QUERIED_COUNT = 10_000  # there, matches counted at most ("10,000+"): counting a million reads a million rows


def search(
    service: Service,
    text: str,
    state: str | None,
    scope: dict[str, str] | None = None,
    *,
    limit: int | None = None,
    count_up_to: int | None = None,
) -> tuple[list[dict], int, int, int]:
    """(matching summaries, the first ``limit`` of them; number of users in the store; queue length; how many
    match, past ``count_up_to`` counted as one more): one locked call."""
    scope = scope or {}
    matching, rows = service.list_users(text, state=state, limit=limit, count_up_to=count_up_to, **scope)
    everyone = service.user_count() if text or state or scope or count_up_to is not None else matching
    return rows, everyone, service.pending_work(), matching


def _warm(service: Service) -> None:
    """The search rows brought into the database's memory (Service.warm_search), in a daemon thread, not a
    worker: quitting the console does not wait for it (seconds, at millions of people)."""
    with contextlib.suppress(Exception):  # (best effort: a cold search is slower, not wrong; a search says what fails)
        service.warm_search()


def counted(matching: int, up_to: int | None) -> str:
    return f"{up_to:,}+" if up_to is not None and matching > up_to else f"{matching:,}"


def scope_choices(service: Service) -> dict[str, list[str]]:
    """The names each filter can take: groups, apps, sources (provtui itself among them)."""
    return {
        "group": [g["name"] for g in service.list_groups()],
        "app": [a["name"] for a in service.list_apps()],
        "source": ["provtui", *sorted(s["name"] for s in service.list_sources())],
    }


class DirectoryScreen(Screen):
    CSS_PATH = "directory.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # At 80 columns the footer holds b beside the filters; space and * are in ? (tests/console/test_tui_footer.py).
    BINDINGS = [
        Binding("escape", "clear_search", "Clear/Back", id="directory.clear_search", tooltip="Clear the selection, then the search"),
        Binding("ctrl+t", "cycle_state", "State filter", id="directory.cycle_state"),
        Binding("f", "filter", "Filter", id="directory.filter"),
        Binding("b", "bulk", "Bulk", id="directory.bulk", tooltip="Bulk change the people selected (or shown)"),
        Binding("space", "toggle_selected", "Select", id="directory.toggle_selected", show=False, tooltip="Select or unselect a person"),
        Binding("asterisk", "select_shown", "Select all", id="directory.select_shown", show=False, tooltip="Select everyone shown"),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scope: dict[str, str] = {}  # group / app / source filters (see SCOPES)
        self._found = Content("")  # the status line's account of the search (the selection's goes before it)

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar("directory")
        with Horizontal(id="bar"):
            yield Input(placeholder="Search login, name, email  (/)", id="search")
            yield Select([(s.title(), s) for s in STATE_FILTERS], value="all", allow_blank=False, id="state")
        with Container(id="body"):
            yield UserTable(id="users")
            yield UserDetail(id="detail")
        yield Static(id="status")
        yield Footer(show_command_palette=False)  # ctrl+p is an app binding that shows itself

    def on_mount(self) -> None:
        self.query_one(UserTable).focus()
        self.run_search()

    @property
    def state_filter(self) -> str | None:
        value = self.query_one("#state", Select).value
        return None if value == "all" else str(value)

    # -- searching -----------------------------------------------------------------------

    _searches_asked = 0  # the latest search asked for is the only one worth running
    _searches_done = 0  # the latest search whose every row is shown
    _open_when_one: int | None = None  # Enter was pressed in the search: open the one hit of this search, if one
    _filters_asked: tuple | None = None  # the filters of the latest search asked for

    def _filters(self) -> tuple:
        return self.query_one("#search", Input).value, self.state_filter, tuple(sorted(self.scope.items()))

    def run_search(self) -> None:
        """Search with the current filters now, not after a pause in typing: a search of 50,000 users takes
        milliseconds.  A newer search supersedes this one (see ``_search``)."""
        self._searches_asked += 1
        self._filters_asked = self._filters()
        self._search(self._searches_asked)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _search(self, asked: int) -> None:
        # A newer search cancels this worker (exclusive), so stale rows are never shown, and one still waiting
        # for the service lock when a newer one is asked for is skipped: a burst of keys costs no stale scans.
        text, state, scope = self.query_one("#search", Input).value, self.state_filter, dict(self.scope)
        queried = self.app.reads_by_query
        first = FIRST_PAGE if queried or getattr(self.app.service, "remote", False) else None
        rest = QUERIED_ROWS if queried else None  # (typing narrows a million; nobody scrolls through it)
        try:
            found = await self.app.call_service(self._search_if_latest, asked, text, state, scope, first)
            if found is not None and len(found[0]) < min(found[3], rest or found[3]):
                self._show_found(text, state, scope, *found)
                found = await self.app.call_service(self._search_if_latest, asked, text, state, scope, rest)
        except ProvtuiError as error:  # the group, app or source was renamed or removed meanwhile
            self.notify(str(error), title="Filter cleared", severity="warning", markup=False)
            self._set_scope({})
            return
        if found is not None:
            self._show_found(text, state, scope, *found)
            if asked == 1 and queried and not getattr(self.app.service, "remote", False):  # the first rows are shown
                threading.Thread(target=_warm, args=(self.app.service,), name="warm-search", daemon=True).start()
            self._searches_done = asked
            if self._open_when_one == asked:
                self._open_the_one_hit()

    def _open_the_one_hit(self) -> None:
        """Enter on a search with exactly one hit opens it (the helpdesk's move: name, Enter, then the action)."""
        self._open_when_one = None
        rows = self.query_one(UserTable).rows
        if len(rows) == 1:
            self.app.open_user(rows[0]["login"])

    def _show_found(self, text: str, state: str | None, scope: dict[str, str], rows: list[dict], everyone: int, queued: int,
                    matching: int) -> None:  # fmt: skip
        table = self.query_one(UserTable)
        table.set_rows(rows)
        if table.highlighted is None:
            self.query_one(UserDetail).show_user(None, "No users match")
        filters = "".join(
            [f" matching “{text}”" if text else "", f" · {state}" if state else "", *(f" · {kind} {name}" for kind, name in scope.items())]
        )
        # Content, not markup: the search text may hold "["
        self._found = Content(f"{counted(matching, self._count_up_to)} of {everyone:,} users{filters} · {queued:,} queued for sync")
        self._show_status()

    def _show_status(self) -> None:
        table = self.query_one(UserTable)
        chosen = len(table.selected)
        if not chosen:
            self.query_one("#status", Static).update(self._found)
            return
        hidden = chosen - table.selected_shown()
        selected = Content.styled(f"{chosen:,} selected" + (f" ({hidden:,} not shown)" if hidden else ""), "bold $text-accent")
        self.query_one("#status", Static).update(Content.assemble(selected, " · b bulk · esc clears · ", self._found))

    def _search_if_latest(
        self, asked: int, text: str, state: str | None, scope: dict[str, str], limit: int | None
    ) -> tuple[list[dict], int, int, int] | None:
        """In the service thread: ``search``, unless a newer search was asked for while this one waited."""
        if asked != self._searches_asked:
            return None
        return search(self.app.service, text, state, scope, limit=limit, count_up_to=self._count_up_to)

    @property
    def _count_up_to(self) -> int | None:
        """How far a search counts its matches: exact unless the directory is read by query."""
        return QUERIED_COUNT if self.app.reads_by_query else None

    @on(Input.Changed, "#search")
    @on(Select.Changed, "#state")
    def _filters_changed(self) -> None:
        if self._filters() != self._filters_asked:  # the Select says it changed as it mounts: no second search
            self.run_search()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one(UserTable).focus()
        if self._searches_done == self._searches_asked:
            self._open_the_one_hit()
        else:  # the search typed so far is still running: once its rows are in
            self._open_when_one = self._searches_asked

    def action_clear_search(self) -> None:
        """escape: clear the selection, else the search; with nothing to clear, back to the previous screen."""
        table = self.query_one(UserTable)
        if table.selected:
            table.unselect()
            self._show_status()
            return
        field = self.query_one("#search", Input)
        if not field.value and self.state_filter is None and not self.scope and not field.has_focus:
            self.app.go_back()
            return
        if not field.value and not field.has_focus and self.scope:  # then the group, app and source filters
            self._set_scope({})
        field.value = ""
        self.query_one(UserTable).focus()

    @work(group="action", exit_on_error=False)
    async def action_filter(self) -> None:
        """f: show only the members of a group, the users an app reaches, or those a source masters."""
        choices = await self.app.call_service(scope_choices, self.app.service)
        kinds = [(f"By {kind}…" + (f"  (now {self.scope[kind]})" if kind in self.scope else ""), kind) for kind in SCOPES]
        if self.scope:
            kinds.append(("Clear these filters", "clear"))

        def kind_chosen(kind: str | None) -> None:
            if kind == "clear":
                self._set_scope({})
            elif kind is not None:
                self.app.push_screen(
                    PickModal(f"Users by {kind}", [(n, n) for n in choices[kind]]),
                    lambda name: name is not None and self._set_scope({**self.scope, kind: name}),
                )

        self.app.push_screen(PickModal("Filter users", kinds), kind_chosen)

    def _set_scope(self, scope: dict[str, str]) -> None:
        self.scope = scope
        self.run_search()

    def action_cycle_state(self) -> None:
        select = self.query_one("#state", Select)
        select.value = STATE_FILTERS[(STATE_FILTERS.index(str(select.value)) + 1) % len(STATE_FILTERS)]

    # -- selecting, and changing people in bulk --------------------------------------------

    def action_toggle_selected(self) -> None:
        """space: select the person under the cursor, or unselect them; then the next, to select a run quickly."""
        table = self.query_one(UserTable)
        login = table.highlighted
        if login is None:
            return
        table.toggle_selected(login)
        table.action_cursor_down()
        self._show_status()

    def action_select_shown(self) -> None:
        """*: select everyone the search shows; when they all are, unselect them."""
        table = self.query_one(UserTable)
        logins = [row["login"] for row in table.rows]
        if logins and all(login in table.selected for login in logins):
            table.unselect(logins)
        else:
            table.select_logins(logins)
        self._show_status()

    def _searched(self) -> bool:
        text, state, scope = self._filters()
        return bool(text.strip() or state or scope)

    def action_bulk(self) -> None:
        """b: the bulk dialog, on the people selected; with nobody selected, on everyone a search or filter shows."""
        table = self.query_one(UserTable)
        if table.selected:
            people, who = sorted(table.selected), f"{len(table.selected):,} selected"
        elif not self._searched():
            self.notify("Select people first (space; * selects everyone shown), or search for them", severity="warning")
            return
        elif self._searches_done != self._searches_asked:  # the rows are not the search's yet: wait for them
            self.notify("The search is still running: b again in a moment", severity="warning")
            return
        else:
            people, who = [row["login"] for row in table.rows], f"the {table.row_count:,} shown"
            if not people:
                self.notify("Nobody matches the search", severity="warning")
                return
        self.app.push_screen(BulkModal(people, who), self._bulk_done)

    def _bulk_done(self, result: dict | None) -> None:
        if result is None:  # cancelled: the selection stays, to change it or choose another action
            return
        self.query_one(UserTable).unselect()
        self._show_status()
        self.notify(result_text(result), title="Bulk change", markup=False)

    # -- the detail pane -----------------------------------------------------------------

    @on(UserTable.UserHighlighted)
    def _user_highlighted(self, event: UserTable.UserHighlighted) -> None:
        self.load_detail(event.login)

    @on(UserTable.UserSelected)
    def _user_selected(self, event: UserTable.UserSelected) -> None:
        self.app.open_user(event.login)

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load_detail(self, login: str, debounce: float = DETAIL_DEBOUNCE) -> None:
        await asyncio.sleep(debounce)
        try:
            view = await self.app.call_service(self.app.service.user_view, login)
        except NotFound:
            view = None  # renamed or removed by another process since the search
        self.query_one(UserDetail).show_user(view, f"{login} no longer exists")

    # -- keeping up with the store ----------------------------------------------------------

    def on_screen_resume(self) -> None:
        if self.query_one(UserTable).row_count:  # back from a user's page, or another screen: catch up
            self.on_store_changed(StoreChanged())

    def on_store_changed(self, _: StoreChanged) -> None:
        self.run_search()
        login = self.query_one(UserTable).highlighted
        if login is not None:
            self.load_detail(login, debounce=0)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.app.report_worker_error(event.worker)
