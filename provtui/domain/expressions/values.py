"""Values, kinds and operations, shared by the checker, the compiler and any interpreter.

Values are JSON values: null, booleans, numbers (int or float), strings and arrays; anything
else is an opaque "object".  ``==`` never converts, ``< <= > >=`` compare two numbers or two
strings (anything else is false), ``+`` adds numbers and otherwise joins text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from provtui.domain.expressions.errors import Fault

MAX_LENGTH = 4000
MAX_DEPTH = 64
MAX_STRING = 65536
MAX_NUMBER_LENGTH = 32

NULL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT = "null", "boolean", "number", "string", "array", "object"
ANY = frozenset({NULL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT})
BOOLEAN_ONLY = frozenset({BOOLEAN})
STRING_ONLY = frozenset({STRING})
NUMBER_ONLY = frozenset({NUMBER})
ARRAY_ONLY = frozenset({ARRAY})

NUMBER_TYPES: frozenset[type] = frozenset({int, float})
ARRAY_TYPES: frozenset[type] = frozenset({list, tuple})
NO_GROUPS: frozenset[str] = frozenset()
NO_SCOPE: Mapping[str, Any] = {}

Scope = Mapping[str, Mapping[str, Any] | None]
"""What an expression reads: root name -> that root's attributes, e.g. {"user": profile}."""


def kind_of(value: Any) -> str:
    """The expression kind of a Python value; anything not JSON-like is an opaque "object"."""
    if value is None:
        return NULL
    t = type(value)
    if t is str:
        return STRING
    if t is bool:
        return BOOLEAN
    if t is int or t is float:
        return NUMBER
    if t is list or t is tuple:
        return ARRAY
    return OBJECT


def equals(a: Any, b: Any, _depth: int = 0) -> bool:
    """``a == b``: same kind and value, numbers compared numerically, no conversions."""
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is str or ta is int or ta is float or ta is bool or a is None:
            return a == b  # type: ignore[no-any-return]  # a bool for these types; bool() would cost a call
        if ta is list or ta is tuple:
            return _arrays_equal(a, b, _depth)
        return a is b
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        return a == b  # type: ignore[no-any-return]  # numbers: a bool
    if ta in ARRAY_TYPES and tb in ARRAY_TYPES:
        return _arrays_equal(a, b, _depth)
    return False


def _arrays_equal(a: Any, b: Any, depth: int) -> bool:
    if depth >= 16:  # arrays nested this deep compare by identity: a bound, not a RecursionError
        return a is b
    return len(a) == len(b) and all(equals(x, y, depth + 1) for x, y in zip(a, b, strict=False))


def _comparable(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    return (ta is str and tb is str) or (ta in NUMBER_TYPES and tb in NUMBER_TYPES)


def _lt(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a < b


def _le(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a <= b


def _gt(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a > b


def _ge(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a >= b


def _ne(a: Any, b: Any) -> bool:
    return not equals(a, b)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {"==": equals, "!=": _ne, "<": _lt, "<=": _le, ">": _gt, ">=": _ge}
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
"""The operator that gives the same result with its operands swapped."""


def to_text(value: Any) -> str:
    """How ``+`` writes a value into text."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]  # an exact str
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        try:
            return str(value)
        except ValueError:  # more digits than Python will print
            raise Fault("a number is too long to write as text") from None
    if t is float:
        if math.isfinite(value):
            return repr(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if t is list or t is tuple:
        return ",".join(to_text(item) if kind_of(item) not in (ARRAY, OBJECT) else "" for item in value)
    return ""


def plus(a: Any, b: Any) -> Any:
    """``a + b``: the sum of two numbers, otherwise the two values joined as text."""
    ta, tb = type(a), type(b)
    if ta is str and tb is str:
        if len(a) + len(b) > MAX_STRING:
            raise Fault(f"'+' would build a string longer than {MAX_STRING:,} characters")
        return a + b
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        try:
            return a + b
        except OverflowError:
            raise Fault("the sum is too large") from None
    x, y = to_text(a), to_text(b)
    if len(x) + len(y) > MAX_STRING:
        raise Fault(f"'+' would build a string longer than {MAX_STRING:,} characters")
    return x + y
