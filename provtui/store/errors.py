"""What the store says when it cannot do as asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provtui.store.records import Damage

NEXT_STEPS = (
    "nothing was changed; `provtui store check` lists all damage, `provtui store repair` (super admin) recovers every intact record"
)


class StoreError(Exception):
    """The store cannot be opened or written (no store there, a bad call)."""


class StoreUnreadable(StoreError):
    """A store file cannot be read: missing, not a file, no permission.  The CLI exits 5."""


class StoreDamaged(StoreUnreadable):
    """A store file holds damage: a record that fails its checksum, a snapshot that does not add up.
    Nothing is changed on disk; ``damage`` names the first spot found."""

    def __init__(self, damage: Damage) -> None:
        self.damage = damage
        super().__init__(f"the store is damaged: {damage.describe()}; {NEXT_STEPS}")
