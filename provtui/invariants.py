"""Moved to provtui.testing.invariants (kept while imports move)."""

from provtui.testing.invariants import *  # noqa: F403
