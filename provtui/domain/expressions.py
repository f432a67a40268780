"""Expressions: the subset of Okta Expression Language that group rules and attribute mappings use.

    user.department == "Engineering" AND NOT String.startsWith(user.title, "Intern")
    user.firstName + " " + user.lastName

Text is parsed with a Lark LALR grammar (never ``eval``), checked, and compiled once
into nested Python closures, so evaluating costs no parsing.  Nothing in the text can
reach a Python object: a name resolves only to a configured root (``user.<attr>``) or
to an entry of the functions table, both checked at compile time, attribute names may
not start with ``_``, and evaluation only ever calls methods of exact ``str``, ``int``,
``float``, ``list`` and ``tuple`` values.  Every failure -- bad syntax, an unknown name,
input over the limits, a runtime fault -- is an :class:`ExpressionError` that names the
column and draws a caret under it.

Evaluate one user with ``expression({"user": profile}, groups)``, or a whole rule run
with ``expression.evaluate_all(Population(scopes, groups))``, which works column by
column and evaluates each part once per distinct value it reads.  ``attributes_read``
and ``groups_read`` tell a rules engine which expressions a change can affect.
:class:`TreeInterpreter` walks the same checked tree on every call: the baseline the
benchmark (tests/bench/bench_rules.py) measures against, and the tests' oracle.

Semantics (null-safe: missing data is never an exception):

- Values are JSON values: null, booleans, numbers (int or float; ``1 == 1.0``), strings
  and arrays.  ``root.attr`` is the attribute's value, or null when the attribute or the
  whole root is missing.  Names, attributes and functions are case-sensitive; the
  keywords ``AND OR NOT true false null`` are not (``and``, ``Not`` and ``TRUE`` work)
  and are reserved: no name or attribute can be spelled like one.
- Literals: ``"double"`` or ``'single'`` quoted strings with the escapes ``\\\\ \\" \\'
  \\n \\r \\t \\uXXXX``; numbers ``12``, ``-3``, ``2.5``, ``1e3``.
- ``==`` and ``!=`` never convert: values are equal when they are the same kind and
  value (``null == null``; ``"1" != 1``; ``true != 1``; arrays item by item).
- ``< <= > >=`` compare two numbers or two strings (by code point); anything else,
  null included, is false, never an error.  Comparisons do not chain (``a < b < c``).
- Conditions are strict: only ``true`` is true.  ``AND``/``&&`` and ``OR``/``||``
  short-circuit and always give a boolean; ``NOT``/``!`` gives ``true`` for any value
  that is not ``true`` (so ``NOT null`` is true).  ``NOT`` binds looser than a comparison:
  ``NOT user.a == "x"`` is ``NOT (user.a == "x")``.
- ``c ? a : b`` gives ``a`` when ``c`` is true, else ``b``; it binds loosest and nests
  to the right.
- ``+`` adds two numbers; otherwise it joins text, writing null as "" (so a missing
  ``middleName`` simply disappears), booleans as ``true``/``false``, numbers as Python
  does (``2``, ``2.5``) and arrays as their items joined by ``,``.  A joined string may
  not exceed ``MAX_STRING`` characters: a runtime error, never a silent truncation.
- String functions take strings.  Given null or another kind, the predicates
  (``startsWith``, ``endsWith``, ``stringContains``) give false and the others null.
  ``String.substring(s, start[, end])`` clamps its indexes to the string.
- ``isMemberOfGroupName("name")`` takes a quoted group name (so ``groups_read`` is
  known statically) and tests the membership the caller passes in.
- ``kind="boolean"`` (rules) requires a condition, checked at compile time; an
  attribute alone (``user.isContractor``) is refused: write ``user.isContractor == true``.
- Limits: ``MAX_LENGTH`` characters of text, ``MAX_DEPTH`` levels of nesting (operators,
  calls and parentheses), number literals of at most ``MAX_NUMBER_LENGTH`` characters.
"""

from __future__ import annotations

import difflib
import functools
import math
import operator
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedToken,
)

from provtui.domain.errors import InvalidInput

MAX_LENGTH = 4000
MAX_DEPTH = 64
MAX_STRING = 65536
MAX_NUMBER_LENGTH = 32

NULL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT = "null", "boolean", "number", "string", "array", "object"
ANY = frozenset({NULL, BOOLEAN, NUMBER, STRING, ARRAY, OBJECT})
_B = frozenset({BOOLEAN})
_S = frozenset({STRING})
_N = frozenset({NUMBER})
_A = frozenset({ARRAY})

_NUMBER_TYPES = frozenset({int, float})
_ARRAY_TYPES = frozenset({list, tuple})
_EMPTY: frozenset[str] = frozenset()
_NO_SCOPE: Mapping[str, Any] = {}

Scope = Mapping[str, Mapping[str, Any] | None]
"""What an expression reads: root name -> that root's attributes, e.g. {"user": profile}."""


# --- errors -----------------------------------------------------------------------------------------

class ExpressionError(InvalidInput):
    """An expression that cannot be parsed, checked or evaluated, and where: ``line``/``column`` (1-based)."""

    def __init__(self, message: str, text: str, offset: int, *, field: str = "expression", hint: str = ""):
        offset = max(0, min(offset, len(text)))
        self.text = text
        self.offset = offset
        self.line = text.count("\n", 0, offset) + 1
        self.column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        self.reason, self.hint = message, hint
        where = f"line {self.line}, column {self.column}" if "\n" in text else f"column {self.column}"
        super().__init__(field, f"{message} at {where}" + (f"; {hint}" if hint else ""))

    def caret(self) -> str:
        """The offending line (a window of it when long) and a ``^`` under the column."""
        line = self.text.split("\n")[self.line - 1]
        col0 = self.column - 1
        start, end = 0, len(line)
        if end > _CARET_WIDTH:
            start = max(0, min(col0 - _CARET_WIDTH // 2, end - _CARET_WIDTH))
            end = min(end, start + _CARET_WIDTH)
        shown = line[start:end]
        lead = "…" if start > 0 else ""
        display = lead + "".join(_display_char(c) for c in shown) + ("…" if end < len(line) else "")
        pad = len(lead) + sum(_char_width(c) for c in shown[: col0 - start])
        return f"{display}\n{' ' * pad}^"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}\n" + "\n".join("  " + row for row in self.caret().split("\n"))

    def __reduce__(self):
        return _rebuild_error, (self.reason, self.text, self.offset, self.field, self.hint)


def _rebuild_error(reason: str, text: str, offset: int, field: str, hint: str) -> ExpressionError:
    return ExpressionError(reason, text, offset, field=field, hint=hint)


_CARET_WIDTH = 72


def _display_char(c: str) -> str:
    # One printable cell per character, so the caret stays aligned and no control sequence is echoed.
    if c == "\t":
        return " "
    return c if c.isprintable() else "\ufffd"


def _char_width(c: str) -> int:
    if c.isprintable() and unicodedata.combining(c):
        return 0
    return 2 if c.isprintable() and unicodedata.east_asian_width(c) in "WF" else 1


def _quote(s: str) -> str:
    """A token as shown in a message: short, quoted, control characters escaped."""
    if len(s) > 24:
        s = s[:20] + "…"
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    return f"'{shown}'"


class _Fault(Exception):
    """A runtime fault inside an operation; the node that ran it adds the position."""


# --- values and operations (shared by the compiler and the interpreter) -----------------------------

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
            return a == b
        if ta is list or ta is tuple:
            return _arrays_equal(a, b, _depth)
        return a is b
    if ta in _NUMBER_TYPES and tb in _NUMBER_TYPES:
        return a == b
    if ta in _ARRAY_TYPES and tb in _ARRAY_TYPES:
        return _arrays_equal(a, b, _depth)
    return False


def _arrays_equal(a, b, depth: int) -> bool:
    if depth >= 16:  # arrays nested this deep compare by identity: a bound, not a RecursionError
        return a is b
    return len(a) == len(b) and all(equals(x, y, depth + 1) for x, y in zip(a, b))


def _comparable(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    return (ta is str and tb is str) or (ta in _NUMBER_TYPES and tb in _NUMBER_TYPES)


def _lt(a, b):
    return _comparable(a, b) and a < b


def _le(a, b):
    return _comparable(a, b) and a <= b


def _gt(a, b):
    return _comparable(a, b) and a > b


def _ge(a, b):
    return _comparable(a, b) and a >= b


def _ne(a, b):
    return not equals(a, b)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": equals, "!=": _ne, "<": _lt, "<=": _le, ">": _gt, ">=": _ge,
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def to_text(value: Any) -> str:
    """How ``+`` writes a value into text."""
    t = type(value)
    if t is str:
        return value
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        try:
            return str(value)
        except ValueError:  # more digits than Python will print
            raise _Fault("a number is too long to write as text") from None
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
            raise _Fault(f"'+' would build a string longer than {MAX_STRING:,} characters")
        return a + b
    if ta in _NUMBER_TYPES and tb in _NUMBER_TYPES:
        try:
            return a + b
        except OverflowError:
            raise _Fault("the sum is too large") from None
    x, y = to_text(a), to_text(b)
    if len(x) + len(y) > MAX_STRING:
        raise _Fault(f"'+' would build a string longer than {MAX_STRING:,} characters")
    return x + y


# --- the functions table ----------------------------------------------------------------------------

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


def _starts_with(s, prefix):
    return type(s) is str and type(prefix) is str and s.startswith(prefix)


def _ends_with(s, suffix):
    return type(s) is str and type(suffix) is str and s.endswith(suffix)


def _string_contains(s, part):
    return type(s) is str and type(part) is str and part in s


def _to_lower(s):
    if type(s) is not str:
        return None
    return _capped(s, s.lower())


def _to_upper(s):
    if type(s) is not str:
        return None
    return _capped(s, s.upper())


def _capped(before: str, after: str) -> str:
    # Case mapping can lengthen text ("ß" -> "SS"): the growth is capped like '+'.
    if len(after) > MAX_STRING and len(after) > len(before):
        raise _Fault(f"the result would be longer than {MAX_STRING:,} characters")
    return after


def _index(value) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


_TO_END = object()


def _substring(s, start, end=_TO_END):
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


def _length(s):
    return len(s) if type(s) is str else None


def _array_contains(array, value):
    if type(array) not in _ARRAY_TYPES:
        return False
    if type(value) is str:  # the common case; a str equals only an equal str
        return value in array
    return any(equals(item, value) for item in array)


def _is_member(groups, name):
    return name in groups


MAPPING_FUNCTIONS: Mapping[str, Function] = {
    "String.startsWith": Function(_starts_with, (_S, _S), _B),
    "String.endsWith": Function(_ends_with, (_S, _S), _B),
    "String.stringContains": Function(_string_contains, (_S, _S), _B),
    "String.toLowerCase": Function(_to_lower, (_S,), frozenset({STRING, NULL})),
    "String.toUpperCase": Function(_to_upper, (_S,), frozenset({STRING, NULL})),
    "String.substring": Function(_substring, (_S, _N, _N), frozenset({STRING, NULL}), optional=1),
    "String.len": Function(_length, (_S,), frozenset({NUMBER, NULL})),
    "Arrays.contains": Function(_array_contains, (_A, ANY), _B),
}
"""Attribute mappings: every function but group membership (a mapping computes a value, not an entitlement)."""
DEFAULT_FUNCTIONS: Mapping[str, Function] = {
    **MAPPING_FUNCTIONS,
    "isMemberOfGroupName": Function(_is_member, (_S,), _B, reads_groups=True),
}
_BUILTINS = frozenset(id(f) for f in DEFAULT_FUNCTIONS.values())

RULE_ROOTS = frozenset({"user"})
MAPPING_ROOTS = frozenset({"user", "assignment"})


# --- grammar ----------------------------------------------------------------------------------------

_GRAMMAR = r"""
?start: expr
?expr: or_expr
     | or_expr "?" expr ":" expr   -> ternary
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: not_op | comparison
not_op: _NOT not_expr
?comparison: sum (COMPOP sum)?
?sum: atom (PLUS atom)*
?atom: STRING -> string
     | NUMBER -> number
     | TRUE -> true
     | FALSE -> false
     | NULL -> null
     | NAME "." NAME -> attr
     | NAME -> bare
     | NAME ("." NAME)? "(" [expr ("," expr)*] ")" -> call
     | "(" expr ")" -> paren

STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
NUMBER: /-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/
NAME: /(?!(?i:and|or|not|true|false|null)\b)[A-Za-z_][A-Za-z0-9_]*/
COMPOP: "==" | "!=" | "<=" | ">=" | "<" | ">"
PLUS: "+"
_OR.2: /or\b/i | "||"
_AND.2: /and\b/i | "&&"
_NOT.2: /not\b/i | "!"
TRUE.2: /true\b/i
FALSE.2: /false\b/i
NULL.2: /null\b/i
%ignore /[ \t\r\n]+/
"""


@functools.cache
def _parser() -> Lark:
    # LALR: linear time, an explicit stack (no recursion however deep the input nests).
    return Lark(_GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)


_HINTS = {"=": "compare with ==", "&": "write && or AND", "|": "write || or OR", "-": "there is no subtraction"}


def _parse_tree(text: str, field: str) -> Tree:
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH:,} characters", text, MAX_LENGTH, field=field)
    if not text.strip():
        raise ExpressionError("the expression is empty", text, 0, field=field)
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as e:
        pos = e.pos_in_stream
        char = text[pos] if pos < len(text) else ""
        if char in ("'", '"'):
            raise ExpressionError("unterminated string", text, pos, field=field) from None
        raise ExpressionError(f"unexpected character {_quote(char)}", text, pos, field=field,
                              hint=_HINTS.get(char, "")) from None
    except UnexpectedToken as e:
        token = e.token
        if token.type == "$END":
            raise ExpressionError("unexpected end of expression", text, len(text.rstrip()), field=field) from None
        raise ExpressionError(f"unexpected token {_quote(str(token))}", text, token.start_pos or 0, field=field) from None
    except UnexpectedEOF:
        raise ExpressionError("unexpected end of expression", text, len(text.rstrip()), field=field) from None
    except LarkError:  # pragma: no cover - every parse failure above is an UnexpectedInput
        raise ExpressionError("cannot parse the expression", text, 0, field=field) from None
    _check_depth(tree, text, field)
    return tree


def _check_depth(tree: Tree, text: str, field: str) -> None:
    # Iterative, so a hostile nesting is measured without recursing into it.
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression nests deeper than {MAX_DEPTH} levels", text,
                                  _start(node), field=field)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _start(node: Tree | Token) -> int:
    if isinstance(node, Token):
        return node.start_pos or 0
    return getattr(node.meta, "start_pos", 0) or 0


# --- the checked tree -------------------------------------------------------------------------------

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
    operand: Any


@dataclass(frozen=True, slots=True)
class Logical:
    pos: int
    kinds: frozenset[str]
    op: str  # "and" | "or"
    operands: tuple


@dataclass(frozen=True, slots=True)
class Comparison:
    pos: int
    kinds: frozenset[str]
    op: str
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Concat:
    """``a + b + c``, folded left to right; ``plus_at`` are the offsets of the ``+`` signs."""

    pos: int
    kinds: frozenset[str]
    operands: tuple
    plus_at: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Conditional:
    pos: int
    kinds: frozenset[str]
    test: Any
    then: Any
    otherwise: Any


@dataclass(frozen=True, slots=True)
class Call:
    pos: int
    kinds: frozenset[str]
    name: str
    function: Function
    args: tuple


Node = Literal | Attribute | Not | Logical | Comparison | Concat | Conditional | Call

_KIND_WORDS = {NULL: "null", BOOLEAN: "a condition", NUMBER: "a number", STRING: "text", ARRAY: "an array",
               OBJECT: "an object"}


def _describe(kinds: frozenset[str]) -> str:
    shown = [k for k in (STRING, NUMBER, ARRAY, OBJECT, BOOLEAN, NULL) if k in kinds]
    if len(shown) > 1 and NULL in shown:
        shown.remove(NULL)
    return " or ".join(_KIND_WORDS[k] for k in shown)


@dataclass(frozen=True)
class ParsedExpression:
    """The checked tree of an expression and what it reads."""

    text: str
    tree: Node
    kind: str
    attributes_read: frozenset[tuple[str, str]]
    groups_read: frozenset[str]


class _Builder:
    """Turns Lark's parse tree into the checked tree; every error names the column."""

    def __init__(self, text: str, roots: Collection[str], functions: Mapping[str, Function], field: str):
        self.text, self.roots, self.functions, self.field = text, roots, functions, field
        self.attributes: set[tuple[str, str]] = set()
        self.groups: set[str] = set()

    def error(self, message: str, pos: int, hint: str = "") -> ExpressionError:
        return ExpressionError(message, self.text, pos, field=self.field, hint=hint)

    def build(self, t: Tree) -> Node:
        return getattr(self, f"_{t.data}")(t)

    def condition(self, node: Node, what: str) -> Node:
        if BOOLEAN not in node.kinds:
            raise self.error(f"{what} needs a condition, not {_describe(node.kinds)}", node.pos)
        return node

    # literals
    def _string(self, t: Tree) -> Node:
        token = t.children[0]
        return Literal(token.start_pos, _S, self._decode(token))

    def _decode(self, token: Token) -> str:
        body = token.value[1:-1]
        if "\\" not in body:
            return body
        out, i = [], 0
        while i < len(body):
            c = body[i]
            if c != "\\":
                out.append(c)
                i += 1
                continue
            e = body[i + 1]  # the token's pattern guarantees a character after each backslash
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
            elif e == "u" and len(digits := body[i + 2:i + 6]) == 4 and all(d in _HEX for d in digits):
                code = int(digits, 16)
                if 0xD800 <= code <= 0xDFFF:
                    raise self.error(f"\\u{digits} is not a character (a surrogate)", token.start_pos + 1 + i)
                out.append(chr(code))
                i += 6
            else:
                raise self.error(f"unknown escape {_quote(chr(92) + e)}", token.start_pos + 1 + i,
                                 hint="use \\\\ \\\" \\' \\n \\r \\t or \\uXXXX")
        return "".join(out)

    def _number(self, t: Tree) -> Node:
        token = t.children[0]
        if len(token.value) > MAX_NUMBER_LENGTH:
            raise self.error(f"a number may have at most {MAX_NUMBER_LENGTH} characters", token.start_pos)
        if any(c in token.value for c in ".eE"):
            value: int | float = float(token.value)
            if not math.isfinite(value):
                raise self.error("number out of range", token.start_pos)
        else:
            value = int(token.value)
        return Literal(token.start_pos, _N, value)

    def _true(self, t: Tree) -> Node:
        return Literal(_start(t), _B, True)

    def _false(self, t: Tree) -> Node:
        return Literal(_start(t), _B, False)

    def _null(self, t: Tree) -> Node:
        return Literal(_start(t), frozenset({NULL}), None)

    # names
    def _attr(self, t: Tree) -> Node:
        root, name = t.children
        if root.value not in self.roots:
            raise self.error(f"unknown name {_quote(root.value)}", root.start_pos, hint=self._roots_hint())
        if name.value.startswith("_"):
            raise self.error("attribute names cannot start with '_'", name.start_pos)
        self.attributes.add((root.value, name.value))
        return Attribute(root.start_pos, ANY, root.value, name.value)

    def _bare(self, t: Tree) -> Node:
        (name,) = t.children
        if name.value in self.roots:
            raise self.error(f"{_quote(name.value)} needs an attribute: {name.value}.<attribute>", name.start_pos)
        written = " or ".join(f"{root}.{name.value}" for root in sorted(self.roots))
        hint = f"did you mean {written}?" if written and not name.value.startswith("_") else ""
        raise self.error(f"unknown name {_quote(name.value)}", name.start_pos, hint=hint)

    def _roots_hint(self) -> str:
        return "attributes are read from " + (", ".join(f"{r}.<attribute>" for r in sorted(self.roots)) or "nothing here")

    # operators
    def _paren(self, t: Tree) -> Node:
        return self.build(t.children[0])

    def _not_op(self, t: Tree) -> Node:
        operand = self.condition(self.build(t.children[0]), "NOT")
        return Not(_start(t), _B, operand)

    def _and_expr(self, t: Tree) -> Node:
        return Logical(_start(t), _B, "and", tuple(self.condition(self.build(c), "AND") for c in t.children))

    def _or_expr(self, t: Tree) -> Node:
        return Logical(_start(t), _B, "or", tuple(self.condition(self.build(c), "OR") for c in t.children))

    def _comparison(self, t: Tree) -> Node:
        left_t, op, right_t = t.children
        left, right = self.build(left_t), self.build(right_t)
        if op.value not in ("==", "!="):
            for side in (left, right):
                if not side.kinds & {NUMBER, STRING}:
                    raise self.error(f"{_quote(op.value)} compares numbers or text, not {_describe(side.kinds)}", side.pos)
            lk, rk = left.kinds - {NULL}, right.kinds - {NULL}
            if len(lk) == 1 and len(rk) == 1 and lk != rk:
                raise self.error(f"{_quote(op.value)} between {_describe(lk)} and {_describe(rk)} is always false",
                                 op.start_pos)
        return Comparison(op.start_pos, _B, op.value, left, right)

    def _sum(self, t: Tree) -> Node:
        operands = tuple(self.build(c) for c in t.children[::2])
        plus_at = tuple(token.start_pos for token in t.children[1::2])
        kinds: frozenset[str] = operands[0].kinds
        for operand in operands[1:]:
            kinds = _plus_kinds(kinds, operand.kinds)
        return Concat(operands[0].pos, kinds, operands, plus_at)

    def _ternary(self, t: Tree) -> Node:
        test, then, otherwise = (self.build(c) for c in t.children)
        self.condition(test, "'?'")
        return Conditional(test.pos, then.kinds | otherwise.kinds, test, then, otherwise)

    def _call(self, t: Tree) -> Node:
        names = [c for c in t.children if isinstance(c, Token)]
        name = ".".join(n.value for n in names)
        pos = names[0].start_pos
        function = self.functions.get(name)
        if function is None:
            close = difflib.get_close_matches(name, list(self.functions), n=1)
            hint = f"did you mean {close[0]}?" if close else ""
            raise self.error(f"unknown function {_quote(name)}", pos, hint=hint)
        args = tuple(self.build(c) for c in t.children if isinstance(c, Tree))
        most, least = len(function.params), len(function.params) - function.optional
        if not least <= len(args) <= most:
            wanted = f"{least}" if least == most else f"{least} or {most}" if most - least == 1 else f"{least} to {most}"
            noun = "argument" if most == 1 else "arguments"
            raise self.error(f"{name} takes {wanted} {noun}, not {len(args)}", pos)
        for number, (arg, accepted) in enumerate(zip(args, function.params), start=1):
            if not arg.kinds & (accepted | {NULL}):
                raise self.error(f"argument {number} of {name} must be {_describe(accepted)}, not {_describe(arg.kinds)}",
                                 arg.pos)
            if function.reads_groups:
                if not (isinstance(arg, Literal) and type(arg.value) is str):
                    raise self.error(f"{name} takes a group name in quotes", arg.pos)
                self.groups.add(arg.value)
        return Call(pos, function.returns, name, function, args)


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _plus_kinds(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    if a == _N and b == _N:
        return _N
    if NUMBER in a and NUMBER in b:
        return frozenset({NUMBER, STRING})
    return _S


def parse_expression(text: str, *, roots: Collection[str] = RULE_ROOTS,
                     functions: Mapping[str, Function] = DEFAULT_FUNCTIONS, kind: str = "any",
                     field: str = "expression") -> ParsedExpression:
    """Parse and check ``text``; raises ExpressionError (``field`` names it) with the column."""
    if kind not in ("any", "boolean"):
        raise ValueError(f"kind must be 'any' or 'boolean', not {kind!r}")
    builder = _Builder(text, frozenset(roots), functions, field)
    tree = builder.build(_parse_tree(text, field))
    if kind == "boolean" and tree.kinds != _B:
        if tree.kinds == ANY:
            raise builder.error("a rule must be a condition", tree.pos,
                                hint="compare the value, e.g. user.isContractor == true")
        if BOOLEAN in tree.kinds:
            raise builder.error(f"a rule must be a condition, but this can also give {_describe(tree.kinds - _B)}",
                                tree.pos)
        raise builder.error(f"a rule must be a condition, not {_describe(tree.kinds)}", tree.pos)
    return ParsedExpression(text, tree, kind, frozenset(builder.attributes), frozenset(builder.groups))


# --- compiling to closures --------------------------------------------------------------------------

class CompiledExpression:
    """An expression compiled once into closures: call it per user, or ``evaluate_all`` over a population.

    ``expression(scope, groups)``: ``scope`` maps each root to its attributes, e.g.
    ``{"user": profile, "assignment": values}`` (a missing root reads as all-null);
    ``groups`` holds the names of the groups the user belongs to (for
    ``isMemberOfGroupName``).  Returns the value, or for ``kind="boolean"`` True/False.
    Raises ExpressionError only for a runtime fault (a ``+`` over ``MAX_STRING``).
    """

    __slots__ = ("_coerce", "_field", "_fns", "_keys", "_value_fns", "attributes_read", "function", "groups_read",
                 "kind", "text", "tree")

    def __init__(self, parsed: ParsedExpression, field: str = "expression"):
        self.text = parsed.text
        self.kind = parsed.kind
        self.tree = parsed.tree
        self.attributes_read = parsed.attributes_read
        self.groups_read = parsed.groups_read
        self._field = field
        compiler = _Compiler(parsed.text, field)
        fn = compiler.compile(parsed.tree).fn
        self._fns = compiler.fns  # id(node) -> its closure, for evaluate_all
        self._value_fns: dict[int, Callable] = {}
        self._keys: dict[int, tuple] = {}
        _collect_keys(parsed.tree, self._keys)
        self._coerce = parsed.kind == "boolean" and not _surely_boolean(parsed.tree)
        if self._coerce:
            inner = fn

            def fn(s, g):
                return inner(s, g) is True

        self.function: Callable[[Scope, Collection[str]], Any] = fn
        """The compiled closure itself, ``(scope, groups) -> value``, for hot loops."""

    def __call__(self, scope: Scope, groups: Collection[str] = _EMPTY) -> Any:
        return self.function(scope, groups)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"

    def evaluate_all(self, population: Population) -> list[Any]:
        """The value for every scope of ``population``, in order: the same results, and the same
        error if one fails, as calling the expression on each scope in turn.

        Evaluated column-wise: a part that reads a single attribute runs once per distinct
        value (or straight down the column); AND, OR, NOT and ``?:`` combine their
        operands' columns; a part reading several attributes runs once per distinct
        combination of plain values.  A runtime fault falls back to one scope at a time.
        """
        if not len(population):
            return []
        population._load(self._keys[id(self.tree)])
        try:
            values = self._column_of(self.tree, population)
        except ExpressionError:
            fn = self.function  # raises the first failing scope's error; evaluates nothing a scope skips
            return [fn(s, g) for s, g in zip(population.scopes, population.groups)]
        return [v is True for v in values] if self._coerce else values

    def _column_of(self, node: Node, pop: Population) -> list[Any]:
        keys, n = self._keys[id(node)], len(pop)
        if not keys:
            value = self._fns[id(node)](_NO_SCOPE, _EMPTY)
            return [value] * n
        if len(keys) == 1:
            return self._single_key_column(node, keys[0], pop)
        if isinstance(node, Logical):
            parts = [self._column_of(o, pop) for o in node.operands]
            acc = parts[0]
            if not _surely_boolean(node.operands[0]):
                acc = [v is True for v in acc]
            for operand, part in zip(node.operands[1:], parts[1:]):
                if not _surely_boolean(operand):
                    part = [v is True for v in part]
                acc = list(map(operator.and_ if node.op == "and" else operator.or_, acc, part))  # bools: in C
            return acc
        if isinstance(node, Not):
            column = self._column_of(node.operand, pop)
            if _surely_boolean(node.operand):
                return list(map(operator.not_, column))
            return [v is not True for v in column]
        if isinstance(node, Conditional):
            tests, thens, others = (self._column_of(c, pop) for c in (node.test, node.then, node.otherwise))
            return [a if t is True else b for t, a, b in zip(tests, thens, others)]
        fn = self._fns[id(node)]
        plan = pop._memo_plan(keys)
        if plan is not None:
            combos, codes = plan
            table = {code: fn(*_scope_for(keys, values)) for code, values in combos.items()}
            return list(map(table.__getitem__, codes))
        return [fn(s, g) for s, g in zip(pop.scopes, pop.groups)]

    def _single_key_column(self, node: Node, key: tuple[str, str, str], pop: Population) -> list[Any]:
        column = pop._column(key)
        if key[0] == "group":
            fn = self._fns[id(node)]
            table = {True: fn(_NO_SCOPE, frozenset((key[1],))), False: fn(_NO_SCOPE, _EMPTY)}
            return list(map(table.__getitem__, column))
        fv = self._value_fns.get(id(node))
        if fv is None:  # the part compiled again, reading its one attribute from the first argument
            fv = self._value_fns[id(node)] = _Compiler(self.text, self._field, value_mode=True).compile(node).fn
        distinct = pop._distinct_values(key)
        if distinct is not None and 2 * len(distinct) <= len(pop):
            table = {v: fv(v, _EMPTY) for v in distinct}
            return list(map(table.__getitem__, column))
        return list(map(fv, column, repeat(_EMPTY)))


def _collect_keys(node: Node, out: dict[int, tuple]) -> frozenset:
    """What each node reads: ("attr", root, name) and ("group", name, "") keys, by id(node)."""
    if isinstance(node, Attribute):
        keys = frozenset({("attr", node.root, node.name)})
    elif isinstance(node, Literal):
        keys = frozenset()
    elif isinstance(node, Call) and node.function.reads_groups:
        keys = frozenset(("group", a.value, "") for a in node.args)
    else:
        children = {Not: lambda: (node.operand,), Logical: lambda: node.operands, Concat: lambda: node.operands,
                    Comparison: lambda: (node.left, node.right),
                    Conditional: lambda: (node.test, node.then, node.otherwise), Call: lambda: node.args}
        keys = frozenset().union(*(_collect_keys(c, out) for c in children[type(node)]()))
    out[id(node)] = tuple(sorted(keys))
    return keys


def _surely_boolean(node: Node) -> bool:
    if isinstance(node, (Comparison, Logical, Not)):
        return True
    if isinstance(node, Literal):
        return type(node.value) is bool
    if isinstance(node, Call):
        return id(node.function) in _BUILTINS and node.kinds == _B
    if isinstance(node, Conditional):
        return _surely_boolean(node.then) and _surely_boolean(node.otherwise)
    return False


def _scope_for(keys, values) -> tuple[dict, frozenset[str]]:
    scope: dict[str, dict[str, Any]] = {}
    groups = []
    for (what, name, attr), value in zip(keys, values):
        if what == "group":
            if value:
                groups.append(name)
        else:
            scope.setdefault(name, {})[attr] = value
    return scope, frozenset(groups)


def compile_expression(text: str, *, roots: Collection[str] = RULE_ROOTS,
                       functions: Mapping[str, Function] = DEFAULT_FUNCTIONS, kind: str = "any",
                       field: str = "expression") -> CompiledExpression:
    """Parse, check and compile ``text`` once; raises ExpressionError (``field`` names it) with the column.

    ``roots``: the variables it may read (rules: ``RULE_ROOTS``; mappings:
    ``MAPPING_ROOTS``); ``functions``: the functions it may call (mappings:
    ``MAPPING_FUNCTIONS``); ``kind="boolean"`` for a rule, which must be a condition.
    """
    return CompiledExpression(parse_expression(text, roots=roots, functions=functions, kind=kind, field=field), field)


@dataclass(frozen=True, slots=True)
class _Code:
    """A compiled node: its closure, and its value when it is a constant."""

    fn: Callable[[Scope, Collection[str]], Any]
    const: bool = False
    value: Any = None


def _constant(value) -> _Code:
    return _Code(lambda s, g: value, True, value)


def _the_value(s, g):
    return s


def _pure(node: Node) -> bool:
    """No attribute, no group membership, only built-in functions: its value is known at compile time."""
    if isinstance(node, Literal):
        return True
    if isinstance(node, Attribute):
        return False
    if isinstance(node, Not):
        return _pure(node.operand)
    if isinstance(node, Comparison):
        return _pure(node.left) and _pure(node.right)
    if isinstance(node, (Logical, Concat)):
        return all(_pure(o) for o in node.operands)
    if isinstance(node, Conditional):
        return _pure(node.test) and _pure(node.then) and _pure(node.otherwise)
    return id(node.function) in _BUILTINS and not node.function.reads_groups and all(_pure(a) for a in node.args)


class _Compiler:
    """Checked tree -> nested closures ``(scope, groups) -> value``, specialised for the common shapes."""

    def __init__(self, text: str, field: str, *, value_mode: bool = False):
        # value_mode: the tree reads one attribute, and its value is the closures' first argument.
        self.text, self.field, self.value_mode = text, field, value_mode
        self.fns: dict[int, Callable] = {}

    def fault(self, fault: _Fault, pos: int) -> ExpressionError:
        return ExpressionError(str(fault), self.text, pos, field=self.field)

    def compile(self, node: Node) -> _Code:
        code = getattr(self, f"_{type(node).__name__}")(node)
        if not code.const and not isinstance(node, Attribute) and _pure(node):
            try:
                code = _constant(code.fn(_NO_SCOPE, _EMPTY))
            except ExpressionError:
                pass  # it fails at run time too, with the same message
        self.fns[id(node)] = code.fn
        return code

    def _Literal(self, node: Literal) -> _Code:
        return _constant(node.value)

    def _Attribute(self, node: Attribute) -> _Code:
        if self.value_mode:
            return _Code(_the_value)
        root, name = node.root, node.name

        def read(s, g):
            d = s.get(root)
            return None if d is None else d.get(name)

        return _Code(read)

    def _Not(self, node: Not) -> _Code:
        operand = self.compile(node.operand).fn
        return _Code(lambda s, g: operand(s, g) is not True)

    def _Logical(self, node: Logical) -> _Code:
        ops = tuple(self.compile(o).fn for o in node.operands)
        if node.op == "and":
            if len(ops) == 2:
                a, b = ops
                return _Code(lambda s, g: a(s, g) is True and b(s, g) is True)

            def all_true(s, g):
                for op in ops:
                    if op(s, g) is not True:
                        return False
                return True

            return _Code(all_true)
        if len(ops) == 2:
            a, b = ops
            return _Code(lambda s, g: a(s, g) is True or b(s, g) is True)

        def any_true(s, g):
            for op in ops:
                if op(s, g) is True:
                    return True
            return False

        return _Code(any_true)

    def _Comparison(self, node: Comparison) -> _Code:
        op, left, right = node.op, node.left, node.right
        lc, rc = self.compile(left), self.compile(right)
        if lc.const and not rc.const:  # keep the constant on the right
            op, left, right, lc, rc = _FLIPPED[op], right, left, rc, lc
        test = COMPARISONS[op]
        if rc.const:
            c = rc.value
            if self.value_mode and isinstance(left, Attribute):
                return _Code(_value_test(op, c))
            if isinstance(left, Attribute):
                fast = _attribute_test(left.root, left.name, op, c)
                if fast is not None:
                    return _Code(fast)
            lf = lc.fn
            if type(c) is str and op == "==":  # only an equal str equals a str
                return _Code(lambda s, g: lf(s, g) == c)
            if type(c) is str and op == "!=":
                return _Code(lambda s, g: lf(s, g) != c)
            return _Code(lambda s, g: test(lf(s, g), c))
        lf, rf = lc.fn, rc.fn
        return _Code(lambda s, g: test(lf(s, g), rf(s, g)))

    def _Concat(self, node: Concat) -> _Code:
        first = self.compile(node.operands[0]).fn
        rest = tuple((self.compile(o).fn, pos) for o, pos in zip(node.operands[1:], node.plus_at))
        fault = self.fault

        def concat(s, g):
            value = first(s, g)
            for fn, pos in rest:
                try:
                    value = plus(value, fn(s, g))
                except _Fault as f:
                    raise fault(f, pos) from None
            return value

        return _Code(concat)

    def _Conditional(self, node: Conditional) -> _Code:
        test, then, otherwise = self.compile(node.test), self.compile(node.then), self.compile(node.otherwise)
        if test.const:
            return then if test.value is True else otherwise
        t, a, b = test.fn, then.fn, otherwise.fn
        return _Code(lambda s, g: a(s, g) if t(s, g) is True else b(s, g))

    def _Call(self, node: Call) -> _Code:
        impl, pos, fault = node.function.impl, node.pos, self.fault
        if node.function.reads_groups:
            names = tuple(a.value for a in node.args)
            if impl is _is_member:
                (name,) = names
                return _Code(lambda s, g: name in g)
            return _Code(lambda s, g: impl(g, *names))
        codes = [self.compile(a) for a in node.args]
        if len(codes) >= 2 and all(c.const for c in codes[1:]):
            # f(x, constants...): the usual shape; read x inline when it is an attribute
            rest = tuple(c.value for c in codes[1:])
            first = node.args[0]
            if self.value_mode and isinstance(first, Attribute):
                if len(rest) == 1:
                    (c,) = rest

                    def call_value(s, g):
                        try:
                            return impl(s, c)
                        except _Fault as f:
                            raise fault(f, pos) from None

                    return _Code(call_value)

                def call_value_n(s, g):
                    try:
                        return impl(s, *rest)
                    except _Fault as f:
                        raise fault(f, pos) from None

                return _Code(call_value_n)
            if isinstance(first, Attribute):
                root, name = first.root, first.name

                def call_attribute(s, g):
                    d = s.get(root)
                    try:
                        return impl(None if d is None else d.get(name), *rest)
                    except _Fault as f:
                        raise fault(f, pos) from None

                return _Code(call_attribute)
            a = codes[0].fn

            def call_first(s, g):
                value = a(s, g)
                try:
                    return impl(value, *rest)
                except _Fault as f:
                    raise fault(f, pos) from None

            return _Code(call_first)
        fns = tuple(c.fn for c in codes)
        if len(fns) == 1:
            (a,) = fns

            def call1(s, g):
                value = a(s, g)
                try:
                    return impl(value)
                except _Fault as f:
                    raise fault(f, pos) from None

            return _Code(call1)

        def call(s, g):
            args = [f(s, g) for f in fns]
            try:
                return impl(*args)
            except _Fault as f:
                raise fault(f, pos) from None

        return _Code(call)


def _value_test(op: str, c: Any):
    """``value <op> constant`` in value mode (the value is the first argument)."""
    if op in ("==", "!=") and type(c) is str:  # only an equal str equals a str
        return (lambda s, g: s == c) if op == "==" else (lambda s, g: s != c)
    if op in ("==", "!=") and (c is None or type(c) is bool):  # singletons
        return (lambda s, g: s is c) if op == "==" else (lambda s, g: s is not c)
    test = COMPARISONS[op]
    return lambda s, g: test(s, c)


def _attribute_test(root: str, name: str, op: str, c: Any):
    """A closure for ``root.name <op> constant`` that reads and tests inline, or None for the generic path."""
    tc = type(c)
    if op in ("==", "!="):
        if tc is str:  # only an equal str equals a str
            if op == "==":
                def eq_str(s, g):
                    d = s.get(root)
                    return d is not None and d.get(name) == c
                return eq_str

            def ne_str(s, g):
                d = s.get(root)
                return d is None or d.get(name) != c
            return ne_str
        if c is None or tc is bool:  # singletons
            if op == "==":
                def is_const(s, g):
                    d = s.get(root)
                    return (None if d is None else d.get(name)) is c
                return is_const

            def is_not_const(s, g):
                d = s.get(root)
                return (None if d is None else d.get(name)) is not c
            return is_not_const
        return None
    if tc is str:
        test = COMPARISONS[op]

        def order_str(s, g):
            d = s.get(root)
            v = None if d is None else d.get(name)
            return type(v) is str and test(v, c)
        return order_str
    if tc in _NUMBER_TYPES:
        test = COMPARISONS[op]

        def order_number(s, g):
            d = s.get(root)
            v = None if d is None else d.get(name)
            return type(v) in _NUMBER_TYPES and test(v, c)
        return order_number
    return None


# --- evaluating over many users ---------------------------------------------------------------------

_SAMPLE = 2000
_STR_NONE = frozenset({str, type(None)})
_PLAIN_INT = frozenset({str, type(None), int})
_PLAIN_BOOL = frozenset({str, type(None), bool})


class Population:
    """Scopes evaluated together, as a full rule run does.

    Each attribute an expression reads is pulled into a column once and shared by every
    expression evaluated over the population.  ``groups[i]`` holds the group names of
    ``scopes[i]`` (omitted: nobody is in any group).
    """

    def __init__(self, scopes: Sequence[Scope], groups: Sequence[Collection[str]] | None = None):
        self.scopes = list(scopes)
        self.groups = list(groups) if groups is not None else [_EMPTY] * len(self.scopes)
        if len(self.groups) != len(self.scopes):
            raise ValueError("one group set per scope")
        self._columns: dict[tuple, list] = {}
        self._distinct: dict[tuple, set | None] = {}
        self._roots: dict[str, list] = {}
        self._encoded: dict[tuple, tuple[list, list[int]] | None] = {}

    def __len__(self) -> int:
        return len(self.scopes)

    def prefetch(self, expressions: Iterable[CompiledExpression]) -> None:
        """Read every attribute the expressions read, in one pass over the scopes.

        Optional: ``evaluate_all`` reads what it is missing by itself, but one pass that
        visits each profile once is several times faster than a pass per attribute.
        """
        self._load({key for e in expressions for key in e._keys[id(e.tree)]})

    def _load(self, keys: Iterable[tuple[str, str, str]]) -> None:
        by_root: dict[str, list[str]] = {}
        for what, name, attr in keys:
            if (what, name, attr) in self._columns:
                continue
            if what == "group":
                self._columns[(what, name, attr)] = [name in g for g in self.groups]
            else:
                by_root.setdefault(name, []).append(attr)
        for root, attrs in by_root.items():
            values = self._roots.get(root)
            if values is None:
                values = self._roots[root] = [s.get(root) for s in self.scopes]
            if len(attrs) == 1 and all(type(d) is dict for d in values):
                columns = [list(map(dict.get, values, repeat(attrs[0])))]  # the loop runs in C
            else:
                columns = [[] for _ in attrs]
                appends = list(zip([c.append for c in columns], attrs))
                for d in values:  # each profile visited once, while it is in the cache
                    if d is None:
                        for append, _ in appends:
                            append(None)
                    else:
                        get = d.get
                        for append, attr in appends:
                            append(get(attr))
            for attr, column in zip(attrs, columns):
                self._columns[("attr", root, attr)] = column

    def _column(self, key: tuple[str, str, str]) -> list:
        """("attr", root, name): every scope's value; ("group", name, ""): every scope's membership."""
        column = self._columns.get(key)
        if column is None:
            self._load((key,))
            column = self._columns[key]
        return column

    def _distinct_values(self, key: tuple[str, str, str]) -> set | None:
        """The column's distinct values when they are plain and few enough to memoise (at most
        one per two scopes), else None.  Plain: str and None, plus int or bool but never
        both, and no float (Python hashes 1, 1.0 and True alike, but they differ here)."""
        if key not in self._distinct:
            column = self._column(key)
            distinct: set | None = None
            try:
                if len(set(column[:_SAMPLE])) * 2 <= min(len(column), _SAMPLE):  # skip evident high cardinality
                    distinct = set(column)
            except TypeError:  # unhashable values (arrays)
                pass
            if distinct is not None:
                types = set(map(type, distinct))
                if not types <= _STR_NONE:  # a number or bool may hide an equal one of another type
                    types = set(map(type, column))
                if (not types <= _PLAIN_INT and not types <= _PLAIN_BOOL) or 2 * len(distinct) > len(column):
                    distinct = None
            self._distinct[key] = distinct
        return self._distinct[key]

    def _codes(self, key: tuple[str, str, str]) -> tuple[list, list[int]] | None:
        """The column dictionary-encoded: (its distinct values, each scope's index into them)."""
        if key not in self._encoded:
            distinct = self._distinct_values(key)
            if distinct is None:
                self._encoded[key] = None
            else:
                values = list(distinct)
                index = {v: i for i, v in enumerate(values)}
                self._encoded[key] = values, list(map(index.__getitem__, self._column(key)))
        return self._encoded[key]

    def _memo_plan(self, keys: tuple) -> tuple[dict[int, tuple], list[int]] | None:
        """({code: the values of one distinct combination}, each scope's code) when memoising
        pays (at most one distinct combination per two scopes), else None.  Codes are ints
        (mixed-radix over the encoded columns), so no tuple is built per scope."""
        self._load(keys)
        encoded = [self._codes(key) for key in keys]
        if any(e is None for e in encoded) or math.prod(len(e[0]) for e in encoded) > 1 << 62:
            return None
        codes = encoded[0][1]
        for values, column in encoded[1:]:
            radix = len(values)
            codes = [c * radix + x for c, x in zip(codes, column)]
        distinct = set(codes)
        if 2 * len(distinct) > len(self.scopes):
            return None
        combos = {}
        for code in distinct:
            rest, picked = code, []
            for values, _ in reversed(encoded):
                rest, i = divmod(rest, len(values))
                picked.append(values[i])
            combos[code] = tuple(reversed(picked))
        return combos, codes


# --- the baseline: a tree-walking interpreter -------------------------------------------------------

class TreeInterpreter:
    """Evaluates an expression by walking its checked tree on every call.

    The yardstick for the compiled closures (the benchmark's baseline) and the oracle
    they are tested against: same parse, same checks, same semantics, no specialisation.
    """

    def __init__(self, text: str, *, roots: Collection[str] = RULE_ROOTS,
                 functions: Mapping[str, Function] = DEFAULT_FUNCTIONS, kind: str = "any",
                 field: str = "expression"):
        parsed = parse_expression(text, roots=roots, functions=functions, kind=kind, field=field)
        self.text, self.kind, self.tree, self.field = text, kind, parsed.tree, field
        self.attributes_read, self.groups_read = parsed.attributes_read, parsed.groups_read

    def __call__(self, scope: Scope, groups: Collection[str] = _EMPTY) -> Any:
        value = self.eval(self.tree, scope, groups)
        return value is True if self.kind == "boolean" else value

    def eval(self, node: Node, scope: Scope, groups: Collection[str]) -> Any:
        return getattr(self, f"_{type(node).__name__}")(node, scope, groups)

    def _fault(self, fault: _Fault, pos: int) -> ExpressionError:
        return ExpressionError(str(fault), self.text, pos, field=self.field)

    def _Literal(self, node, scope, groups):
        return node.value

    def _Attribute(self, node, scope, groups):
        values = scope.get(node.root)
        return None if values is None else values.get(node.name)

    def _Not(self, node, scope, groups):
        return self.eval(node.operand, scope, groups) is not True

    def _Logical(self, node, scope, groups):
        stop = node.op == "or"  # the operand value that decides: true for OR, not-true for AND
        for operand in node.operands:
            if (self.eval(operand, scope, groups) is True) == stop:
                return stop
        return not stop

    def _Comparison(self, node, scope, groups):
        left = self.eval(node.left, scope, groups)
        right = self.eval(node.right, scope, groups)
        return COMPARISONS[node.op](left, right)

    def _Concat(self, node, scope, groups):
        value = self.eval(node.operands[0], scope, groups)
        for operand, pos in zip(node.operands[1:], node.plus_at):
            other = self.eval(operand, scope, groups)
            try:
                value = plus(value, other)
            except _Fault as f:
                raise self._fault(f, pos) from None
        return value

    def _Conditional(self, node, scope, groups):
        if self.eval(node.test, scope, groups) is True:
            return self.eval(node.then, scope, groups)
        return self.eval(node.otherwise, scope, groups)

    def _Call(self, node, scope, groups):
        if node.function.reads_groups:
            return node.function.impl(groups, *(a.value for a in node.args))
        args = [self.eval(a, scope, groups) for a in node.args]
        try:
            return node.function.impl(*args)
        except _Fault as f:
            raise self._fault(f, node.pos) from None
