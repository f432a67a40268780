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
The tree-walking interpreter the benchmark (tests/bench/bench_rules.py) measures against,
and the tests' oracle, is tests/bench/baseline_interpreter.py: it walks the same checked tree.

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

The package, in the order a text goes through it:

- ``errors``: ExpressionError (message, column, caret) and the runtime Fault;
- ``values``: limits, kinds and the operations (``==``, ordering, ``+``, text);
- ``functions``: the functions table and the roots;
- ``grammar``: the Lark grammar and parser, with the length and nesting limits;
- ``tree`` and ``checker``: the checked tree and ``parse_expression``, which builds it;
- ``compiler``: the checked tree -> specialised closures;
- ``compiled`` and ``population``: ``CompiledExpression`` (one scope at a time, or
  ``evaluate_all`` column by column over a ``Population``).
"""

from typing import TYPE_CHECKING

from provtui.lazy import exports, names

if TYPE_CHECKING:
    from provtui.domain.expressions.checker import parse_expression as parse_expression
    from provtui.domain.expressions.compiled import CompiledExpression as CompiledExpression
    from provtui.domain.expressions.compiled import compile_expression as compile_expression
    from provtui.domain.expressions.errors import ExpressionError as ExpressionError
    from provtui.domain.expressions.functions import DEFAULT_FUNCTIONS as DEFAULT_FUNCTIONS
    from provtui.domain.expressions.functions import MAPPING_FUNCTIONS as MAPPING_FUNCTIONS
    from provtui.domain.expressions.functions import MAPPING_ROOTS as MAPPING_ROOTS
    from provtui.domain.expressions.functions import RULE_ROOTS as RULE_ROOTS
    from provtui.domain.expressions.functions import Function as Function
    from provtui.domain.expressions.population import Population as Population
    from provtui.domain.expressions.tree import Attribute as Attribute
    from provtui.domain.expressions.tree import Call as Call
    from provtui.domain.expressions.tree import Comparison as Comparison
    from provtui.domain.expressions.tree import Concat as Concat
    from provtui.domain.expressions.tree import Conditional as Conditional
    from provtui.domain.expressions.tree import Literal as Literal
    from provtui.domain.expressions.tree import Logical as Logical
    from provtui.domain.expressions.tree import Node as Node
    from provtui.domain.expressions.tree import Not as Not
    from provtui.domain.expressions.tree import ParsedExpression as ParsedExpression
    from provtui.domain.expressions.values import ANY as ANY
    from provtui.domain.expressions.values import ARRAY as ARRAY
    from provtui.domain.expressions.values import BOOLEAN as BOOLEAN
    from provtui.domain.expressions.values import COMPARISONS as COMPARISONS
    from provtui.domain.expressions.values import MAX_DEPTH as MAX_DEPTH
    from provtui.domain.expressions.values import MAX_LENGTH as MAX_LENGTH
    from provtui.domain.expressions.values import MAX_NUMBER_LENGTH as MAX_NUMBER_LENGTH
    from provtui.domain.expressions.values import MAX_STRING as MAX_STRING
    from provtui.domain.expressions.values import NULL as NULL
    from provtui.domain.expressions.values import NUMBER as NUMBER
    from provtui.domain.expressions.values import OBJECT as OBJECT
    from provtui.domain.expressions.values import STRING as STRING
    from provtui.domain.expressions.values import Scope as Scope
    from provtui.domain.expressions.values import equals as equals
    from provtui.domain.expressions.values import kind_of as kind_of
    from provtui.domain.expressions.values import plus as plus
    from provtui.domain.expressions.values import to_text as to_text

_WHERE = {
    "provtui.domain.expressions.checker": ("parse_expression",),
    "provtui.domain.expressions.compiled": ("CompiledExpression", "compile_expression"),
    "provtui.domain.expressions.errors": ("ExpressionError",),
    "provtui.domain.expressions.functions": ("DEFAULT_FUNCTIONS", "MAPPING_FUNCTIONS", "MAPPING_ROOTS", "RULE_ROOTS", "Function"),
    "provtui.domain.expressions.population": ("Population",),
    "provtui.domain.expressions.tree": (
        "Attribute",
        "Call",
        "Comparison",
        "Concat",
        "Conditional",
        "Literal",
        "Logical",
        "Node",
        "Not",
        "ParsedExpression",
    ),
    "provtui.domain.expressions.values": (
        "ANY",
        "ARRAY",
        "BOOLEAN",
        "COMPARISONS",
        "MAX_DEPTH",
        "MAX_LENGTH",
        "MAX_NUMBER_LENGTH",
        "MAX_STRING",
        "NULL",
        "NUMBER",
        "OBJECT",
        "STRING",
        "Scope",
        "equals",
        "kind_of",
        "plus",
        "to_text",
    ),
}
__getattr__ = exports(__name__, _WHERE)
__all__ = names(_WHERE)
