"""Apps' health (APP_HEALTH): quarantine after app-wide faults, and credentials rejected.

An app whose calls keep failing app-wide (down, overloaded: provtui.engine.sending.app_wide) is quarantined after
QUARANTINE_AFTER keys in a row (paused, its work kept queued) until an admin resumes it.  An app that refuses our
credentials (401/403), or whose record names no secret (MissingSecretReference: *misconfigured*), is marked
"credentials rejected": paused, the server's message kept, and probed (provtui.engine.probes) after a back-off
growing from PROBE_BASE to PROBE_CAP, or at once when its record changes (``credentials_for``).
"""

from __future__ import annotations

from datetime import timedelta

from provtui.clock import utc_now, utc_now_iso
from provtui.connectors.base import DownstreamError
from provtui.connectors.config import MissingSecretReference, connection_fingerprint
from provtui.engine.calls import ENGINE_ACTOR, engine_event
from provtui.engine.outcomes import Outcome, SyncReport
from provtui.model.schema import APP_HEALTH
from provtui.store import Store

QUARANTINE_AFTER = 10  # consecutive keys failed by app-wide faults
PROBE_BASE = 5.0  # a worker's first probe of an app whose credentials were rejected, in seconds; doubling...
PROBE_CAP = 300.0  # ...up to this
CREDENTIALS_FIELDS = (
    "credentials_rejected",
    "credentials_status",
    "credentials_error",
    "credentials_rejected_at",
    "probes",
    "probe_at",
    "credentials_for",
    "misconfigured",
)


def new_health(app_id: str) -> dict:
    return {"app": app_id, "consecutive_failures": 0, "quarantined": False}


class AppHealth:
    """Which apps are paused, as this process knows (the store decides at each claim), and their health's writes."""

    def __init__(self, store: Store, run_by: str | None = None) -> None:
        self.store = store
        self.run_by = run_by
        self.quarantined: set[str] = set()
        self.rejected: set[str] = set()  # apps whose credentials were refused: paused, probed now and then
        # app id -> (the refusal seen, the fingerprint of the record refused, whether it names no secret), written
        # at the next flush
        self._refusals: dict[str, tuple[dict, str, bool]] = {}

    def refresh(self) -> None:
        """Read the pauses from the store: an admin may have resumed an app since this process paused it, another
        process's probe may have found its credentials working again."""
        healths = self.store.all(APP_HEALTH)
        self.quarantined = {app_id for app_id, health in healths.items() if health.get("quarantined")}
        self.rejected = {app_id for app_id, health in healths.items() if health.get("credentials_rejected")}

    @property
    def paused(self) -> set[str]:
        return self.quarantined | self.rejected

    def is_paused(self, app_id: str) -> bool:
        return app_id in self.quarantined or app_id in self.rejected

    # -- credentials rejected ----------------------------------------------------------

    def refused(self, app: dict, error: DownstreamError) -> dict:
        """Note that ``app`` refused our credentials (or has none: MissingSecretReference): paused at once in
        this process, written at the next flush (take_refusals)."""
        refusal = {"app": app["name"], "status": error.status, "error": error.message}
        self.rejected.add(app["id"])
        self._refusals[app["id"]] = (refusal, connection_fingerprint(app), isinstance(error, MissingSecretReference))
        return refusal

    @property
    def has_refusals(self) -> bool:
        return bool(self._refusals)

    def take_refusals(self) -> dict[str, tuple[dict, str, bool]]:
        """The refusals noted since the last flush, to write (write_rejection)."""
        refusals, self._refusals = self._refusals, {}
        return refusals

    def write_rejection(
        self, tx, app_id: str, refusal: dict, report: SyncReport, *, fingerprint: str, misconfigured: bool = False, probed: bool = False
    ) -> None:
        """Mark the app "credentials rejected" (audited when it starts), with when to probe it next.

        ``fingerprint``: of the app record refused (connection_fingerprint); once the record differs (an admin
        changed its endpoint or secret reference), the app is probed at the next run, whatever the back-off.
        ``misconfigured``: the record names no secret (MissingSecretReference), rather than a server refusing one."""
        now = utc_now()
        health = dict(tx.get(APP_HEALTH, app_id) or new_health(app_id))
        already = bool(health.get("credentials_rejected"))
        probes = (health.get("probes") or 0) + 1 if already and probed else 0
        next_probe = (now + timedelta(seconds=min(PROBE_CAP, PROBE_BASE * 2**probes))).isoformat()
        health.update(
            credentials_rejected=True,
            credentials_status=refusal["status"],
            credentials_error=refusal["error"],
            credentials_checked=now.isoformat(),
            probes=probes,
            probe_at=next_probe,
            last_failure=now.isoformat(),
            credentials_for=fingerprint,
            misconfigured=misconfigured,
        )
        if not already:
            health["credentials_rejected_at"] = now.isoformat()
            tx.audit(
                engine_event(
                    {
                        "actor": ENGINE_ACTOR,
                        "action": "app.credentials_rejected",
                        "target": refusal["app"],
                        "before": None,
                        "after": {"status": refusal["status"], "error": refusal["error"]},
                        "correlation": None,
                    },
                    self.run_by,
                )
            )
        tx.put(APP_HEALTH, app_id, health)
        report.note_rejected({**refusal, "since": health["credentials_rejected_at"], "next_probe": next_probe})

    def write_accepted(self, tx, app: dict, seen: dict) -> None:
        """A probe got through: lift the app's pause (audited, if the store still has it paused; ``seen``: its
        health when the probe was decided)."""
        current = dict(tx.get(APP_HEALTH, app["id"]) or {})
        if current.get("credentials_rejected"):
            for name in CREDENTIALS_FIELDS:
                current.pop(name, None)
            current.update(credentials_accepted_at=utc_now_iso(), last_success=utc_now_iso())
            tx.put(APP_HEALTH, app["id"], current)
            tx.audit(
                engine_event(
                    {
                        "actor": ENGINE_ACTOR,
                        "action": "app.credentials_accepted",
                        "target": app["name"],
                        "before": {"status": seen.get("credentials_status"), "error": seen.get("credentials_error")},
                        "after": None,
                        "correlation": None,
                    },
                    self.run_by,
                )
            )
        self.rejected.discard(app["id"])

    # -- quarantine ----------------------------------------------------------------------

    def write_result(self, tx, app_id: str, outcome: Outcome, report: SyncReport, now: str) -> None:
        """An attempt's result, on its app's health: a success resets the count of app-wide failures; such a
        failure adds to it, and the QUARANTINE_AFTER-th quarantines the app (audited)."""
        health = dict(tx.get(APP_HEALTH, app_id) or new_health(app_id))
        if outcome.failure:
            health["last_failure"] = now
            if outcome.app_fault:
                health["consecutive_failures"] += 1
                if health["consecutive_failures"] >= QUARANTINE_AFTER and not health["quarantined"]:
                    health.update(quarantined=True, quarantined_at=now, reason=outcome.failure["error"])
                    self.quarantined.add(app_id)
                    report.quarantined.append(outcome.failure["app"])
                    tx.audit(
                        engine_event(
                            {
                                "actor": ENGINE_ACTOR,
                                "action": "app.quarantine",
                                "target": outcome.failure["app"],
                                "before": None,
                                "after": {"reason": outcome.failure["error"]},
                                "correlation": None,
                            },
                            self.run_by,
                        )
                    )
        else:
            health.update(consecutive_failures=0, last_success=now)
        tx.put(APP_HEALTH, app_id, health)
