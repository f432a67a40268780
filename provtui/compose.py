"""The composition root: where the faces (CLI, console, demo, worker) build the engine and the console
around a service, and hand each what it needs -- the console's lock to the engine it runs, above all.
The service never builds an engine; the engine never reaches back for the service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from provtui.engine import Reconciler

if TYPE_CHECKING:
    from provtui.service import Service
    from provtui.tui.app import ProvtuiApp


def build_engine(service: Service, **kwargs: Any) -> Reconciler:
    """The engine that provisions the service's store: each run authorised when it starts (the service's
    provisioning scope: only the apps the actor may provision), its audit naming the actor."""
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
    runs = engine is not False and service.may_provision()
    options = engine if isinstance(engine, dict) else {}
    return ProvtuiApp(service, engine=build_engine(service, guard=lock, **options) if runs else None, lock=lock, label=label)
