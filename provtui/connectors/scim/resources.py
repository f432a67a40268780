"""SCIM 2.0 resources (RFC 7643), pure: flat mapping attributes to and from User and Group resources.

The mapping layer hands over *flat* attributes keyed by SCIM paths (``name.givenName``,
``emails[type eq "work"].value``, ``urn:...:enterprise:2.0:User:department``).  The functions
here nest them into a User resource, flatten replies back to the same keys, and turn changes
into PatchOp operations.  Resources stay plain dicts encoded with orjson: this is the
provisioning hot path and pydantic models would only add cost.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from provtui.connectors.base import RemoteGroup, RemoteUser

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# Top-level keys of a User that are protocol bookkeeping or server-managed, not attributes.
_NOT_ATTRIBUTES = frozenset({"schemas", "id", "meta", "active", "groups"})
# attr[key eq "literal"].sub: the value-path form used to address one multi-valued entry.
_VALUE_PATH = re.compile(
    r'(?P<attr>[A-Za-z][\w$-]*)\[(?P<key>[A-Za-z][\w$-]*) eq (?P<literal>"(?:[^"\\]|\\.)*")\]'
    r"\.(?P<sub>[A-Za-z][\w$-]*)"
)
MAX_DEPTH = 32  # nesting of a reply's attributes: real ones nest two or three deep


# --------------------------------------------------------------------------- pure mapping


def quote_filter_value(value: str) -> str:
    """A filter string literal: RFC 7644 §3.4.2.2 uses JSON string syntax, so escape as JSON."""
    return orjson.dumps(value).decode()


def _split_schema(key: str) -> tuple[str | None, str]:
    """(extension schema URN or None for core, attribute path) of a flat attribute key."""
    if not key.startswith("urn:"):
        return None, key
    # The URN ends at the last colon before any value filter (whose literal may hold colons).
    urn = key.split("[", 1)[0].rpartition(":")[0]
    return (None if urn == CORE_USER else urn), key[len(urn) + 1 :]


def _assign(container: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dotted or value-path) inside a resource or extension object."""
    match = _VALUE_PATH.fullmatch(path)
    if match is None:
        *parents, leaf = path.split(".")
        for parent in parents:
            container = container.setdefault(parent, {})
        container[leaf] = value
        return
    entries: list[dict[str, Any]] = container.setdefault(match["attr"], [])
    key, wanted = match["key"], orjson.loads(match["literal"])
    entry = next((e for e in entries if e.get(key) == wanted), None)
    if entry is None:
        entry = {key: wanted}
        if not entries:
            entry["primary"] = True  # the first (mapped) entry is the primary one, e.g. the work email
        entries.append(entry)
    entry[match["sub"]] = value


def to_resource(attributes: dict[str, Any], active: bool = True) -> dict[str, Any]:
    """Nest flat attributes into a SCIM User resource; None values are left out."""
    resource: dict[str, Any] = {"schemas": [CORE_USER]}
    for key, value in attributes.items():
        if value is None:
            continue
        urn, path = _split_schema(key)
        target = resource
        if urn is not None:
            if urn not in resource["schemas"]:
                resource["schemas"].append(urn)
            target = resource.setdefault(urn, {})
        _assign(target, path, value)
    resource["active"] = active
    return resource


def _flatten(out: dict[str, Any], name: str, value: Any, depth: int = 0) -> None:
    """Add ``value`` under ``name`` to ``out``, descending into complex and multi-valued attributes."""
    if depth > MAX_DEPTH:  # recursing as deep as a hostile reply goes would overflow the stack
        raise ValueError(f"SCIM resource is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for sub, sub_value in value.items():
            _flatten(out, f"{name}.{sub}", sub_value, depth + 1)
    elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
        # Entries are addressed by type, as the mapping does; when a type repeats, the primary wins.
        seen: set[str] = set()
        for entry in sorted(value, key=lambda e: e.get("primary") is not True):
            kind = entry.get("type")
            if not isinstance(kind, str) or kind in seen:
                continue
            seen.add(kind)
            base = f"{name}[type eq {quote_filter_value(kind)}]"
            for sub, sub_value in entry.items():
                if sub not in ("type", "primary"):
                    out[f"{base}.{sub}"] = sub_value
    else:
        out[name] = value


def from_resource(resource: dict[str, Any]) -> RemoteUser:
    """Flatten a SCIM User resource back to the keys ``to_resource`` accepts."""
    remote_id = resource.get("id")
    if not isinstance(remote_id, str) or not remote_id:
        raise ValueError("SCIM resource has no id")
    attributes: dict[str, Any] = {}
    for key, value in resource.items():
        if key in _NOT_ATTRIBUTES:
            continue
        if key.startswith("urn:") and isinstance(value, dict):
            prefix = "" if key == CORE_USER else f"{key}:"
            for name, sub_value in value.items():
                _flatten(attributes, prefix + name, sub_value, 1)
        else:
            _flatten(attributes, key, value)
    # A provider that does not support ``active`` omits it: such users are active.
    return RemoteUser(id=remote_id, active=resource.get("active") is not False, attributes=attributes)


def _removal_path(path: str) -> str:
    """Removing the ``value`` of a multi-valued entry removes the entry; a bare
    ``{type, primary}`` left behind would be invalid (value is the entry's identity)."""
    match = _VALUE_PATH.fullmatch(_split_schema(path)[1])
    return path.removesuffix(".value") if match and match["sub"] == "value" else path


def patch_operations(changed: dict[str, Any], active: bool | None = None) -> list[dict[str, Any]]:
    """PatchOp operations: replace each changed value, remove each None, then set ``active``."""
    operations: list[dict[str, Any]] = [
        {"op": "remove", "path": _removal_path(path)} if value is None else {"op": "replace", "path": path, "value": value}
        for path, value in changed.items()
    ]
    if active is not None:
        operations.append({"op": "replace", "path": "active", "value": active})
    return operations


def group_resource(display_name: str, external_id: str | None, members: set[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {"schemas": [CORE_GROUP], "displayName": display_name, "members": [{"value": m} for m in sorted(members)]}
    if external_id:
        resource["externalId"] = external_id
    return resource


def group_from_resource(resource: dict[str, Any]) -> RemoteGroup:
    remote_id = resource.get("id")
    if not isinstance(remote_id, str) or not remote_id:
        raise ValueError("SCIM group has no id")
    members = resource.get("members")
    members = members if isinstance(members, list) else []
    name, external_id = resource.get("displayName"), resource.get("externalId")
    return RemoteGroup(
        id=remote_id,
        display_name=name if isinstance(name, str) else "",
        external_id=external_id if isinstance(external_id, str) and external_id else None,
        members={m["value"] for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)},
    )


def group_patch_operations(display_name: str | None, add: set[str], remove: set[str]) -> list[dict[str, Any]]:
    """PatchOp for a group: rename, add members, remove each member by value filter (RFC 7644 §3.5.2.2)."""
    operations: list[dict[str, Any]] = []
    if display_name is not None:
        operations.append({"op": "replace", "path": "displayName", "value": display_name})
    if add:
        operations.append({"op": "add", "path": "members", "value": [{"value": m} for m in sorted(add)]})
    for member in sorted(remove):
        operations.append({"op": "remove", "path": f"members[value eq {quote_filter_value(member)}]"})
    return operations
