"""The composition root: where the faces (CLI, console, demo, worker) build the engine and the console
around a service, and hand each what it needs -- the console's lock to the engine it runs, above all.
The service never builds an engine; the engine never reaches back for the service."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provtui.engine import Reconciler
    from provtui.engine.outcomes import SyncReport
    from provtui.service import Service
    from provtui.tui.app import ProvtuiApp


def build_engine(service: Service, **kwargs: Any) -> Reconciler:
    """The engine that provisions the service's store: each run authorised when it starts (the service's
    provisioning scope: only the apps the actor may provision), its audit naming the actor."""
    from provtui.engine import Reconciler  # here: a console attached to a server never loads the engine

    vault = getattr(service, "vault", None)
    kwargs.setdefault("secrets", vault.lookup if vault is not None else None)
    return Reconciler(service.store, service.directory, run_by=service.actor, scope=service.provisioning_scope, **kwargs)


def build_console(service: Service, *, engine: bool | dict[str, Any] = True, label: str | None = None) -> ProvtuiApp:
    """The console over ``service``, running an engine (``engine``: its options) when the actor may provision;
    the engine holds the lock the console's threads take, so neither sees the other's half-applied commit."""
    from provtui.tui.app import ProvtuiApp

    lock = threading.Lock()
    if getattr(service, "remote", False):  # the server runs the engine; the console follows its events
        return ProvtuiApp(service, engine=None, lock=lock, label=label or service.label)  # type: ignore[arg-type]
    # On a shared (PostgreSQL) store `provtui worker`s provision, and a console that ran an engine would hold the
    # whole directory; it shows what they do instead (its reads stay a page's worth).
    runs = engine is not False and service.may_provision() and (isinstance(engine, dict) or not service.shared_store())
    options = engine if isinstance(engine, dict) else {}
    return ProvtuiApp(service, engine=build_engine(service, guard=lock, **options) if runs else None, lock=lock, label=label)


# -- the engine's one-off runs: `provtui sync` and `provtui user password`, embedded or in a server ----------


def sync(service: Any, *, max_wait: float, progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """`provtui sync`: through a server, its engine runs it (over the apps this admin may provision); else here."""
    if getattr(service, "remote", False):
        report: SyncReport = service.sync(max_wait)
        return report
    return asyncio.run(run_sync(service, max_wait=max_wait, progress=progress))


async def run_sync(
    service: Service, *, max_wait: float, guard: AbstractContextManager | None = None, progress: Callable[[int, int], None] | None = None
) -> SyncReport:
    """One engine run to idle, authorised first (NotAllowed: nothing touched), waiting out transient faults."""
    engine = build_engine(service, guard=guard)
    engine.progress = progress
    try:
        return await engine.run_until_idle(max_wait=max_wait, probe=True)
    finally:
        await engine.aclose()


def change_password(service: Any, login: str, targets: list[dict[str, Any]], password: str | None) -> list[dict[str, Any]]:
    """`provtui user password`: through a server, its engine pushes and records it; else here."""
    if getattr(service, "remote", False):
        results: list[dict[str, Any]] = service.set_password(login, password)
        return results
    return asyncio.run(push_password(service, login, targets, password))


async def push_password(
    service: Service, login: str, targets: list[dict[str, Any]], password: str | None, *, guard: AbstractContextManager | None = None
) -> list[dict[str, Any]]:
    """``password`` (None: a random one per app) pushed to ``targets`` (the apps that sync passwords), then the
    change recorded, never the password."""
    from provtui.domain.passwords import random_password

    passwords = {t["app_id"]: password or random_password() for t in targets}
    engine = build_engine(service, guard=guard)
    try:
        results = await engine.push_passwords(targets, passwords)
    finally:
        await engine.aclose()
    with guard or nullcontext():
        service.record_password_change(login, results, random=password is None)
    return results
