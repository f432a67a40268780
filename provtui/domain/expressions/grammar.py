"""The grammar: Lark's LALR parser over the text, within the length and nesting limits."""

from __future__ import annotations

import functools
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from provtui.domain.expressions.errors import ExpressionError, quote
from provtui.domain.expressions.values import MAX_DEPTH, MAX_LENGTH

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


def parse_tree(text: str, field: str) -> Tree[Token]:
    """Lark's parse tree of ``text``, within the limits; every error names the column."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH:,} characters", text, MAX_LENGTH, field=field)
    if not text.strip():
        raise ExpressionError("the expression is empty", text, 0, field=field)
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as e:
        pos = cast(int, e.pos_in_stream)  # always set for a character the lexer could not match
        char = text[pos] if pos < len(text) else ""
        if char in ("'", '"'):
            raise ExpressionError("unterminated string", text, pos, field=field) from None
        raise ExpressionError(f"unexpected character {quote(char)}", text, pos, field=field, hint=_HINTS.get(char, "")) from None
    except UnexpectedToken as e:
        token = e.token
        if token.type == "$END":
            raise ExpressionError("unexpected end of expression", text, len(text.rstrip()), field=field) from None
        raise ExpressionError(f"unexpected token {quote(str(token))}", text, token.start_pos or 0, field=field) from None
    except UnexpectedEOF:
        raise ExpressionError("unexpected end of expression", text, len(text.rstrip()), field=field) from None
    except LarkError:  # pragma: no cover - every parse failure above is an UnexpectedInput
        raise ExpressionError("cannot parse the expression", text, 0, field=field) from None
    _check_depth(tree, text, field)
    return tree


def _check_depth(tree: Tree[Token], text: str, field: str) -> None:
    # Iterative, so a hostile nesting is measured without recursing into it.
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression nests deeper than {MAX_DEPTH} levels", text, start_of(node), field=field)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def start_of(node: Tree[Token] | Token) -> int:
    """The offset a node of Lark's tree starts at."""
    if isinstance(node, Token):
        return node.start_pos or 0
    return getattr(node.meta, "start_pos", 0) or 0
