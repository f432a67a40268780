"""The service: the one API that changes the directory, and the only way the faces reach the store.

``facade.Service`` is what the CLI and the console call; ``change`` is the unit of work every
change goes through; the parts (users, groups, apps, admins, settings, provisioning, rules,
imports, reads, reports, store_health) each do one kind of work, given the change factory, the
read model and the actor's access.
"""

from typing import TYPE_CHECKING

from provtui.lazy import exports, names

if TYPE_CHECKING:
    from provtui.service.facade import Service as Service
    from provtui.service.validation import current_os_user as current_os_user
    from provtui.service.validation import share_with_group as share_with_group
    from provtui.store.errors import StoreDamaged as StoreDamaged
    from provtui.store.errors import StoreError as StoreError
    from provtui.store.errors import StoreUnreadable as StoreUnreadable

_WHERE = {
    "provtui.service.facade": ("Service",),
    "provtui.service.validation": ("current_os_user", "share_with_group"),
    "provtui.store.errors": ("StoreDamaged", "StoreError", "StoreUnreadable"),
}
__getattr__ = exports(__name__, _WHERE)
__all__ = names(_WHERE)
