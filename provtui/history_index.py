"""Moved to provtui.model.history_index (kept while imports move)."""

from provtui.model.history_index import *  # noqa: F403
