"""The directory's schema in the store: table names, the indexes every process keeps, and the keys
documents are stored under.  The one place that says how the directory is laid out; the read
model (provtui.model.directory), the service and the engine all use these names.
"""

from __future__ import annotations

from typing import Any, Protocol

USERS, GROUPS, MEMBERS, APPS, ASSIGNMENTS = "users", "groups", "members", "apps", "assignments"
ACCOUNTS, DIRTY, TASKS, ADMINS, CONFIG, META = "accounts", "dirty", "tasks", "admins", "config", "meta"
APP_HEALTH = "app_health"  # the engine's record of each app: failures, quarantine, last success
PUSHES = "pushes"  # which groups an admin pushes to which apps (directory intent)
PUSHED_GROUPS = "pushed_groups"  # the engine's record of each pushed group downstream
SOURCES = "sources"  # sources of truth: HR exports, LDAP directories
SOURCE_ENTRIES = "source_entries"  # per LDAP source: the DN -> login of its entries (member DNs of incremental imports)
ORPHANS = "orphans"  # app import: downstream accounts that match no user
RULES = "rules"  # group rules
HELD = "held"  # big changes held by a safeguard until an admin approves or rejects them
SCIM_CLIENTS = "scim_clients"  # inbound SCIM clients: each a source, known by its token's digest (provtui.domain.scim_clients)

# The tables that grow with the directory: on PostgreSQL a process reads them by query and holds only what it
# read lately (provtui.store.queried), unless it needs them whole (a worker, a report).
QUERIED = (USERS, MEMBERS, ACCOUNTS, DIRTY, TASKS, SOURCE_ENTRIES, ORPHANS)

INDEXES = (
    (USERS, "login"),
    (GROUPS, "name"),
    (APPS, "name"),
    (MEMBERS, "user"),
    (MEMBERS, "group"),
    (ASSIGNMENTS, "app"),
    (ASSIGNMENTS, "subject"),
    (ACCOUNTS, "user"),
    (ACCOUNTS, "app"),
    (DIRTY, "app"),
    (TASKS, "state"),
    (PUSHES, "group"),
    (RULES, "name"),
    (HELD, "state"),
    (PUSHED_GROUPS, "app"),
)


class Reader(Protocol):
    def get(self, table: str, key: str) -> dict[str, Any] | None: ...
    def lookup(self, table: str, fieldname: str, value: Any) -> set[str]: ...


def stored(reader: Reader, table: str, key: str) -> dict[str, Any]:
    """The document at a key the store itself gave (by an index lookup, or kept in another document that
    refers to it): it is there, so its absence is a broken store, not a name nobody has."""
    doc = reader.get(table, key)
    if doc is None:
        raise LookupError(f"{table} {key!r} is referred to but not stored")
    return doc


def account_key(app_id: str, user_id: str) -> str:
    return f"{app_id}|{user_id}"


def group_key(app_id: str, group_id: str) -> str:
    """The pending-work and pushed-group key of a group in an app."""
    return f"{app_id}|group:{group_id}"


def member_key(group_id: str, user_id: str, via: str = "manual") -> str:
    """One membership path: manual, ``rule:<id>`` or ``source:<name>``; a user may be in a group by several."""
    return f"{group_id}|{user_id}" if via == "manual" else f"{group_id}|{user_id}|{via}"


def member_group(key: str) -> str:
    """The group id of a membership, read from its key (``member_key``): planning reads it without the document."""
    return key.partition("|")[0]


def member_user(key: str) -> str:
    """The user id of a membership, read from its key (``member_key``)."""
    return key.split("|", 2)[1]


def user_subject(user_id: str) -> str:
    return f"user:{user_id}"


def group_subject(group_id: str) -> str:
    return f"group:{group_id}"


def assignment_key(app_id: str, subject: str) -> str:
    return f"{app_id}|{subject}"
