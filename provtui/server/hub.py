"""The server's one store, served to many actors: a Service per OS user, one lock, one engine's guard.

Every call runs as the peer the kernel named, through the same facade the embedded CLI uses, so the roles
are the service's own; the hub adds only what a shared server needs: a caller with no role at all is
refused before anything runs, and every refusal is audited (``access.refused``; for a caller with no role,
once a minute at most, so a hostile local user cannot flood the trail).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from provtui.compose import push_password, run_sync
from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.protocol.api import NO_RESULT, PARTS
from provtui.service import Service
from provtui.store.vault import SecretVault

REFUSAL_AUDIT_SECONDS = 60.0  # a caller with no role is audited this often at most
Call = tuple[str, str, Callable[[Service], Any], Callable[[], None] | None]  # actor, request, fn, check: a batch's call


def bound(method: str, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Callable[[], Any]:
    """``fn`` with a client's arguments, once they fit its signature (else bad input, exit 2)."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as error:
        raise InvalidInput("params", f"{method}: {error}") from None
    return lambda: fn(*args, **kwargs)


class ServiceHub:
    def __init__(self, service: Service, *, vault: SecretVault | None = None):
        self.root = service  # the server's own user: the store's super admin, who runs the engine
        self.vault = vault
        self.lock = threading.Lock()  # every store access: the calls' threads and the engine's
        self._services: dict[str, Service] = {}
        self._refused: dict[str, float] = {}

    def service_for(self, actor: str) -> Service:
        service = self._services.get(actor)
        if service is None:
            service = self._services[actor] = Service(self.root.store, actor, directory=self.root.directory, vault=self.vault)
        return service

    def locked(self, actor: str, request: str, fn: Callable[[Service], Any]) -> Any:
        """``fn(actor's service)`` under the lock, once the actor is known as an admin; a refusal is audited."""
        with self.lock:
            self.root.refresh()  # another process may have committed (an embedded command run as the server's user)
            return self._run_as(actor, request, fn)

    def _run_as(self, actor: str, request: str, fn: Callable[[Service], Any]) -> Any:
        """``fn(actor's service)``, under the lock held by the caller; a refusal is audited."""
        service = self.admin(actor, request)
        try:
            return fn(service)
        except NotAllowed as refused:
            service.record_refusal(request, str(refused))
            raise

    def locked_batch(self, calls: list[Call]) -> list[tuple[bool, Any]]:
        """Several calls (actor, request, fn, check) under the lock at once: ``batch_held``'s outcomes."""
        with self.lock:
            return self.batch_held(calls)

    def batch_held(self, calls: list[Call]) -> list[tuple[bool, Any]]:
        """Several calls (actor, request, fn, check), the lock held by the caller, their commits made durable
        together by one fsync when the last is done (the store's group commit): (True, its result) or (False, its
        exception) for each, in order — one's failure is its own.  A call's ``check`` (if any) runs first, before
        the actor's role is looked at: what the caller must verify against the store as it is now.  None may be
        acknowledged before this returns."""
        outcomes: list[tuple[bool, Any]] = []
        self.root.refresh()
        with self.root.store.deferred_sync():
            for actor, request, fn, check in calls:
                try:
                    if check is not None:
                        check()
                    outcomes.append((True, self._run_as(actor, request, fn)))
                except Exception as error:  # the caller's to raise, in its own request
                    outcomes.append((False, error))
        return outcomes

    def call(self, actor: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run the facade's (or a part's) ``method`` as ``actor``; in a thread (it blocks), one call at a time."""

        def run(service: Service) -> Any:
            part, _, name = method.rpartition(".")
            target = getattr(service, part)() if part in PARTS else service
            result = bound(method, getattr(target, name), args, kwargs)()
            return None if method in NO_RESULT else result

        return self.locked(actor, method, run)

    def admin(self, actor: str, request: str) -> Service:
        """``actor``'s service, if they hold any role here; else refused (exit 4), and the refusal audited."""
        service = self.service_for(actor)
        if not service.grants():
            now = time.monotonic()
            if now - self._refused.get(actor, -REFUSAL_AUDIT_SECONDS) >= REFUSAL_AUDIT_SECONDS:
                self._refused[actor] = now
                service.record_refusal(request, "not an admin of this store")
            raise NotAllowed(f"{actor} may not {request}: {actor} holds no role here (a super-admin grants one: `provtui admin grant`)")
        return service

    # -- the server's own calls (provtui.protocol.api.SERVER): coroutines on its event loop ----------------

    async def sync(self, actor: str, max_wait: float = 300.0) -> Any:
        """``provtui sync`` for ``actor``: an engine run to idle over the apps they may provision."""
        service = self.locked(actor, "sync", lambda s: s)
        try:
            return await run_sync(service, max_wait=max_wait, guard=self.lock)
        except NotAllowed as refused:
            with self.lock:
                service.record_refusal("sync", str(refused))
            raise

    async def set_password(self, actor: str, login: str, password: str | None) -> list[dict[str, Any]]:
        """``provtui user password``: pushed by this server's engine to the apps that sync passwords, and recorded."""

        def prepare(service: Service) -> tuple[Service, list[dict[str, Any]], str | None]:
            targets = service.password_targets(login)
            return service, targets, (None if password is None or not targets else service.check_password(password))

        service, targets, checked = self.locked(actor, "set_password", prepare)
        return await push_password(service, login, targets, checked, guard=self.lock) if targets else []

    async def check_store(self, actor: str) -> dict[str, Any]:
        """``provtui store check``: the server's own store's files, checked by the server (it alone reads them)."""
        return await asyncio.to_thread(self.locked, actor, "check_store", lambda service: service.check_store(service.location))
