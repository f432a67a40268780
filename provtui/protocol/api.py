"""The server's API, version 1: which of the service's methods a client may call, and the endpoints.

Each call names a method of the facade (``list_users``) or of one of its parts (``rules.change``); only
these names are served.  Everything else the facade has (its store, its read model, opening and repairing
stores) stays in the server.  ``sync`` and ``set_password`` are the server's own: they run its engine.
"""

from __future__ import annotations

CALL_PATH = "/v1/call"
HELLO_PATH = "/v1/hello"
EVENTS_PATH = "/v1/events"

FACADE = frozenset(
    {
        # users, groups, apps, admins, settings, provisioning
        "create_user", "update_user", "change_state", "password_targets", "check_password", "bulk_change",
        "create_group", "rename_group", "push_group", "unpush_group", "add_members", "remove_members",
        "move_member", "move_preview", "unassign_preview", "lifecycle_preview",
        "create_app", "update_app", "mappings", "set_mapping", "preview_payload", "resume_app", "retry",
        "assign", "unassign", "grant", "revoke", "list_admins", "set_config", "config", "complete_task",
        "provisioning_scope", "may_provision", "may", "grants",
        # secrets (held by the server), inbound SCIM clients (their tokens' digests are in the store)
        "set_secret", "list_secrets", "delete_secret",
        "add_scim_client", "list_scim_clients", "rotate_scim_client", "remove_scim_client",
        # imports
        "add_source", "list_sources", "set_source_priority", "import_csv", "add_ldap_source", "update_ldap_source", "import_ldap",
        "import_app", "import_app_groups",
        # reads
        "user_view", "user_history", "prepare_history", "list_users", "list_groups", "app_assignments",
        "group_view", "list_apps", "task_list", "pending_work", "version", "user_count", "app_status", "shared_store",
        "audit", "audit_verify", "audit_head",
    }
)  # fmt: skip
PARTS = {
    "rules": frozenset({"create", "change", "check_change", "delete", "preview", "list", "decide", "held", "compiled"}),
    "importer": frozenset({"add_ldap_source", "import_csv", "import_ldap", "import_app"}),
    "reports": frozenset({"run"}),
}
SERVER = frozenset({"sync", "set_password", "check_store"})
# Results that do not travel: the client needs only that the call did not raise.
NO_RESULT = frozenset({"rules.compiled"})


def served(method: str) -> bool:
    if method in FACADE or method in SERVER:
        return True
    part, _, name = method.partition(".")
    return name in PARTS.get(part, ())
