"""`provtui store check` on a PostgreSQL store."""

from __future__ import annotations

from typing import Any

from provtui.store.postgres_store import PostgresStore
from provtui.store.records import Damage


def check_database(url: str) -> dict[str, Any]:
    """`store check` on PostgreSQL: the database keeps its own pages whole, so what is checked is what it
    cannot vouch for: the audit chain against the stored head, and each table's count and the people's search
    rows against the documents (a write that went around provtui shows there)."""
    from provtui.store.chain import verify_chain

    store = PostgresStore.open(url)
    try:
        events = store.audit_events()
        report = verify_chain(events, expected_head=store.audit_head)
        audit: dict[str, Any] = {"events": len(events), "head": report.head, "intact": report.ok}
        if not report.ok:
            audit["reason"] = report.describe()
        damage = [Damage(what, 0, 0, why, dropped=False) for what, why in store.index_damage()]
        records = {"docs": sum(len(docs) for docs in store.tables.values()), "audit": len(events)}
        spots = [d.to_dict() for d in damage]
        return {"intact": report.ok and not damage, "damage": spots, "records": records, "audit": audit}
    finally:
        store.close()
