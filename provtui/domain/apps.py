"""Applications: their kinds and what each can do downstream."""

from __future__ import annotations

from enum import StrEnum


class AppKind(StrEnum):
    SCIM = "scim"
    MANUAL = "manual"


class Capability(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DELETE = "delete"
    PUSH_GROUPS = "push_groups"
    SYNC_PASSWORD = "sync_password"
    IMPORT = "import"


DEFAULT_CAPABILITIES: dict[AppKind, tuple[Capability, ...]] = {
    AppKind.SCIM: (Capability.CREATE, Capability.UPDATE, Capability.DEACTIVATE, Capability.REACTIVATE, Capability.IMPORT),
    # A manual app has no API: its "calls" are tasks for an admin.
    AppKind.MANUAL: (Capability.CREATE, Capability.DEACTIVATE, Capability.REACTIVATE),
}

DEFAULT_SETTINGS = {"concurrency": 4, "rate": None}
