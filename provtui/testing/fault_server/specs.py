"""The fault specs POST /_faults takes (see the package): their kinds and parameters, and how one fires."""

from __future__ import annotations

import base64
import random
from typing import Any

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# Fault kinds in the order they are tried, each with its own parameters and their defaults.
_COMMON = {"probability": None, "next": None, "limit": None, "method": None, "path": None, "query": None}
KINDS: dict[str, dict[str, Any]] = {
    "app_down": {"mode": "503", "retry_after": None},
    "slow": {"delay_ms": 1000, "when": "before"},
    "rate_limit": {"retry_after": 1},
    "unavailable": {"status": 503, "retry_after": None},
    "bad_request": {"status": 400, "detail": "request rejected by fault injection", "scim_type": "invalidValue"},
    "drop": {"reset": False},
    "malformed": {"status": 200, "body": '{"schemas": ["' + LIST_SCHEMA + '"], "totalResults": 1, "Resources": [{"id": "2819c2'},
    "stale_search": {},
    "after_commit": {"reply": "drop"},
    "scripted": {"status": 200, "body_b64": "", "headers": None},
}
_CHOICES = {"mode": {"503", "reset"}, "when": {"before", "after"}, "reply": {"drop", "reset", "malformed"}}


class FaultSpecError(ValueError):
    """A fault spec sent to POST /_faults that does not make sense."""


def request_kind(method: str, path: str) -> str:
    """``METHOD /Resource`` or ``METHOD /Resource/{id}``: the key of stats and of ``path`` matches."""
    if path == "/v2" or path.startswith("/v2/"):
        path = path[3:]
    segments = [s for s in path.removesuffix(".scim").split("/") if s]
    if not segments:
        where = "/"
    elif len(segments) == 1:
        where = f"/{segments[0]}"
    else:
        tail = segments[1] if segments[1].startswith(".") else "{id}"  # e.g. /Users/.search
        where = f"/{segments[0]}/{tail}"
    return f"{method.upper()} {where}"


class Fault:
    """One configured fault: its parameters and how often it fired."""

    def __init__(self, kind: str, raw: dict[str, Any]) -> None:
        if not isinstance(raw, dict):
            raise FaultSpecError(f"{kind}: the spec must be a JSON object")
        allowed = {**_COMMON, **KINDS[kind]}
        unknown = set(raw) - set(allowed)
        if unknown:
            raise FaultSpecError(f"{kind}: unknown parameters {sorted(unknown)}")
        self.kind = kind
        self.params = {**allowed, **raw}
        p = self.params
        if p["probability"] is None:
            p["probability"] = 1.0
        if not isinstance(p["probability"], (int, float)) or not 0 <= p["probability"] <= 1:
            raise FaultSpecError(f"{kind}: probability must be between 0 and 1")
        for name in ("next", "limit"):
            if p[name] is not None and (not isinstance(p[name], int) or p[name] < 0):
                raise FaultSpecError(f"{kind}: {name} must be a non-negative integer")
        for name, choices in _CHOICES.items():
            if name in p and str(p[name]) not in choices:
                raise FaultSpecError(f"{kind}: {name} must be one of {sorted(choices)}")
        if kind == "scripted":
            _check_scripted(p)
        methods = p["method"]
        if methods is not None:
            methods = [methods] if isinstance(methods, str) else list(methods)
            p["method"] = [m.upper() for m in methods]
        self.remaining: int | None = p["next"]
        self.fired = 0

    def matches(self, method: str, where: str, query: str) -> bool:
        p = self.params
        if p["method"] is not None and method not in p["method"]:
            return False
        if p["path"] is not None and where != p["path"]:
            return False
        if p["query"] is not None and p["query"] not in query:
            return False
        return not (self.kind == "stale_search" and (method != "GET" or "filter=" not in query))

    def fire(self, rng: random.Random) -> bool:
        """Whether it fires on one matching request (the caller holds the lock)."""
        if self.params["limit"] is not None and self.fired >= self.params["limit"]:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        elif rng.random() >= self.params["probability"]:
            return False
        self.fired += 1
        return True

    def view(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.params.items() if k != "body"}  # the decoded bytes: body_b64 shows them
        return {**shown, "remaining": self.remaining, "fired": self.fired}


def _check_scripted(params: dict[str, Any]) -> None:
    status = params["status"]
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 999:
        raise FaultSpecError("scripted: status must be an integer from 200 to 999")  # 1xx are not final replies
    try:
        params["body"] = base64.b64decode(params["body_b64"], validate=True)
    except (TypeError, ValueError) as error:
        raise FaultSpecError(f"scripted: body_b64 is not base64 ({error})") from None
    headers = params["headers"]
    if headers is None:
        params["headers"] = [["Content-Type", SCIM_JSON]]
    elif not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(part, str) for part in h) for h in headers
    ):
        raise FaultSpecError("scripted: headers must be a list of [name, value] string pairs")
    else:
        for name, value in headers:
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise FaultSpecError(f"scripted: header {name} is not Latin-1, which HTTP/1.1 cannot carry") from None
