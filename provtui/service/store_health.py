"""The store's health, as the service offers it: the whole-store check and the repair.

Both work on a store that may not open (that is what they are for), so they read its
files through ``provtui.store.integrity`` rather than through an open Service.  A repair
is a change like any other: authorised (super admin, by the grants that survived),
audited (``store.repaired``, naming what was dropped and the backup), and followed by a
reconciliation of every account, since what downstream was last told may be among the
records that were lost.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provtui.domain.errors import InvalidInput, NotAllowed
from provtui.domain.roles import Action, Grant, Role, allowed, needed
from provtui.model.outbox import queue
from provtui.model.schema import ACCOUNTS, ADMINS, META, account_key
from provtui.store import Damage, Store, StoreBackend
from provtui.store.integrity import Salvage, check, gaps, rewrite, salvage
from provtui.store.urls import is_url


class Opened(Protocol):
    """What a repair needs of the service it opens on the rebuilt store (the facade's Service is one)."""

    store: StoreBackend


@dataclass
class RepairReport:
    backup: str
    dropped: list[dict[str, Any]]
    kept: dict[str, int]
    events_lost: int | None
    accounts_queued: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "repaired": True,
            "backup": self.backup,
            "dropped": self.dropped,
            "kept": self.kept,
            "events_lost": self.events_lost,
            "accounts_queued": self.accounts_queued,
        }


def missing_creation(tables: dict[str, Any], journal: str) -> Damage | None:
    """A store the service made always records its creation (meta/store): without it, the journal was
    emptied or cut short -- at a line boundary, which the records alone cannot show."""
    if tables.get(META, {}).get("store") is None:
        return Damage(journal, 0, 0, "the store has no record of its creation (meta/store): its journal was emptied or cut short")
    return None


def check_store(path: Path | str) -> dict[str, Any]:
    """`store check`: every record of every file, and the audit chain (see CheckReport)."""
    if is_url(path):
        from provtui.store.postgres_check import check_database

        return check_database(str(path))
    report, found = check(Path(path))
    _add_missing_creation(found)
    report.damage = found.damage
    return report.to_dict(found)


def _add_missing_creation(found: Salvage) -> None:
    spot = missing_creation(found.tables, found.journal)
    if spot is not None and not found.damage:
        found.damage.append(spot)
        found.lost_events[0] = None  # how much was cut, nothing on disk says


def _is_super(admin: dict[str, Any]) -> bool:
    return allowed([Grant.from_doc(g) for g in admin.get("grants", [])], Action.REPAIR_STORE)


def _may_repair(tables: dict[str, Any], actor: str, path: Path) -> bool:
    admins = tables.get(ADMINS, {})
    if _is_super(admins.get(actor, {})):
        return True
    # No super admin survived the damage: the store directory's owner may still recover it.
    return not any(_is_super(a) for a in admins.values()) and os.stat(path).st_uid == os.geteuid()


def repair_store(path: Path, actor: str, service_factory: Callable[[StoreBackend, str], Opened]) -> RepairReport:
    """`store repair`: only on a damaged store.  Backup first, then the store rebuilt from every
    intact record, then one audited change that names what was dropped."""
    path = Path(path)
    found = salvage(path)
    _add_missing_creation(found)
    if not found.damage:
        raise InvalidInput("store", f"the store at {path} is not damaged: nothing to repair (`provtui store check` says so)")
    if not _may_repair(found.tables, actor, path):
        raise NotAllowed(f"{actor} may not {Action.REPAIR_STORE.value}: it needs the {needed(Action.REPAIR_STORE)} role")
    declared = gaps(found.events)
    known = [n for n in found.lost_events.values()]
    events_lost = None if any(n is None for n in known) else sum(known)  # type: ignore[arg-type]
    dropped = [d.to_dict() for d in found.damage if d.dropped]
    backup = rewrite(path, found)
    kept = {name: len(numbers) for name, numbers in found.intact.items()}
    service = service_factory(Store.open(path), actor)
    with service.store.transaction() as tx:
        tx.audit(
            {
                "actor": actor,
                "action": "store.repaired",
                "target": str(path),
                "before": None,
                "after": {"backup": str(backup), "dropped": dropped, "gaps": declared, "events_lost": events_lost, "kept": kept},
            }
        )
        if service.store.get(META, "store") is None:  # its record of creation was among what was lost
            tx.put(META, "store", {"created": None, "created_by": None, "recovered_by": actor, "backup": str(backup)})
        if not any(_is_super(a) for a in service.store.all(ADMINS).values()):  # the owner who repaired it takes it over
            tx.put(ADMINS, actor, {"user": actor, "grants": [Grant(Role.SUPER_ADMIN).to_doc()]})
            tx.audit(
                {
                    "actor": actor,
                    "action": "admin.grant",
                    "target": actor,
                    "before": None,
                    "after": {"role": Role.SUPER_ADMIN.value, "why": "no super admin survived the damage"},
                }
            )
        accounts = service.store.all(ACCOUNTS)
        for doc in accounts.values():
            queue(tx, account_key(doc["app"], doc["user"]), {"app": doc["app"], "user": doc["user"]})
    return RepairReport(str(backup), dropped, kept, events_lost, len(accounts))
