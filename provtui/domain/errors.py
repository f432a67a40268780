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
