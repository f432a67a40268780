"""The embedded store: checksummed files in one directory, shared safely by several processes.

``contract`` is what a store must do (the protocols the service and the read model are typed
against); ``tables`` the in-memory tables every backend holds; ``journal_store`` the embedded
store itself and ``memory_store`` one with no files; ``records`` the line format every file is
made of (and how damage is told from a torn end); ``snapshot`` the snapshot file; ``files`` the
directory's files and locks; ``integrity`` the whole-store check and the salvage a repair uses.
"""

from typing import TYPE_CHECKING

from provtui.lazy import exports, names

if TYPE_CHECKING:
    from provtui.store.contract import StoreBackend as StoreBackend
    from provtui.store.contract import StoreTransaction as StoreTransaction
    from provtui.store.errors import StoreDamaged as StoreDamaged
    from provtui.store.errors import StoreError as StoreError
    from provtui.store.errors import StoreUnreadable as StoreUnreadable
    from provtui.store.files import AUDIT as AUDIT
    from provtui.store.files import HEAD as HEAD
    from provtui.store.files import LOCK as LOCK
    from provtui.store.files import SNAPSHOT as SNAPSHOT
    from provtui.store.files import file_mode as file_mode
    from provtui.store.journal_store import COMPACT_EVERY as COMPACT_EVERY
    from provtui.store.journal_store import Store as Store
    from provtui.store.journal_store import Transaction as Transaction
    from provtui.store.records import GENESIS_HASH as GENESIS_HASH
    from provtui.store.records import Damage as Damage
    from provtui.store.records import audit_hash as audit_hash
    from provtui.store.records import decode_lines as decode_lines
    from provtui.store.records import encode_line as encode_line

_WHERE = {
    "provtui.store.contract": ("StoreBackend", "StoreTransaction"),
    "provtui.store.errors": ("StoreDamaged", "StoreError", "StoreUnreadable"),
    "provtui.store.files": ("AUDIT", "HEAD", "LOCK", "SNAPSHOT", "file_mode"),
    "provtui.store.journal_store": ("COMPACT_EVERY", "Store", "Transaction"),
    "provtui.store.records": ("GENESIS_HASH", "Damage", "audit_hash", "decode_lines", "encode_line"),
}
__getattr__ = exports(__name__, _WHERE)
__all__ = names(_WHERE)
