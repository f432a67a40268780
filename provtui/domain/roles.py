"""Admin roles and what each may do: the authorisation policy, as data.

Roles (after Okta's): super-admin (everything); app-admin scoped to apps (their
settings, mappings, assignments, tasks); group-admin scoped to groups (their
membership, and assigning to them apps already assigned elsewhere); helpdesk
(suspend/unsuspend, password resets, and moving users between the groups in its
scope); read-only.  Every admin may read the directory, the audit trail and the
reports.  The service asks ``allowed`` before every change.  Only a super admin
changes where an app's calls go or which secret they carry (APP_CONNECTION), and
``--confirm`` past the safeguard needs what approving a held change needs (CONFIRM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provtui.domain.errors import InvalidInput


class Role(StrEnum):
    SUPER_ADMIN = "super-admin"
    APP_ADMIN = "app-admin"
    GROUP_ADMIN = "group-admin"
    HELPDESK = "helpdesk"
    READ_ONLY = "read-only"
    # Held by an inbound SCIM client alone (its token, never a grant): it pushes people and groups as its source.
    SCIM_CLIENT = "scim-client"


GRANTABLE = tuple(role for role in Role if role != Role.SCIM_CLIENT)


class Action(StrEnum):
    READ = "read the directory"
    MANAGE_USERS = "create, edit, activate, deactivate or delete users"
    SUSPEND = "suspend or unsuspend users"
    RESET_PASSWORD = "reset passwords"
    MANAGE_GROUPS = "create, rename or delete groups"
    GROUP_MEMBERSHIP = "change group membership"
    MANAGE_RULES = "change group rules"
    CREATE_APPS = "create apps"
    MANAGE_APP = "change an app's settings, mappings or provisioning"
    APP_CONNECTION = "change an app's endpoint or secret reference"
    ASSIGN_APP = "assign apps"
    MANAGE_SOURCES = "manage and run imports"
    MANAGE_ADMINS = "grant or revoke admin roles"
    CONFIGURE = "change store-wide settings"
    APPROVE = "approve or reject held changes"
    CONFIRM = "confirm a change the safeguard holds (--confirm)"
    REPAIR_STORE = "repair a damaged store"
    MIGRATE_STORE = "copy the store to another backend"
    MANAGE_SECRETS = "set, list or delete the server's secrets"
    MANAGE_SCIM_CLIENTS = "add, list, rotate or remove inbound SCIM clients"
    PUSH_SCIM = "push people and groups as an inbound SCIM client"


# Which roles may take each action at all; scope is checked separately.
POLICY: dict[Action, frozenset[Role]] = {
    Action.READ: frozenset(Role),
    Action.MANAGE_USERS: frozenset({Role.SUPER_ADMIN}),
    Action.SUSPEND: frozenset({Role.SUPER_ADMIN, Role.HELPDESK}),
    Action.RESET_PASSWORD: frozenset({Role.SUPER_ADMIN, Role.HELPDESK}),
    Action.MANAGE_GROUPS: frozenset({Role.SUPER_ADMIN}),
    Action.GROUP_MEMBERSHIP: frozenset({Role.SUPER_ADMIN, Role.GROUP_ADMIN, Role.HELPDESK}),
    Action.MANAGE_RULES: frozenset({Role.SUPER_ADMIN, Role.GROUP_ADMIN}),
    Action.CREATE_APPS: frozenset({Role.SUPER_ADMIN}),
    Action.MANAGE_APP: frozenset({Role.SUPER_ADMIN, Role.APP_ADMIN}),
    # Where an app's calls go (SCIM URL, LDAP URI, bind DN) and which secret they carry: an app admin
    # pointing the endpoint at their own server would be sent the secret by the next sync.
    Action.APP_CONNECTION: frozenset({Role.SUPER_ADMIN}),
    Action.ASSIGN_APP: frozenset({Role.SUPER_ADMIN, Role.APP_ADMIN, Role.GROUP_ADMIN}),
    Action.MANAGE_SOURCES: frozenset({Role.SUPER_ADMIN}),
    Action.MANAGE_ADMINS: frozenset({Role.SUPER_ADMIN}),
    Action.CONFIGURE: frozenset({Role.SUPER_ADMIN}),
    Action.APPROVE: frozenset({Role.SUPER_ADMIN}),
    Action.REPAIR_STORE: frozenset({Role.SUPER_ADMIN}),
    Action.MIGRATE_STORE: frozenset({Role.SUPER_ADMIN}),  # a copy of everything: the whole directory and trail
    Action.MANAGE_SECRETS: frozenset({Role.SUPER_ADMIN}),
    Action.MANAGE_SCIM_CLIENTS: frozenset({Role.SUPER_ADMIN}),  # a client is a source of truth: it writes people in
    # What it may change is then what its source masters (provtui.service.scim_inbound), not a scope of groups.
    Action.PUSH_SCIM: frozenset({Role.SCIM_CLIENT}),
}
# --confirm is an approval given in advance: exactly the roles `held approve` needs, by construction.
POLICY[Action.CONFIRM] = POLICY[Action.APPROVE]


@dataclass(frozen=True)
class Grant:
    """One role held by an admin, with its scope (app or group ids) where the role is scoped."""

    role: Role
    apps: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Grant:
        return cls(Role(doc["role"]), frozenset(doc.get("apps", ())), frozenset(doc.get("groups", ())))

    def to_doc(self) -> dict[str, Any]:
        return {"role": self.role.value, "apps": sorted(self.apps), "groups": sorted(self.groups)}


@dataclass(frozen=True)
class Scope:
    """What a change touches: the apps and groups it must be allowed on."""

    apps: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    app_assigned_elsewhere: bool = False  # for a group admin assigning an app to their group


def allowed(grants: list[Grant], action: Action, scope: Scope = Scope()) -> bool:
    return any(_grant_allows(grant, action, scope) for grant in grants)


def _grant_allows(grant: Grant, action: Action, scope: Scope) -> bool:
    if grant.role not in POLICY[action]:
        return False
    if grant.role in (Role.SUPER_ADMIN, Role.READ_ONLY, Role.SCIM_CLIENT) or action == Action.READ:
        return True
    if grant.role == Role.APP_ADMIN:  # anything about their own apps, for any user or group
        return bool(scope.apps) and scope.apps <= grant.apps
    if grant.role == Role.HELPDESK and action in (Action.SUSPEND, Action.RESET_PASSWORD):
        return True  # any user: the helpdesk's everyday work
    # group-admin, and helpdesk moving people: only within their groups
    if not scope.groups or not scope.groups <= grant.groups:
        return False
    if action == Action.ASSIGN_APP:
        return scope.app_assigned_elsewhere  # they pass on apps, they don't hand out new ones
    return True


def needed(action: Action) -> str:
    """The roles that could allow ``action``, for the refusal message."""
    roles = sorted(r.value for r in POLICY[action] if r != Role.READ_ONLY or action == Action.READ)
    return " or ".join(roles)


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput("ROLE", f"unknown role {role!r} (roles: {', '.join(r.value for r in GRANTABLE)})") from None


def validate_grant(role: str, apps: list[str], groups: list[str]) -> Role:
    parsed = parse_role(role)
    if parsed == Role.SCIM_CLIENT:
        raise InvalidInput("ROLE", "scim-client is no admin's: an inbound SCIM client holds it by its token (`provtui scim-client add`)")
    if parsed == Role.APP_ADMIN and not apps:
        raise InvalidInput("--app", "an app-admin is scoped to apps: name at least one with --app")
    if parsed == Role.GROUP_ADMIN and not groups:
        raise InvalidInput("--group", "a group-admin is scoped to groups: name at least one with --group")
    if parsed in (Role.SUPER_ADMIN, Role.READ_ONLY) and (apps or groups):
        raise InvalidInput("--app" if apps else "--group", f"a {parsed.value} is not scoped")
    if parsed in (Role.GROUP_ADMIN, Role.HELPDESK) and apps:
        raise InvalidInput("--app", f"a {parsed.value} is scoped to groups, not apps")
    if parsed == Role.APP_ADMIN and groups:
        raise InvalidInput("--group", "an app-admin is scoped to apps, not groups")
    return parsed
