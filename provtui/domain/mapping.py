"""Attribute mappings: a user's profile as the flat attributes an app receives.

Each downstream attribute (a SCIM path, nested by the connector) gets an
expression in the rules' language over ``user`` (and ``assignment``, the values
an assignment carries) and a policy: sent ``always``, or only on ``create``.
The defaults reproduce the first release's fixed mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from provtui.domain.errors import InvalidInput
from provtui.domain.expressions import MAPPING_FUNCTIONS, MAPPING_ROOTS, CompiledExpression, compile_expression
from provtui.domain.expressions.tree import Attribute
from provtui.domain.expressions.values import NO_GROUPS

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WORK_EMAIL = 'emails[type eq "work"].value'
ALWAYS, ON_CREATE = "always", "create"
RESERVED_TARGETS = {
    "externalId": "provtui's user id: it links the account to the user",
    "active": "it follows the lifecycle",
    "password": "passwords are set with `provtui user password`",
    "id": "the app assigns it",
}
_TARGET = re.compile(r'^(urn:[A-Za-z0-9:._-]+:)?[A-Za-z][A-Za-z0-9_]*(\[[A-Za-z]+ eq "[^"\\]*"\])?(\.[A-Za-z][A-Za-z0-9_]*)?$')

DEFAULT_SCIM_MAPPINGS: tuple[dict[str, Any], ...] = (
    {"target": "userName", "expr": "user.login", "on": ALWAYS},
    {"target": "name.givenName", "expr": "user.firstName", "on": ALWAYS},
    {"target": "name.familyName", "expr": "user.lastName", "on": ALWAYS},
    {"target": WORK_EMAIL, "expr": "user.email", "on": ALWAYS},
    {"target": "displayName", "expr": "user.displayName", "on": ALWAYS},
    {"target": "title", "expr": "user.title", "on": ALWAYS},
    {"target": f"{ENTERPRISE}:department", "expr": "user.department", "on": ALWAYS},
)


DEFAULT_LDAP_MAPPINGS: tuple[dict[str, Any], ...] = (  # OpenLDAP inetOrgPerson
    {"target": "uid", "expr": "user.login", "on": ALWAYS},
    {"target": "cn", "expr": "user.displayName", "on": ALWAYS},
    {"target": "givenName", "expr": "user.firstName", "on": ALWAYS},
    {"target": "sn", "expr": "user.lastName", "on": ALWAYS},
    {"target": "mail", "expr": "user.email", "on": ALWAYS},
    {"target": "title", "expr": "user.title", "on": ALWAYS},
    {"target": "departmentNumber", "expr": "user.department", "on": ALWAYS},
)

DEFAULT_AD_MAPPINGS: tuple[dict[str, Any], ...] = (
    {"target": "sAMAccountName", "expr": "user.login", "on": ALWAYS},
    {"target": "userPrincipalName", "expr": "user.email", "on": ALWAYS},
    # no cn: the connector names an AD entry by its sAMAccountName, which the whole domain holds once (cn = the
    # display name clashed for a second "Sam Smith", and failed past 64 characters)
    {"target": "displayName", "expr": "user.displayName", "on": ALWAYS},
    {"target": "givenName", "expr": "user.firstName", "on": ALWAYS},
    {"target": "sn", "expr": "user.lastName", "on": ALWAYS},
    {"target": "mail", "expr": "user.email", "on": ALWAYS},
    {"target": "title", "expr": "user.title", "on": ALWAYS},
    {"target": "department", "expr": "user.department", "on": ALWAYS},
)


def default_mappings_for(app: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The mappings an app starts with: by its kind (and LDAP flavour)."""
    if app.get("kind") == "ldap":
        return DEFAULT_AD_MAPPINGS if app["ldap"]["flavor"] == "ad" else DEFAULT_LDAP_MAPPINGS
    return DEFAULT_SCIM_MAPPINGS


@dataclass(frozen=True)
class CompiledMapping:
    target: str
    expression: CompiledExpression
    on: str
    # The profile attribute the expression is, when it is only that (``user.email``, as every default is): read
    # straight from the profile (the expression's own closure reads the same, one call and two lookups later).
    profile_field: str | None = None


def compile_mapping(target: str, expr: str, on: str = ALWAYS) -> CompiledMapping:
    """Check a mapping (target path, expression, policy); raises InvalidInput naming what is wrong."""
    if target in RESERVED_TARGETS:
        raise InvalidInput("TARGET", f"{target} cannot be mapped: {RESERVED_TARGETS[target]}")
    if not _TARGET.match(target):
        raise InvalidInput(
            "TARGET",
            f'{target!r} is not a SCIM attribute path (e.g. title, name.givenName, emails[type eq "work"].value, {ENTERPRISE}:department)',
        )
    if on not in (ALWAYS, ON_CREATE):
        raise InvalidInput("--on", "is create or always")
    expression = compile_expression(expr, roots=MAPPING_ROOTS, functions=MAPPING_FUNCTIONS, field="EXPR")
    tree = expression.tree
    field = tree.name if isinstance(tree, Attribute) and tree.root == "user" else None
    return CompiledMapping(target, expression, on, field)


@cache
def default_mappings() -> list[CompiledMapping]:
    return [compile_mapping(m["target"], m["expr"], m["on"]) for m in DEFAULT_SCIM_MAPPINGS]


def map_attributes(
    user_id: str, profile: Mapping[str, Any], mappings: list[CompiledMapping] | None = None, assignment: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The downstream attributes for a user (default mappings unless given); externalId is always provtui's user id."""
    if mappings is None:
        mappings = default_mappings()
    scope = {"user": profile, "assignment": assignment or {}}
    attributes: dict[str, Any] = {"externalId": user_id}
    for mapping in mappings:  # (this runs for every planned key)
        field = mapping.profile_field
        value = profile.get(field) if field is not None else mapping.expression.function(scope, NO_GROUPS)
        attributes[mapping.target] = None if value == "" else value
    return attributes


def profile_fields(mappings: list[CompiledMapping]) -> tuple[tuple[str, str], ...] | None:
    """(target, profile attribute) of each mapping if every one only reads a profile attribute (as the
    defaults do), for ``map_fields``; else None."""
    fields = tuple((m.target, m.profile_field) for m in mappings if m.profile_field is not None)
    return fields if len(fields) == len(mappings) else None


def map_fields(user_id: str, profile: Mapping[str, Any], fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """``map_attributes`` for mappings that each read a profile attribute (``profile_fields``): the same
    attributes, a lookup each (planning runs it for every queued key)."""
    get = profile.get
    attributes: dict[str, Any] = {"externalId": user_id}
    for target, field in fields:
        value = get(field)
        attributes[target] = None if value == "" else value
    return attributes


def create_only(mappings: list[CompiledMapping]) -> frozenset[str]:
    return frozenset(m.target for m in mappings if m.on == ON_CREATE)


def changed_attributes(desired: dict[str, Any], known: dict[str, Any], ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Attributes whose desired value differs from the last one sent (None = remove); ``ignore``: create-only ones."""
    return {k: v for k, v in desired.items() if k not in ignore and known.get(k) != v}
