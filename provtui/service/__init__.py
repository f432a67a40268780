"""The service: the one API that changes the directory, and the only way the faces reach the store.

``facade.Service`` is what the CLI and the console call; ``change`` is the unit of work every
change goes through; the parts (users, groups, apps, admins, settings, provisioning, rules,
imports, reads, reports, store_health) each do one kind of work, given the change factory, the
read model and the actor's access.
"""

from provtui.service.facade import Service
from provtui.service.validation import current_os_user, share_with_group
from provtui.store import StoreDamaged, StoreError, StoreUnreadable

__all__ = ["Service", "StoreDamaged", "StoreError", "StoreUnreadable", "current_os_user", "share_with_group"]
