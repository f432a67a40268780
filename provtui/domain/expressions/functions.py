"""The functions table: what expressions may call, and the roots they may read."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from provtui.domain.expressions.errors import Fault
from provtui.domain.expressions.values import (
    ANY,
    ARRAY_ONLY,
    ARRAY_TYPES,
    BOOLEAN_ONLY,
    MAX_STRING,
    NULL,
    NUMBER,
    NUMBER_ONLY,
    STRING,
    STRING_ONLY,
    equals,
)


@dataclass(frozen=True)
class Function:
    """A function expressions may call.

    ``impl`` gets the evaluated arguments and must be pure and total: it never raises,
    and returns one of the ``returns`` kinds.  ``params`` are the kinds each argument may
    have (null is always accepted; an argument that can never be one of them is a
    compile-time error); the last ``optional`` of them may be left out.  A function that
    ``reads_groups`` takes quoted group names and gets the caller's groups first.
    """

    impl: Callable[..., Any]
    params: tuple[frozenset[str], ...]
    returns: frozenset[str]
    optional: int = 0
    reads_groups: bool = False


def _starts_with(s: Any, prefix: Any) -> bool:
    return type(s) is str and type(prefix) is str and s.startswith(prefix)


def _ends_with(s: Any, suffix: Any) -> bool:
    return type(s) is str and type(suffix) is str and s.endswith(suffix)


def _string_contains(s: Any, part: Any) -> bool:
    return type(s) is str and type(part) is str and part in s


def _to_lower(s: Any) -> str | None:
    if type(s) is not str:
        return None
    return _capped(s, s.lower())


def _to_upper(s: Any) -> str | None:
    if type(s) is not str:
        return None
    return _capped(s, s.upper())


def _capped(before: str, after: str) -> str:
    # Case mapping can lengthen text ("ß" -> "SS"): the growth is capped like '+'.
    if len(after) > MAX_STRING and len(after) > len(before):
        raise Fault(f"the result would be longer than {MAX_STRING:,} characters")
    return after


def _index(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


_TO_END: Any = object()


def _substring(s: Any, start: Any, end: Any = _TO_END) -> str | None:
    if type(s) is not str:
        return None
    if type(start) is not int and (start := _index(start)) is None:
        return None
    start = max(start, 0)
    if end is _TO_END:
        return s[start:]
    if type(end) is not int and (end := _index(end)) is None:
        return None
    # Slicing clamps non-negative bounds to the string (and gives "" when end <= start).
    return s[start:end] if end > 0 else ""


def _length(s: Any) -> int | None:
    return len(s) if type(s) is str else None


def _array_contains(array: Any, value: Any) -> bool:
    if type(array) not in ARRAY_TYPES:
        return False
    if type(value) is str:  # the common case; a str equals only an equal str
        return value in array
    return any(equals(item, value) for item in array)


def is_member(groups: Collection[str], name: str) -> bool:
    """``isMemberOfGroupName(name)``: the compiler inlines it as ``name in groups``."""
    return name in groups


MAPPING_FUNCTIONS: Mapping[str, Function] = {
    "String.startsWith": Function(_starts_with, (STRING_ONLY, STRING_ONLY), BOOLEAN_ONLY),
    "String.endsWith": Function(_ends_with, (STRING_ONLY, STRING_ONLY), BOOLEAN_ONLY),
    "String.stringContains": Function(_string_contains, (STRING_ONLY, STRING_ONLY), BOOLEAN_ONLY),
    "String.toLowerCase": Function(_to_lower, (STRING_ONLY,), frozenset({STRING, NULL})),
    "String.toUpperCase": Function(_to_upper, (STRING_ONLY,), frozenset({STRING, NULL})),
    "String.substring": Function(_substring, (STRING_ONLY, NUMBER_ONLY, NUMBER_ONLY), frozenset({STRING, NULL}), optional=1),
    "String.len": Function(_length, (STRING_ONLY,), frozenset({NUMBER, NULL})),
    "Arrays.contains": Function(_array_contains, (ARRAY_ONLY, ANY), BOOLEAN_ONLY),
}
"""Attribute mappings: every function but group membership (a mapping computes a value, not an entitlement)."""
DEFAULT_FUNCTIONS: Mapping[str, Function] = {
    **MAPPING_FUNCTIONS,
    "isMemberOfGroupName": Function(is_member, (STRING_ONLY,), BOOLEAN_ONLY, reads_groups=True),
}
BUILTINS = frozenset(id(f) for f in DEFAULT_FUNCTIONS.values())
"""The ids of the built-in functions: pure and total, so the compiler may fold and trust their kinds."""

RULE_ROOTS = frozenset({"user"})
MAPPING_ROOTS = frozenset({"user", "assignment"})
