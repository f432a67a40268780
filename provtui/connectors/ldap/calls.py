"""The audit of an LDAP app's operations: every ldap3 operation on a connection, reported as
(method, DN, result code, ms) — for Password Modify its user, never the request's password."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import ldap3

_PASSWORD_MODIFY_OID = "1.3.6.1.4.1.4203.1.11.1"


Event = tuple[str, str, int | None, float]


_OPERATIONS = (
    ("search", "SEARCH"),
    ("add", "ADD"),
    ("modify", "MODIFY"),
    ("modify_dn", "MODRDN"),
    ("delete", "DELETE"),
    ("extended", "EXTENDED"),
)


def _operation_path(method: str, args: tuple, kwargs: dict) -> str:
    """The DN an operation works on; for Password Modify its user, never the request's password."""
    if method != "EXTENDED":
        target = args[0] if args else kwargs.get("search_base", kwargs.get("dn", ""))
        return str(target)
    name = args[0] if args else kwargs.get("request_name")
    value = args[1] if len(args) > 1 else kwargs.get("request_value")
    if str(name) == _PASSWORD_MODIFY_OID and value is not None:
        with contextlib.suppress(Exception):  # pyasn1 raises assorted errors for an absent component
            identity = value["userIdentity"]
            if identity.hasValue():
                return str(identity)
    return str(name)


def instrument(conn: ldap3.Connection, record: Callable[[str, str, int | None, float], None]) -> None:
    """Report every LDAP operation on ``conn``: wrap its methods on the instance."""
    for attribute, method in _OPERATIONS:
        original = getattr(conn, attribute)

        def wrapper(*args: Any, _original: Callable = original, _method: str = method, **kwargs: Any) -> Any:
            path = _operation_path(_method, args, kwargs)
            started = time.perf_counter()
            status: int | None = None
            try:
                result = _original(*args, **kwargs)
                status = (conn.result or {}).get("result")
                return result
            finally:
                record(_method, path, status, (time.perf_counter() - started) * 1000)

        setattr(conn, attribute, wrapper)
