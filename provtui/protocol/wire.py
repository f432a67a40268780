"""What crosses the socket between a provtui server and its clients: JSON (orjson), with a few tagged values.

A call's arguments and result are JSON, except for the handful of Python values the service's API takes
or gives that JSON has no word for: bytes (a CSV), datetimes (``audit --since``), sets, the roles' enums and
the reports' dataclasses.  Each travels as ``{"$t": [tag, ...]}``.  Decoding only ever builds the types
named in ``DATACLASSES``, ``ENUMS`` and ``ERRORS``: a peer cannot make the other side instantiate anything else.

Errors travel as JSON-RPC 2.0 error objects whose ``data`` names the error's class (one of ``ERRORS``), its
exit code and its attributes, so the client raises the very error the service raised and the CLI maps it
to the same exit code as embedded.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

from provtui.domain.errors import HeldForConfirmation, ImportRefused, InvalidInput, NotAllowed, NotFound, ProvtuiError, SourceFailed
from provtui.domain.expressions.errors import ExpressionError
from provtui.domain.roles import Action, Grant, Role, Scope
from provtui.domain.rules import RuleState
from provtui.service import StoreDamaged, StoreError, StoreUnreadable
from provtui.store.chain import ChainReport

API_VERSION = 1
TAG = "$t"
# The engine's reports are imported when one arrives: a console never receives one, and need not load the engine.
DATACLASSES: dict[str, type | str] = {
    **{cls.__name__: cls for cls in (Scope, Grant, ChainReport)},
    "SyncReport": "provtui.engine.outcomes",
    "DigestReport": "provtui.engine.notifier",
}
ENUMS: dict[str, type[Enum]] = {cls.__name__: cls for cls in (Action, Role, RuleState)}
# Most specific first: an error is sent as the first of these it is an instance of.
ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ExpressionError,
        NotFound,
        InvalidInput,
        NotAllowed,
        HeldForConfirmation,
        ImportRefused,
        SourceFailed,
        ProvtuiError,
        StoreDamaged,
        StoreUnreadable,
        StoreError,
    )
}


class WireError(ValueError):
    """A message that is not what the protocol allows (not JSON, an unknown tag or type)."""


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and type(value).__name__ in DATACLASSES:
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {TAG: ["dataclass", type(value).__name__, fields]}
    if isinstance(value, datetime):
        return {TAG: ["datetime", value.isoformat()]}
    if isinstance(value, bytes):
        return {TAG: ["bytes", base64.b64encode(value).decode()]}
    if isinstance(value, (set, frozenset)):
        return {TAG: ["set", sorted(value)]}
    raise TypeError(f"{type(value).__name__} does not travel over the provtui protocol")


def _dataclass(name: str) -> type:
    cls = DATACLASSES[name]
    if isinstance(cls, str):
        cls = DATACLASSES[name] = getattr(importlib.import_module(cls), name)
    return cls


def _tag_enums(value: Any) -> Any:
    """Enums as tags (orjson would send them as bare strings): done for a call's arguments, which are small."""
    if isinstance(value, Enum) and type(value).__name__ in ENUMS:
        return {TAG: ["enum", type(value).__name__, value.value]}
    if isinstance(value, dict):
        return {k: _tag_enums(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tag_enums(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {TAG: ["dataclass", type(value).__name__, {f.name: _tag_enums(getattr(value, f.name)) for f in dataclasses.fields(value)}]}
    return value


def dumps(value: Any, *, enums: bool = False) -> bytes:
    """``value`` as the protocol's JSON; ``enums``: keep enums' types (arguments), else they go as their values."""
    return orjson.dumps(
        _tag_enums(value) if enums else value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    )


def loads(data: bytes) -> Any:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise WireError(f"not JSON: {error}") from None
    # A result of 50,000 users carries no tag: skip the walk when the text says there is none.
    return _untag(value) if b'"$t"' in data else value


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and TAG in value:
        return _decode_tag(value[TAG])
    return {k: _untag(v) for k, v in value.items()}


def _decode_tag(tag: Any) -> Any:
    if not isinstance(tag, list) or not tag or not isinstance(tag[0], str):
        raise WireError("a malformed tagged value")
    kind, *rest = tag
    try:
        if kind == "datetime":
            return datetime.fromisoformat(rest[0])
        if kind == "bytes":
            return base64.b64decode(rest[0], validate=True)
        if kind == "set":
            return frozenset(_untag(rest[0]))
        if kind == "enum":
            return ENUMS[rest[0]](rest[1])
        if kind == "dataclass":
            cls = _dataclass(rest[0])
            fields = {k: _untag(v) for k, v in rest[1].items()}
            return cls(**fields)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise WireError(f"a malformed {kind} value: {error}") from None
    raise WireError(f"an unknown tag {kind!r}")


# -- errors ------------------------------------------------------------------------------

SERVICE_ERROR = -32000  # JSON-RPC's range for the application's own errors
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


def error_object(error: BaseException) -> dict[str, Any]:
    """A JSON-RPC error object for ``error``: a service error by class, anything else as an internal error
    whose message is its type only (an unexpected error's text may quote what it should not)."""
    for name, cls in ERRORS.items():
        if isinstance(error, cls):
            state = {k: v for k, v in vars(error).items() if _plain(v)}
            exit_code = getattr(error, "exit_code", 5 if isinstance(error, StoreUnreadable) else 2)
            return {"code": SERVICE_ERROR, "message": str(error), "data": {"class": name, "exit_code": exit_code, "state": state}}
    return {"code": INTERNAL_ERROR, "message": f"the server failed: {type(error).__name__}", "data": {"class": None}}


def _plain(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


class ServerFailed(ProvtuiError):
    """The server answered with an error that is not the service's (a bug, or a protocol mismatch): exit 1."""

    exit_code = 1


def raise_error(error: dict[str, Any]) -> None:
    """Raise, in the client, the error the server sent."""
    data = error.get("data") or {}
    cls = ERRORS.get(data.get("class") or "")
    message = str(error.get("message", "the server failed"))
    if cls is None:
        raise ServerFailed(message)
    if cls is StoreDamaged:  # its damage record stays in the server; the message names it
        cls = StoreUnreadable
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    for key, value in (data.get("state") or {}).items():
        setattr(exc, key, value)
    raise exc
