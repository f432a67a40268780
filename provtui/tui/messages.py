"""Messages shared between the app and its screens."""

from __future__ import annotations

from textual.message import Message


class StoreChanged(Message):
    """The store changed (another process committed, or the engine ran): re-read what is shown."""
