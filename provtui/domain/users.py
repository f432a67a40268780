"""User records and the validation of their profiles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from provtui.domain.errors import InvalidInput
from provtui.domain.text import (
    MAX_ATTRIBUTE_NAME,
    MAX_DISPLAY_NAME,
    MAX_EMAIL,
    MAX_LOGIN,
    MAX_PERSON_NAME,
    MAX_VALUE,
    check_text,
    check_value,
)

CORE_ATTRIBUTES = ("login", "email", "firstName", "lastName", "displayName", "title", "department", "manager")
REQUIRED_ATTRIBUTES = ("login", "email", "firstName", "lastName")

_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def normalise_login(login: str) -> str:
    # Logins compare case-insensitively, as in Okta and every SCIM userName filter.
    return login.strip().lower()


def validate_login(login: str) -> str:
    login = normalise_login(login)
    if len(login) > MAX_LOGIN:
        raise InvalidInput("login", f"too long (max {MAX_LOGIN})")
    if not _LOGIN.match(login):
        raise InvalidInput("login", f"{login!r} is not a valid login (letters, digits and . _ @ + -)")
    return login


def validate_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """A cleaned copy of ``profile``; raises InvalidInput naming the first bad field."""
    clean: dict[str, Any] = {}
    for key, value in profile.items():
        if not ATTRIBUTE_NAME.match(key):
            raise InvalidInput(key, "attribute names are letters, digits and _, starting with a letter")
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                value = None
        if value is not None and not isinstance(value, (str, int, float, bool, list)):
            raise InvalidInput(key, f"unsupported value type {type(value).__name__}")
        clean[key] = value
    for key in REQUIRED_ATTRIBUTES:
        if not clean.get(key):
            raise InvalidInput(key, "is required")
    clean["login"] = validate_login(clean["login"])
    if not EMAIL_PATTERN.match(str(clean["email"])):
        raise InvalidInput("email", f"{clean['email']!r} does not look like an email address")
    if not clean.get("displayName"):
        clean["displayName"] = f"{clean['firstName']} {clean['lastName']}"
    return {k: v for k, v in clean.items() if v is not None}


# The longest each profile attribute an admin types may be (any other attribute: MAX_VALUE).
MAX_LENGTHS = {
    "login": MAX_LOGIN,
    "email": MAX_EMAIL,
    "firstName": MAX_PERSON_NAME,
    "lastName": MAX_PERSON_NAME,
    "displayName": MAX_DISPLAY_NAME,
}


def check_typed_profile(values: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> None:
    """Refuse profile values an admin typed (creating or changing a user, from any entry point) that hold a
    control character or are too long, naming the field: ``labels`` maps an attribute to the name it was
    typed under (``--first``), else it is ``--set KEY``.  Values from outside are not checked here (an import
    has its own rules, provtui.domain.hr_import): what they bring is shown escaped (provtui.domain.text)."""
    labels = labels or {}
    for key, value in values.items():
        label = labels.get(key)
        if label is None:
            check_text("--set", key, MAX_ATTRIBUTE_NAME)
            label = f"--set {key}"
        check_value(label, value, MAX_LENGTHS.get(key, MAX_VALUE))


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (from ``--set``) as a dict; an empty value clears the key."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("--set", f"expected KEY=VALUE, got {pair!r}")
        result[key.strip()] = value
    return result


SEARCH_FIELDS = ("login", "email", "firstName", "lastName", "displayName")  # the profile fields a search reads


def search_text(profile: dict[str, Any]) -> str:
    parts = (profile.get(name) for name in SEARCH_FIELDS)
    return "\x00".join(str(p).lower() for p in parts if p)


def user_summary(user: dict[str, Any]) -> dict[str, Any]:
    """What lists of users show: no profile beyond name, email and department."""
    profile = user["profile"]
    return {
        "id": user["id"],
        "login": user["login"],
        "state": user["state"],
        "displayName": profile.get("displayName"),
        "email": profile.get("email"),
        "department": profile.get("department"),
        "source": user.get("source", "provtui"),
    }
