"""SCIM 2.0 resources (RFC 7643) as an inbound client pushes them and as provtui shows them back (#20).

Pure.  A pushed User becomes a profile, whether it is active and its ``externalId``; a person becomes a User
resource.  Where RFC 7643 has an attribute provtui has one of the same meaning, it is that one (``userName``
is the login, ``name.givenName`` the first name, the enterprise extension's ``employeeNumber``,
``department`` and ``manager.value``...); any other profile attribute travels under provtui's own extension
(``PROVTUI_USER``), so nothing a client pushed is lost and nothing provtui keeps is invented.

Decisions where RFC 7643 leaves a choice:
- the email is the primary one, else the ``work`` one, else the first;
- ``active`` is true only for an active person (staged, suspended and deprovisioned people are not), and is
  shown only while the client's last write said it (one that leaves it out, or a PATCH removing it, leaves
  the person's lifecycle alone: their state is then provtui's to show, not the client's);
- a resource's version changes exactly when what is shown of it changes (a digest of it, weak ETag).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from provtui.domain.errors import InvalidInput
from provtui.domain.mapping import ENTERPRISE

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PROVTUI_USER = "urn:ietf:params:scim:schemas:extension:provtui:2.0:User"  # every other profile attribute

# A User's singular attributes and its name's, and the enterprise extension's: SCIM name -> profile attribute.
CORE = {"userName": "login", "displayName": "displayName", "title": "title", "nickName": "nickName", "userType": "userType",
        "preferredLanguage": "preferredLanguage", "locale": "locale", "timezone": "timezone", "profileUrl": "profileUrl"}  # fmt: skip
NAME = {"givenName": "firstName", "familyName": "lastName", "middleName": "middleName",
        "honorificPrefix": "honorificPrefix", "honorificSuffix": "honorificSuffix"}  # fmt: skip
ENTERPRISE_FIELDS = {"employeeNumber": "employeeNumber", "costCenter": "costCenter", "organization": "organization",
                     "division": "division", "department": "department"}  # fmt: skip
MAPPED = frozenset({*CORE.values(), *NAME.values(), *ENTERPRISE_FIELDS.values(), "email", "manager", "phoneNumber"})
# Multi-valued attributes kept as the client sent them and shown back to it (emails and phoneNumbers too: the
# profile holds the preferred one).  Never the password: provtui keeps no one's password.
KEPT = ("emails", "phoneNumbers", "addresses", "ims", "photos", "entitlements", "roles", "x509Certificates")
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


@dataclass(frozen=True)
class PushedUser:
    profile: dict[str, Any]  # the attributes the resource holds (an absent one: not in it)
    active: bool | None  # None: the resource does not say (a create makes the person active; a replace leaves them)
    external_id: str | None
    kept: dict[str, list[Any]]  # the multi-valued attributes (KEPT) it holds, as sent


def pushed_user(resource: Mapping[str, Any]) -> PushedUser:
    """What a User resource (as JSON) says of a person; InvalidInput names the attribute that cannot be read."""
    profile: dict[str, Any] = {}
    for scim, attribute in CORE.items():
        _put(profile, attribute, resource.get(scim), scim)
    name = resource.get("name") or {}
    for scim, attribute in NAME.items():
        _put(profile, attribute, name.get(scim), f"name.{scim}")
    _put(profile, "email", _preferred(resource.get("emails"), "emails"), "emails")
    _put(profile, "phoneNumber", _preferred(resource.get("phoneNumbers"), "phoneNumbers"), "phoneNumbers")
    enterprise = resource.get(ENTERPRISE) or {}
    for scim, attribute in ENTERPRISE_FIELDS.items():
        _put(profile, attribute, enterprise.get(scim), f"{ENTERPRISE}:{scim}")
    manager = enterprise.get("manager")
    _put(profile, "manager", manager.get("value") if isinstance(manager, Mapping) else manager, f"{ENTERPRISE}:manager")
    for key, value in (resource.get(PROVTUI_USER) or {}).items():
        if key in MAPPED or key == "login":
            raise InvalidInput(f"{PROVTUI_USER}:{key}", "is a standard attribute: send it as SCIM's own")
        _put(profile, key, value, f"{PROVTUI_USER}:{key}")
    external_id = resource.get("externalId")
    active = None if resource.get("active") is None else scim_bool(resource["active"], "active")
    kept = {name: list(resource[name]) for name in KEPT if isinstance(resource.get(name), list) and resource[name]}
    if isinstance(resource.get("name"), Mapping) and resource["name"].get("formatted"):
        kept["name"] = [dict(resource["name"])]
    if isinstance(manager, Mapping):
        kept["manager"] = [dict(manager)]
    if not resource.get("displayName"):
        kept["displayName"] = []  # none sent: the derived one is not shown back
    if active is None:
        kept["active"] = []  # not said: the person's state is provtui's, not shown back as the client's
    return PushedUser(profile, active, None if external_id in (None, "") else str(external_id), kept)


def scim_bool(value: Any, attribute: str) -> bool:
    """A boolean as clients send it: true/false, or (Entra ID) the strings "True"/"False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInput(attribute, f"{value!r} is not a boolean")


def _put(profile: dict[str, Any], attribute: str, value: Any, scim: str) -> None:
    if value is None:
        return
    if attribute in MAPPED:  # (a number is read as its text: an employeeNumber sent as 42)
        if isinstance(value, (dict, list, bool)):
            raise InvalidInput(scim, f"{type(value).__name__} where a single text value is expected")
        profile[attribute] = str(value)
    elif isinstance(value, dict):
        raise InvalidInput(scim, "an object where a value or a list of values is expected")
    else:
        profile[attribute] = value


def _preferred(values: Any, attribute: str) -> str | None:
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, Mapping) for v in values):
        raise InvalidInput(attribute, "is a list of {value, type, primary}")
    chosen = next((v for v in values if v.get("primary") is True or v.get("primary") == "True"), None)
    chosen = chosen or next((v for v in values if v.get("type") == "work"), None) or (values[0] if values else None)
    value = chosen.get("value") if chosen else None
    return None if value in (None, "") else str(value)


def user_resource(
    user: Mapping[str, Any], groups: Iterable[tuple[str, str]], external_id: str | None, kept: Mapping[str, list[Any]] | None = None
) -> dict[str, Any]:
    """A person as a User resource, without ``meta`` (``with_meta``); ``groups``: (id, name) of their groups;
    ``kept``: the multi-valued attributes their client sent (an emails or phoneNumbers list only while its
    preferred value is still the profile's: another source may have changed it since)."""
    profile = user["profile"]
    resource: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": user["id"]}
    if external_id is not None:
        resource["externalId"] = external_id
    resource["userName"] = user["login"]
    resource.update({scim: profile[attribute] for scim, attribute in CORE.items() if attribute != "login" and attribute in profile})
    kept = kept or {}
    if "displayName" in kept and profile.get("displayName") == f"{profile.get('firstName')} {profile.get('lastName')}":
        resource.pop("displayName", None)  # provtui's own (from the names), where the client sent none
    name = {scim: profile[attribute] for scim, attribute in NAME.items() if attribute in profile}
    if name:
        sent = (kept.get("name") or [{}])[0]
        same = all(sent.get(scim) == value for scim, value in name.items())
        formatted = (
            sent["formatted"] if same and sent.get("formatted") else " ".join(profile[a] for a in ("firstName", "lastName") if a in profile)
        )
        resource["name"] = {**name, "formatted": formatted}
    if profile.get("email"):
        resource["emails"] = [{"value": profile["email"], "type": "work", "primary": True}]
    if profile.get("phoneNumber"):
        resource["phoneNumbers"] = [{"value": profile["phoneNumber"], "type": "work", "primary": True}]
    for attribute in KEPT:
        values = kept.get(attribute)
        profile_value = {"emails": profile.get("email"), "phoneNumbers": profile.get("phoneNumber")}.get(attribute, values)
        if values and (profile_value is values or _preferred(values, attribute) == profile_value):
            resource[attribute] = values
    if "active" not in kept:
        resource["active"] = user["state"] == "active"
    enterprise = {scim: profile[attribute] for scim, attribute in ENTERPRISE_FIELDS.items() if attribute in profile}
    if profile.get("manager"):
        sent = (kept.get("manager") or [{}])[0]
        enterprise["manager"] = sent if sent.get("value") == profile["manager"] else {"value": str(profile["manager"])}
    others = {key: value for key, value in sorted(profile.items()) if key not in MAPPED}
    if enterprise:
        resource["schemas"].append(ENTERPRISE)
        resource[ENTERPRISE] = enterprise
    if others:
        resource["schemas"].append(PROVTUI_USER)
        resource[PROVTUI_USER] = others
    shown = sorted(groups, key=lambda g: g[1])
    if shown:
        resource["groups"] = [{"value": gid, "display": name, "type": "direct"} for gid, name in shown]
    return resource


def group_resource(group: Mapping[str, Any], members: Iterable[tuple[str, str]], external_id: str | None) -> dict[str, Any]:
    """A group as a Group resource, without ``meta``; ``members``: (user id, login) of its members."""
    resource: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": group["id"], "displayName": group["name"]}
    if external_id is not None:
        resource["externalId"] = external_id
    # (no display: a member is named by their id, which a client keeps; /Schemas says display is read-only)
    resource["members"] = [{"value": uid, "$ref": f"Users/{uid}", "type": "User"} for uid, _ in sorted(members, key=lambda m: m[1])]
    return resource


def with_meta(resource: dict[str, Any], kind: str, created: str, modified: str) -> dict[str, Any]:
    """``resource`` with its ``meta``: the version a digest of the rest (it changes when the resource does)."""
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]
    return {**resource, "meta": {"resourceType": kind, "created": created, "lastModified": modified, "version": f'W/"{digest}"'}}


def pushed_members(resource: Mapping[str, Any]) -> list[str]:
    """The user ids a Group resource names as its members (a member that is a group is refused: provtui's
    groups do not nest)."""
    members = resource.get("members") or []
    if not isinstance(members, list):
        raise InvalidInput("members", "is a list of {value}")
    ids = []
    for member in members:
        if not isinstance(member, Mapping) or not member.get("value"):
            raise InvalidInput("members", "each member needs its value (the user's id)")
        if str(member.get("type") or "User") != "User":
            raise InvalidInput("members", f"{member['value']!r} is a {member['type']}: only people can be members here")
        ids.append(str(member["value"]))
    return list(dict.fromkeys(ids))
