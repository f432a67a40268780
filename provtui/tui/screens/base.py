"""What every provtui screen shares: the frame (header, the line of screens, footer), loading in a worker,
following the store, running a change with or without confirmation, and greying out what the actor may not do.

A screen implements ``read(service)`` (runs in a worker thread, under the service
lock: one consistent read) and ``show(data)`` (on the event loop, renders).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import Worker

from provtui.tui.messages import StoreChanged
from provtui.tui.screens.modals import ConfirmModal
from provtui.tui.widgets.nav import NavBar

if TYPE_CHECKING:
    from provtui.service import Service


class BaseScreen(Screen):
    NAV: ClassVar[str] = ""  # the top-level screen this one belongs to (marked in the line of screens)
    # escape ("Back") is an app binding: a screen binds it only to do something first (clear a filter)

    def __init__(self) -> None:
        super().__init__()
        self.data: Any = None
        # action name -> True: enabled, False: greyed out (the actor may not), None: hidden (makes no sense here)
        self.allowed: dict[str, bool | None] = {}

    # -- frame ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar(self.NAV)
        yield from self.compose_body()
        yield Footer(show_command_palette=False)  # ctrl+p is an app binding that shows itself

    def compose_body(self) -> ComposeResult:
        yield from ()

    # -- loading ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """Runs on the event loop before ``read``: what it needs from the widgets (filters, pages)."""
        return {}

    def read(self, service: Service, **params: Any) -> Any:
        """Runs in a worker thread, so it must not touch widgets: everything the screen shows, in one service call."""
        return None

    def show(self, data: Any) -> None:
        """Runs on the event loop: render ``data``."""

    @work(exclusive=True, group="load", exit_on_error=False)
    async def reload(self) -> None:
        data = await self.app.call_service(self.read, self.app.service, **self.params())
        self.data = data
        self.show(data)
        self.refresh_bindings()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_store_changed(self, _: StoreChanged) -> None:
        if self.is_current:
            self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.app.report_worker_error(event.worker)

    # -- permissions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greyed out (None) when the actor may not; hidden (False) when it makes no sense here."""
        state = self.allowed.get(action, True)
        if state is True:
            return True
        return None if state is False else False

    # -- changing things ---------------------------------------------------------------------

    @work(group="action", exit_on_error=False)
    async def act(
        self,
        fn: Callable[..., Any],
        *args: Any,
        done: str | Callable[[Any], str] | None = None,
        then: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run one service change in a worker; say ``done``, call ``then`` with the result, refresh every screen."""
        result = await self.app.call_service(fn, *args, **kwargs)
        if done:
            self.notify(done(result) if callable(done) else done, markup=False)
        if then is not None:
            then(result)
        self.app.store_changed()
        return result

    def confirm(
        self, title: str, body: str | Content, then: Callable[[], None], *, confirm: str = "Confirm", destructive: bool = True
    ) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmModal(title, body, confirm=confirm, destructive=destructive), answered)

    def action_back(self) -> None:
        self.app.go_back()
