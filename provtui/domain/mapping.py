"""Attribute mappings: a user's profile as the flat attributes an app receives.

Targets are SCIM attribute paths; the SCIM connector nests them.  Issue #4 turns
sources into expressions; until then a source is a profile attribute name.
"""

from __future__ import annotations

from typing import Any

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WORK_EMAIL = 'emails[type eq "work"].value'

DEFAULT_SCIM_MAPPING: tuple[tuple[str, str], ...] = (
    ("userName", "login"),
    ("name.givenName", "firstName"),
    ("name.familyName", "lastName"),
    (WORK_EMAIL, "email"),
    ("displayName", "displayName"),
    ("title", "title"),
    (f"{ENTERPRISE}:department", "department"),
)


def map_attributes(user_id: str, profile: dict[str, Any], mapping=DEFAULT_SCIM_MAPPING) -> dict[str, Any]:
    """The downstream attributes for a user; externalId is always provtui's user id."""
    attributes: dict[str, Any] = {"externalId": user_id}
    for target, source in mapping:
        attributes[target] = profile.get(source)
    return attributes


def changed_attributes(desired: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Attributes whose desired value differs from the last one sent (None = remove)."""
    return {k: v for k, v in desired.items() if known.get(k) != v}
