"""The server's one store, served to many actors: a Service per OS user, one lock, one engine's guard.

Every call runs as the peer the kernel named, through the same facade the embedded CLI uses, so the roles
are the service's own; the hub adds only what a shared server needs: a caller with no role at all is
refused before anything runs, and every refusal is audited (``access.refused``; for a caller with no role,
once a minute at most, so a hostile local user cannot flood the trail).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from provtui.compose import build_engine
from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.protocol.api import NO_RESULT, PARTS
from provtui.service import Service

REFUSAL_AUDIT_SECONDS = 60.0  # a caller with no role is audited this often at most


class ServiceHub:
    def __init__(self, service: Service, *, secrets: Any = None):
        self.root = service  # the server's own user: the store's super admin, who runs the engine
        self.secrets = secrets
        self.lock = threading.Lock()  # every store access: the calls' threads and the engine's
        self._services: dict[str, Service] = {}
        self._refused: dict[str, float] = {}

    def service_for(self, actor: str) -> Service:
        service = self._services.get(actor)
        if service is None:
            kwargs = {"vault": self.secrets} if self.secrets is not None else {}
            service = self._services[actor] = Service(self.root.store, actor, directory=self.root.directory, **kwargs)
        return service

    def call(self, actor: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run ``method`` as ``actor``; in a thread (it blocks), one call at a time."""
        with self.lock:
            self.root.refresh()  # another process may have committed (an embedded command run as the server's user)
            service = self.admin(actor, method)
            part, _, name = method.rpartition(".")
            target = getattr(service, part)() if part in PARTS else service
            try:
                result = getattr(target, name)(*args, **kwargs)
            except NotAllowed as refused:
                self._audit_refusal(service, method, str(refused))
                raise
            except TypeError as error:  # the arguments do not fit the method: bad input, not a server fault
                if error.__traceback__ is not None and error.__traceback__.tb_next is None:
                    raise InvalidInput("params", f"{method}: {error}") from None
                raise
            return None if method in NO_RESULT else result

    def admin(self, actor: str, request: str) -> Service:
        """``actor``'s service, if they hold any role here; else refused (exit 4), and the refusal audited."""
        service = self.service_for(actor)
        if not service.grants():
            now = time.monotonic()
            if now - self._refused.get(actor, -REFUSAL_AUDIT_SECONDS) >= REFUSAL_AUDIT_SECONDS:
                self._refused[actor] = now
                self._audit_refusal(service, request, "not an admin of this store")
            raise NotAllowed(f"{actor} may not {request}: {actor} holds no role here (a super-admin grants one: `provtui admin grant`)")
        return service

    def _audit_refusal(self, service: Service, request: str, reason: str) -> None:
        service.record_refusal(request, reason)

    def locked(self, actor: str, request: str, fn: Callable[[Service], Any]) -> Any:
        """``fn(actor's service)`` under the lock, once the actor is known as an admin (for the server's own calls)."""
        with self.lock:
            self.root.refresh()
            return fn(self.admin(actor, request))

    # -- the server's own calls: they run its engine, on its event loop -------------------------------------

    async def sync(self, actor: str, max_wait: float = 300.0) -> Any:
        """``provtui sync`` for ``actor``: an engine run to idle over the apps they may provision."""
        service = self.locked(actor, "sync", lambda s: s)
        engine = build_engine(service, guard=self.lock)
        try:
            return await engine.run_until_idle(max_wait=max_wait, probe=True)
        except NotAllowed as refused:
            with self.lock:
                self._audit_refusal(service, "sync", str(refused))
            raise
        finally:
            await engine.aclose()

    async def set_password(self, actor: str, login: str, password: str | None) -> list[dict[str, Any]]:
        """``provtui user password``: a new password (``None``: a random one per app) pushed to the apps that
        sync passwords, and recorded (never the password) as the embedded command does."""
        from provtui.domain.passwords import random_password

        def prepare(service: Service) -> tuple[Service, list[dict[str, Any]], str | None]:
            targets = service.password_targets(login)
            return service, targets, (None if password is None or not targets else service.check_password(password))

        service, targets, checked = self.locked(actor, "set_password", prepare)
        if not targets:
            return []
        passwords = {t["app_id"]: checked or random_password() for t in targets}
        engine = build_engine(service, guard=self.lock)
        try:
            results = await engine.push_passwords(targets, passwords)
        finally:
            await engine.aclose()
        self.locked(actor, "set_password", lambda s: s.record_password_change(login, results, random=password is None))
        return results
