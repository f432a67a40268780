"""Moved to provtui.model.outbox (kept while imports move)."""

from provtui.model.outbox import *  # noqa: F403
from provtui.model.outbox import queue  # noqa: F401
