"""The checker: Lark's parse tree -> the checked tree, with every name, kind and limit checked."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Mapping
from typing import cast

from lark import Token, Tree

from provtui.domain.expressions.errors import ExpressionError, quote
from provtui.domain.expressions.functions import DEFAULT_FUNCTIONS, RULE_ROOTS, Function
from provtui.domain.expressions.grammar import parse_tree, start_of
from provtui.domain.expressions.tree import (
    Attribute,
    Call,
    Comparison,
    Concat,
    Conditional,
    Literal,
    Logical,
    Node,
    Not,
    ParsedExpression,
    describe,
)
from provtui.domain.expressions.values import ANY, BOOLEAN, BOOLEAN_ONLY, MAX_NUMBER_LENGTH, NULL, NUMBER, NUMBER_ONLY, STRING, STRING_ONLY


class _Builder:
    """Turns Lark's parse tree into the checked tree; every error names the column."""

    def __init__(self, text: str, roots: Collection[str], functions: Mapping[str, Function], field: str):
        self.text, self.roots, self.functions, self.field = text, roots, functions, field
        self.attributes: set[tuple[str, str]] = set()
        self.groups: set[str] = set()

    def error(self, message: str, pos: int, hint: str = "") -> ExpressionError:
        return ExpressionError(message, self.text, pos, field=self.field, hint=hint)

    def build(self, t: Tree[Token]) -> Node:
        method: Callable[[Tree[Token]], Node] = getattr(self, f"_{t.data}")
        return method(t)

    def condition(self, node: Node, what: str) -> Node:
        if BOOLEAN not in node.kinds:
            raise self.error(f"{what} needs a condition, not {describe(node.kinds)}", node.pos)
        return node

    # literals
    def _string(self, t: Tree[Token]) -> Node:
        token = _token(t)
        return Literal(_at(token), STRING_ONLY, self._decode(token))

    def _decode(self, token: Token) -> str:
        body: str = token.value[1:-1]
        if "\\" not in body:
            return body
        out: list[str] = []
        i = 0
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
            elif e == "u" and len(digits := body[i + 2 : i + 6]) == 4 and all(d in _HEX for d in digits):
                code = int(digits, 16)
                if 0xD800 <= code <= 0xDFFF:
                    raise self.error(f"\\u{digits} is not a character (a surrogate)", _at(token) + 1 + i)
                out.append(chr(code))
                i += 6
            else:
                raise self.error(
                    f"unknown escape {quote(chr(92) + e)}", _at(token) + 1 + i, hint="use \\\\ \\\" \\' \\n \\r \\t or \\uXXXX"
                )
        return "".join(out)

    def _number(self, t: Tree[Token]) -> Node:
        token = _token(t)
        if len(token.value) > MAX_NUMBER_LENGTH:
            raise self.error(f"a number may have at most {MAX_NUMBER_LENGTH} characters", _at(token))
        if any(c in token.value for c in ".eE"):
            value: int | float = float(token.value)
            if not math.isfinite(value):
                raise self.error("number out of range", _at(token))
        else:
            value = int(token.value)
        return Literal(_at(token), NUMBER_ONLY, value)

    def _true(self, t: Tree[Token]) -> Node:
        return Literal(start_of(t), BOOLEAN_ONLY, True)

    def _false(self, t: Tree[Token]) -> Node:
        return Literal(start_of(t), BOOLEAN_ONLY, False)

    def _null(self, t: Tree[Token]) -> Node:
        return Literal(start_of(t), frozenset({NULL}), None)

    # names
    def _attr(self, t: Tree[Token]) -> Node:
        root, name = _token(t, 0), _token(t, 1)
        if root.value not in self.roots:
            raise self.error(f"unknown name {quote(root.value)}", _at(root), hint=self._roots_hint())
        if name.value.startswith("_"):
            raise self.error("attribute names cannot start with '_'", _at(name))
        self.attributes.add((root.value, name.value))
        return Attribute(_at(root), ANY, root.value, name.value)

    def _bare(self, t: Tree[Token]) -> Node:
        name = _token(t)
        if name.value in self.roots:
            raise self.error(f"{quote(name.value)} needs an attribute: {name.value}.<attribute>", _at(name))
        written = " or ".join(f"{root}.{name.value}" for root in sorted(self.roots))
        # == Sales: most often a text left unquoted, less often an attribute written without its root
        hint = f'text goes in quotes: "{name.value}"' + (f"; an attribute is {written}" if written else "")
        hint = hint if not name.value.startswith("_") else ""
        raise self.error(f"unknown name {quote(name.value)}", _at(name), hint=hint)

    def _roots_hint(self) -> str:
        return "attributes are read from " + (", ".join(f"{r}.<attribute>" for r in sorted(self.roots)) or "nothing here")

    # operators
    def _paren(self, t: Tree[Token]) -> Node:
        return self.build(_subtree(t))

    def _not_op(self, t: Tree[Token]) -> Node:
        operand = self.condition(self.build(_subtree(t)), "NOT")
        return Not(start_of(t), BOOLEAN_ONLY, operand)

    def _and_expr(self, t: Tree[Token]) -> Node:
        return Logical(start_of(t), BOOLEAN_ONLY, "and", tuple(self.condition(self.build(c), "AND") for c in _subtrees(t)))

    def _or_expr(self, t: Tree[Token]) -> Node:
        return Logical(start_of(t), BOOLEAN_ONLY, "or", tuple(self.condition(self.build(c), "OR") for c in _subtrees(t)))

    def _comparison(self, t: Tree[Token]) -> Node:
        left, op, right = self.build(_subtree(t, 0)), _token(t, 1), self.build(_subtree(t, 2))
        if op.value not in ("==", "!="):
            for side in (left, right):
                if not side.kinds & {NUMBER, STRING}:
                    raise self.error(f"{quote(op.value)} compares numbers or text, not {describe(side.kinds)}", side.pos)
            lk, rk = left.kinds - {NULL}, right.kinds - {NULL}
            if len(lk) == 1 and len(rk) == 1 and lk != rk:
                raise self.error(f"{quote(op.value)} between {describe(lk)} and {describe(rk)} is always false", _at(op))
        return Comparison(_at(op), BOOLEAN_ONLY, op.value, left, right)

    def _sum(self, t: Tree[Token]) -> Node:
        operands = tuple(self.build(cast(Tree[Token], c)) for c in t.children[::2])
        plus_at = tuple(_at(cast(Token, token)) for token in t.children[1::2])
        kinds: frozenset[str] = operands[0].kinds
        for operand in operands[1:]:
            kinds = _plus_kinds(kinds, operand.kinds)
        return Concat(operands[0].pos, kinds, operands, plus_at)

    def _ternary(self, t: Tree[Token]) -> Node:
        test, then, otherwise = (self.build(c) for c in _subtrees(t))
        self.condition(test, "'?'")
        return Conditional(test.pos, then.kinds | otherwise.kinds, test, then, otherwise)

    def _call(self, t: Tree[Token]) -> Node:
        names = [c for c in t.children if isinstance(c, Token)]
        name = ".".join(n.value for n in names)
        pos = _at(names[0])
        function = self.functions.get(name)
        if function is None:
            close = difflib.get_close_matches(name, list(self.functions), n=1)
            hint = f"did you mean {close[0]}?" if close else ""
            raise self.error(f"unknown function {quote(name)}", pos, hint=hint)
        args = tuple(self.build(c) for c in t.children if isinstance(c, Tree))
        most, least = len(function.params), len(function.params) - function.optional
        if not least <= len(args) <= most:
            wanted = f"{least}" if least == most else f"{least} or {most}" if most - least == 1 else f"{least} to {most}"
            noun = "argument" if most == 1 else "arguments"
            raise self.error(f"{name} takes {wanted} {noun}, not {len(args)}", pos)
        for number, (arg, accepted) in enumerate(zip(args, function.params, strict=False), start=1):
            if not arg.kinds & (accepted | {NULL}):
                raise self.error(f"argument {number} of {name} must be {describe(accepted)}, not {describe(arg.kinds)}", arg.pos)
            if function.reads_groups:
                if not (isinstance(arg, Literal) and type(arg.value) is str):
                    raise self.error(f"{name} takes a group name in quotes", arg.pos)
                self.groups.add(arg.value)
        return Call(pos, function.returns, name, function, args)


def _token(t: Tree[Token], i: int = 0) -> Token:
    """``t.children[i]``, where the grammar puts a token."""
    return cast(Token, t.children[i])


def _subtree(t: Tree[Token], i: int = 0) -> Tree[Token]:
    """``t.children[i]``, where the grammar puts a subtree (an expression)."""
    return cast(Tree[Token], t.children[i])


def _subtrees(t: Tree[Token]) -> list[Tree[Token]]:
    """The children of a node whose children are all subtrees."""
    return cast(list[Tree[Token]], t.children)


def _at(token: Token) -> int:
    """Where a token starts: the lexer sets it on every token it makes."""
    return cast(int, token.start_pos)


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _plus_kinds(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    if a == NUMBER_ONLY and b == NUMBER_ONLY:
        return NUMBER_ONLY
    if NUMBER in a and NUMBER in b:
        return frozenset({NUMBER, STRING})
    return STRING_ONLY


def parse_expression(
    text: str,
    *,
    roots: Collection[str] = RULE_ROOTS,
    functions: Mapping[str, Function] = DEFAULT_FUNCTIONS,
    kind: str = "any",
    field: str = "expression",
) -> ParsedExpression:
    """Parse and check ``text``; raises ExpressionError (``field`` names it) with the column."""
    if kind not in ("any", "boolean"):
        raise ValueError(f"kind must be 'any' or 'boolean', not {kind!r}")
    builder = _Builder(text, frozenset(roots), functions, field)
    tree = builder.build(parse_tree(text, field))
    if kind == "boolean" and tree.kinds != BOOLEAN_ONLY:
        if tree.kinds == ANY:
            raise builder.error("a rule must be a condition", tree.pos, hint="compare the value, e.g. user.isContractor == true")
        if BOOLEAN in tree.kinds:
            raise builder.error(f"a rule must be a condition, but this can also give {describe(tree.kinds - BOOLEAN_ONLY)}", tree.pos)
        raise builder.error(f"a rule must be a condition, not {describe(tree.kinds)}", tree.pos)
    return ParsedExpression(text, tree, kind, frozenset(builder.attributes), frozenset(builder.groups))
