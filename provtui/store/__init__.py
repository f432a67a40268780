"""The embedded store: checksummed files in one directory, shared safely by several processes.

``journal_store`` is the store itself; ``records`` the line format every file is made of
(and how damage is told from a torn end); ``snapshot`` the snapshot file; ``files`` the
directory's files and locks; ``integrity`` the whole-store check and the repair.
"""

from provtui.store.errors import StoreDamaged, StoreError, StoreUnreadable
from provtui.store.files import AUDIT, HEAD, LOCK, SNAPSHOT, file_mode
from provtui.store.journal_store import COMPACT_EVERY, Store, Transaction
from provtui.store.records import GENESIS_HASH, Damage, audit_hash, decode_lines, encode_line

__all__ = ["AUDIT", "COMPACT_EVERY", "HEAD", "GENESIS_HASH", "LOCK", "SNAPSHOT", "Damage", "Store", "StoreDamaged", "StoreError",
           "StoreUnreadable", "Transaction", "audit_hash", "decode_lines", "encode_line", "file_mode"]
