"""The checked tree: what the checker builds from Lark's parse tree, and what compilers consume.

Every node carries its offset in the text (``pos``, for error carets) and the kinds of value
it can produce (``kinds``, checked at compile time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provtui.domain.expressions.functions import Function
from provtui.domain.expressions.values import ARRAY, BOOLEAN, NULL, NUMBER, OBJECT, STRING


@dataclass(frozen=True, slots=True)
class Literal:
    pos: int
    kinds: frozenset[str]
    value: Any


@dataclass(frozen=True, slots=True)
class Attribute:
    pos: int
    kinds: frozenset[str]
    root: str
    name: str


@dataclass(frozen=True, slots=True)
class Not:
    pos: int
    kinds: frozenset[str]
    operand: Node


@dataclass(frozen=True, slots=True)
class Logical:
    pos: int
    kinds: frozenset[str]
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    pos: int
    kinds: frozenset[str]
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Concat:
    """``a + b + c``, folded left to right; ``plus_at`` are the offsets of the ``+`` signs."""

    pos: int
    kinds: frozenset[str]
    operands: tuple[Node, ...]
    plus_at: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Conditional:
    pos: int
    kinds: frozenset[str]
    test: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call:
    """A call; when ``function.reads_groups`` every argument is a string Literal (a group name)."""

    pos: int
    kinds: frozenset[str]
    name: str
    function: Function
    args: tuple[Node, ...]

    def group_names(self) -> tuple[str, ...]:
        """The quoted group names of a call that ``reads_groups``."""
        return tuple(a.value for a in self.args if isinstance(a, Literal))


Node = Literal | Attribute | Not | Logical | Comparison | Concat | Conditional | Call


@dataclass(frozen=True)
class ParsedExpression:
    """The checked tree of an expression and what it reads."""

    text: str
    tree: Node
    kind: str
    attributes_read: frozenset[tuple[str, str]]
    groups_read: frozenset[str]


_KIND_WORDS = {NULL: "null", BOOLEAN: "a condition", NUMBER: "a number", STRING: "text", ARRAY: "an array", OBJECT: "an object"}


def describe(kinds: frozenset[str]) -> str:
    """Kinds as a message says them: "text or a number"."""
    shown = [k for k in (STRING, NUMBER, ARRAY, OBJECT, BOOLEAN, NULL) if k in kinds]
    if len(shown) > 1 and NULL in shown:
        shown.remove(NULL)
    return " or ".join(_KIND_WORDS[k] for k in shown)
