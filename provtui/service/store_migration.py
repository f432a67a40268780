"""`provtui store migrate --to LOCATION`: the whole store copied to another backend (a directory to PostgreSQL,
or back), by a super admin.  The move is audited in the source before the copy, so both trails record it; the
target must hold no store; both chains are verified and the copy's counts compared with the source's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provtui.domain.errors import InvalidInput
from provtui.domain.roles import Action
from provtui.store.chain import verify_chain
from provtui.store.locations import as_location, shown, store_exists
from provtui.store.migrate import contents_of, copy_to

if TYPE_CHECKING:
    from provtui.service.change import Changes
    from provtui.store.contract import StoreBackend


def migrate_store(store: StoreBackend, changes: Changes, source: str, to: str) -> dict[str, Any]:
    target = as_location(to)
    if store_exists(target):
        raise InvalidInput("--to", f"a store already exists at {shown(target)}: migrate never writes over one")
    with changes(Action.MIGRATE_STORE) as change:
        change.audit("store.migrate", shown(target), None, {"from": source})
    contents = contents_of(store)
    source_chain = verify_chain(contents.events, expected_head=contents.audit_head)
    copied, target_chain = copy_to(contents, target)
    copied_contents = contents_of(copied)
    return {
        "from": source,
        "to": shown(target),
        "seq": contents.seq,
        "documents": contents.counts(),
        "audit_events": len(contents.events),
        "source_chain_intact": source_chain.ok,
        "target_chain_intact": target_chain.ok,
        "same": copied_contents.counts() == contents.counts() and copied_contents.audit_head == contents.audit_head,
    }
