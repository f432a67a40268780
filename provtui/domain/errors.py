"""Errors the service reports to its callers; the CLI maps each to an exit code."""

from __future__ import annotations

from typing import Any


class ProvtuiError(Exception):
    exit_code = 2


class InvalidInput(ProvtuiError):
    """Bad input; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(InvalidInput):
    def __init__(self, kind: str, name: str):
        super().__init__(kind, f"no {kind} named {name!r}")


class NotAllowed(ProvtuiError):
    exit_code = 4


class HeldForConfirmation(ProvtuiError):
    """A big change held by a safeguard until someone confirms it; ``details`` has its counts."""

    exit_code = 3

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.details = details or {}


class ImportRefused(ProvtuiError):
    """A run refused before it changed anything: it yields no valid person (without allow_empty),
    or (strict) rows were rejected.  Exit 2; ``details`` has the counts and the rejected rows."""

    exit_code = 2

    def __init__(self, message: str, details: dict[str, Any]):
        super().__init__(message)
        self.details = details


class SourceFailed(ProvtuiError):
    """A source or an app could not be read.  Exit 1 when it may pass (server down, timeout),
    2 when it needs a person (credentials, base DN, filter, a token variable not set)."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable
        self.exit_code = 1 if retryable else 2
