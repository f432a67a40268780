"""The embedded store: checksummed files in one directory, shared safely by several processes.

``contract`` is what a store must do (the protocols the service and the read model are typed
against); ``tables`` the in-memory tables every backend holds; ``journal_store`` the embedded
store itself and ``memory_store`` one with no files; ``records`` the line format every file is
made of (and how damage is told from a torn end); ``snapshot`` the snapshot file; ``files`` the
directory's files and locks; ``integrity`` the whole-store check and the salvage a repair uses.
"""

from provtui.store.contract import StoreBackend, StoreTransaction
from provtui.store.errors import StoreDamaged, StoreError, StoreUnreadable
from provtui.store.files import AUDIT, HEAD, LOCK, SNAPSHOT, file_mode
from provtui.store.journal_store import COMPACT_EVERY, Store, Transaction
from provtui.store.records import GENESIS_HASH, Damage, audit_hash, decode_lines, encode_line

__all__ = [
    "AUDIT",
    "COMPACT_EVERY",
    "HEAD",
    "GENESIS_HASH",
    "LOCK",
    "SNAPSHOT",
    "Damage",
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreBackend",
    "StoreTransaction",
    "StoreUnreadable",
    "Transaction",
    "audit_hash",
    "decode_lines",
    "encode_line",
    "file_mode",
]
