"""Probing the apps whose credentials were rejected: one authenticated read each, that changes nothing.

A probe is due once the app's back-off has passed (provtui.engine.health), at once when its record changed since
the refusal (a new endpoint or secret reference: connection_fingerprint), or always when forced (a sync).  An app
that answers has its pause lifted, and its queued work proceeds; one that refuses again, or does not answer, stays
paused and is probed again after a longer back-off.
"""

from __future__ import annotations

from collections.abc import Callable

from provtui.clock import parse_iso, utc_now
from provtui.connectors.base import Connector, DownstreamError
from provtui.connectors.config import ConfigError, MissingSecretReference, connection_fingerprint
from provtui.engine.calls import call_correlation, call_user
from provtui.engine.health import AppHealth
from provtui.engine.outcomes import SyncReport
from provtui.engine.sending import CREDENTIALS_REJECTED, Sender, backoff
from provtui.model.schema import APP_HEALTH, APPS
from provtui.store import Store

PROBE_ID = "provtui-credentials-probe"  # the externalId a probe looks up: one authenticated read, no change


class Probes:
    """``guard``: the context the store is read and written in; ``connector``: an app's connector."""

    def __init__(self, store: Store, health: AppHealth, sender: Sender, *, guard: Callable, connector: Callable[[dict], Connector]) -> None:
        self.store = store
        self.health = health
        self.sender = sender
        self.guard = guard
        self.connector = connector

    def due(self, in_scope: Callable[[str], bool], *, force: bool) -> list[tuple[dict, dict]]:
        """(app, health) of each app in scope whose credentials were rejected and whose probe is due (all of them
        with ``force``).  Read under the guard."""
        now = utc_now()
        return [
            (self.store.get(APPS, app_id), health)
            for app_id, health in self.store.all(APP_HEALTH).items()
            if health.get("credentials_rejected")
            and in_scope(app_id)
            and self.store.get(APPS, app_id)
            and (
                force
                or not health.get("probe_at")
                or parse_iso(health["probe_at"]) <= now
                or health.get("credentials_for") not in (None, connection_fingerprint(self.store.get(APPS, app_id)))
            )
        ]

    async def probe(self, app: dict, health: dict, report: SyncReport) -> None:
        """One authenticated read (a lookup that changes nothing), retried like any call for transient faults;
        its result written to the app's health (its call audited at the next flush)."""
        call_correlation.set(None)
        call_user.set(None)
        refusal: dict | None = None
        misconfigured = False
        accepted = False
        attempts = 0
        while not self.sender.stopping():
            attempts += 1
            try:
                await self.connector(app).find_user(external_id=PROBE_ID)
                accepted = True
            except DownstreamError as error:
                if error.status in CREDENTIALS_REJECTED:
                    refusal = {"app": app["name"], "status": error.status, "error": error.message}
                elif error.status is not None and not error.retryable:
                    accepted = True  # the app answered something other than a refusal: it took our credentials
                elif error.status is not None and error.status < 500 and error.status not in (408, 429):
                    accepted = True  # a garbled but successful answer: authenticated all the same
                elif isinstance(error, ConfigError):  # e.g. the token's variable is not set (here): still paused
                    refusal = {"app": app["name"], "status": None, "error": error.message}
                    misconfigured = isinstance(error, MissingSecretReference)
                else:
                    wait = backoff(attempts, error.retry_after)
                    if self.sender.may_retry(error, attempts, wait):
                        report.retries += 1
                        await self.sender.sleep(wait)
                        continue
                    # no answer either way: still paused, probed again after the back-off
                    refusal = {
                        "app": app["name"],
                        "status": health.get("credentials_status"),
                        "error": health.get("credentials_error") or error.message,
                    }
            break
        with self.guard(), self.store.transaction() as tx:
            if accepted:
                self.health.write_accepted(tx, app, health)
            elif refusal is not None:
                self.health.write_rejection(
                    tx, app["id"], refusal, report, fingerprint=connection_fingerprint(app), misconfigured=misconfigured, probed=True
                )
