"""Provisioning: reconcile the directory's desired state with downstream apps."""

from provtui.engine.reconciler import Reconciler, SyncReport

__all__ = ["Reconciler", "SyncReport"]
