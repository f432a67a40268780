"""Moved to provtui.model.audit_trail (kept while imports move)."""

from provtui.model.audit_trail import *  # noqa: F403
