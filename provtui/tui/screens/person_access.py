"""Taking access away from a person, asked first with what it does: unassigning a direct app, and the
lifecycle steps that deactivate accounts (suspend, deactivate, delete).  The confirmation lists the apps
whose accounts will be deactivated, as the service's preview of the very change finds them (rules and
other paths included), and names the group that keeps an app the direct assignment no longer gives.
After the change, the page's banner says what it did while the provisioning below catches up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from textual.content import Content

from provtui.tui.text import shown
from provtui.tui.widgets.user_detail import MUTED

LOSS, GAIN = "$text-error", "$text-success"


class PersonPage(Protocol):
    """What these steps use of the person's page (UserDetailScreen), which calls them."""

    login: str
    data: dict[str, Any]

    @property
    def app(self) -> Any: ...
    def confirm(self, title: str, text: Any, then: Callable[[], None], **options: Any) -> None: ...
    def act(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None: ...
    def set_banner(self, banner: Any) -> None: ...
    def run_worker(self, work: Any, **options: Any) -> Any: ...


def _group_names(paths: list[str]) -> list[str]:
    """``group:eng`` -> ``group eng``: the paths as a sentence names them."""
    return [path.replace("group:", "group ", 1) for path in paths]


def losses_text(login: str, state: str, preview: dict[str, Any]) -> list[Any]:
    """The confirmation's lines on accounts: those deactivated, else why none is."""
    if preview["losses"]:
        return [("Accounts deactivated: ", f"bold {LOSS}"), ", ".join(map(shown, preview["losses"]))]
    if state != "active":
        return [(f"No account is deactivated: {shown(login)} is {state}.", MUTED)]
    return [(f"No account is deactivated: {shown(login)} has no app access now.", MUTED)]


def unassign_text(login: str, app: str, state: str, preview: dict[str, Any]) -> Content:
    parts: list[Any] = ["Remove the direct assignment of ", (shown(app), "bold"), f" from {shown(login)}?", "\n\n"]
    if preview["still_via"]:
        # another path keeps the app: nothing happens downstream, and the confirmation says why
        parts += [
            f"The {shown(app)} account stays: {shown(login)} also gets it through ",
            ", ".join(map(shown, _group_names(preview["still_via"]))),
            ".",
        ]
    else:
        parts += losses_text(login, state, preview)
    return Content.assemble(*parts)


def lifecycle_text(login: str, state: str, summary: str, preview: dict[str, Any]) -> Content:
    return Content.assemble(summary, ".", "\n\n", *losses_text(login, state, preview))


def change_banner(headline: list[Any], preview: dict[str, Any]) -> Content:
    """The banner after a change: what was done, the apps gained and lost, and that provisioning follows below."""
    parts = list(headline)
    if preview.get("gains"):
        parts += [" · ", ("+ " + ", ".join(map(shown, preview["gains"])), GAIN)]
    if preview.get("losses"):
        parts += [" · ", ("− " + ", ".join(map(shown, preview["losses"])), LOSS)]
    return Content.assemble(*parts, (" — provisioning below", MUTED))


def ask_and_unassign(screen: PersonPage, app: str) -> None:
    """Preview unassigning ``app`` from the person shown, ask (listing what it deactivates), then unassign."""
    login, state = screen.login, screen.data["view"]["state"]

    async def preview() -> None:
        result = await screen.app.call_service(screen.app.service.unassign_preview, app, login=login)
        headline = [("Unassigned ", "bold"), shown(app)]
        screen.confirm(
            "Unassign app",
            unassign_text(login, app, state, result),
            lambda: screen.act(
                screen.app.service.unassign, app, login=login, then=lambda _: screen.set_banner(change_banner(headline, result))
            ),
            confirm="Unassign",
            destructive=bool(result["losses"]),
        )

    screen.run_worker(preview(), group="action", exit_on_error=False)


def ask_and_change_state(screen: PersonPage, action: str, summary: str, run: Callable[[dict[str, Any]], None]) -> None:
    """Preview a lifecycle step that takes access away, ask (listing the accounts it deactivates), then ``run(preview)``."""
    login, state = screen.login, screen.data["view"]["state"]

    async def preview() -> None:
        result = await screen.app.call_service(screen.app.service.lifecycle_preview, login, action)
        screen.confirm(
            f"{action.title()} {shown(login)}", lifecycle_text(login, state, summary, result), lambda: run(result), confirm=action.title()
        )

    screen.run_worker(preview(), group="action", exit_on_error=False)
