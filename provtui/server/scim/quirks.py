"""What real SCIM clients send that RFC 7644 reads otherwise, made into what they mean before scim2-server
reads it (#20).  Pure.

Microsoft Entra ID removes a group's members as ``{"op": "Remove", "path": "members", "value": [{"value":
ID}, ...]}``.  By RFC 7644 §3.5.2.2 a remove of ``members`` without a value filter removes every member, and
a value is not read: implementations have shipped removing everybody, or nobody.  It is rewritten to the
filter that names exactly those members (an empty list removes nobody).  Every other quirk the tests replay
(Okta's path-less replace of ``active``, Entra's ``Replace`` and ``"False"``, dotted keys in a path-less
replace) scim2-server reads as meant.
"""

from __future__ import annotations

import json
from typing import Any


def member_removals(operations: list[Any]) -> list[Any]:
    """``operations`` with each remove of ``members`` by a value list written as a value filter."""
    rewritten: list[Any] = []
    for operation in operations:
        values = operation.get("value") if isinstance(operation, dict) else None
        if (
            isinstance(operation, dict)
            and str(operation.get("op", "")).lower() == "remove"
            and str(operation.get("path", "")).strip().lower() == "members"
            and isinstance(values, list)
            and all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in values)
        ):
            if values:  # (JSON's quoting is a SCIM filter's: RFC 7644 §3.4.2.2)
                names = " or ".join(f"value eq {json.dumps(v['value'])}" for v in values)
                rewritten.append({"op": "remove", "path": f"members[{names}]"})
            continue
        rewritten.append(operation)
    return rewritten


def patch_body(body: bytes) -> bytes:
    """A PATCH request's body with ``member_removals`` applied; any other body, or one that is not JSON, as it is."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    operations = document.get("Operations") if isinstance(document, dict) else None
    if not isinstance(operations, list):
        return body
    fixed = member_removals(operations)
    return body if fixed == operations else json.dumps({**document, "Operations": fixed}).encode()
