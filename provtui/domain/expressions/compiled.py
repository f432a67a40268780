"""A compiled expression: call it per user, or evaluate it column by column over a population."""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from itertools import repeat
from typing import Any

from provtui.domain.expressions.checker import parse_expression
from provtui.domain.expressions.compiler import Closure, Compiler
from provtui.domain.expressions.errors import ExpressionError
from provtui.domain.expressions.functions import BUILTINS, DEFAULT_FUNCTIONS, RULE_ROOTS, Function
from provtui.domain.expressions.population import Key, Population
from provtui.domain.expressions.tree import Attribute, Call, Comparison, Concat, Conditional, Literal, Logical, Node, Not, ParsedExpression
from provtui.domain.expressions.values import BOOLEAN_ONLY, NO_GROUPS, NO_SCOPE, Scope


class CompiledExpression:
    """An expression compiled once into closures: call it per user, or ``evaluate_all`` over a population.

    ``expression(scope, groups)``: ``scope`` maps each root to its attributes, e.g.
    ``{"user": profile, "assignment": values}`` (a missing root reads as all-null);
    ``groups`` holds the names of the groups the user belongs to (for
    ``isMemberOfGroupName``).  Returns the value, or for ``kind="boolean"`` True/False.
    Raises ExpressionError only for a runtime fault (a ``+`` over ``MAX_STRING``).
    """

    __slots__ = ("_coerce", "_field", "_fns", "_keys", "_value_fns", "attributes_read", "function", "groups_read", "kind", "text", "tree")

    def __init__(self, parsed: ParsedExpression, field: str = "expression"):
        self.text = parsed.text
        self.kind = parsed.kind
        self.tree = parsed.tree
        self.attributes_read = parsed.attributes_read
        self.groups_read = parsed.groups_read
        self._field = field
        compiler = Compiler(parsed.text, field)
        fn = compiler.compile(parsed.tree).fn
        self._fns = compiler.fns  # id(node) -> its closure, for evaluate_all
        self._value_fns: dict[int, Closure] = {}
        self._keys: dict[int, tuple[Key, ...]] = {}
        _collect_keys(parsed.tree, self._keys)
        self._coerce = parsed.kind == "boolean" and not _surely_boolean(parsed.tree)
        if self._coerce:
            inner = fn

            def fn(s: Scope, g: Collection[str]) -> bool:
                return inner(s, g) is True

        self.function: Callable[[Scope, Collection[str]], Any] = fn
        """The compiled closure itself, ``(scope, groups) -> value``, for hot loops."""

    def __call__(self, scope: Scope, groups: Collection[str] = NO_GROUPS) -> Any:
        return self.function(scope, groups)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"

    def keys_read(self) -> tuple[Key, ...]:
        """Every attribute and group the expression reads (what Population.prefetch loads for it)."""
        return self._keys[id(self.tree)]

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
        population.load(self.keys_read())
        try:
            values = self._column_of(self.tree, population)
        except ExpressionError:
            fn = self.function  # raises the first failing scope's error; evaluates nothing a scope skips
            return [fn(s, g) for s, g in zip(population.scopes, population.groups, strict=False)]
        return [v is True for v in values] if self._coerce else values

    def _column_of(self, node: Node, pop: Population) -> list[Any]:
        keys, n = self._keys[id(node)], len(pop)
        if not keys:
            value = self._fns[id(node)](NO_SCOPE, NO_GROUPS)
            return [value] * n
        if len(keys) == 1:
            return self._single_key_column(node, keys[0], pop)
        if isinstance(node, Logical):
            parts = [self._column_of(o, pop) for o in node.operands]
            acc = parts[0]
            if not _surely_boolean(node.operands[0]):
                acc = [v is True for v in acc]
            for operand, part in zip(node.operands[1:], parts[1:], strict=False):
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
            return [a if t is True else b for t, a, b in zip(tests, thens, others, strict=False)]
        fn = self._fns[id(node)]
        plan = pop._memo_plan(keys)
        if plan is not None:
            combos, codes = plan
            table = {code: fn(*_scope_for(keys, values)) for code, values in combos.items()}
            return list(map(table.__getitem__, codes))
        return [fn(s, g) for s, g in zip(pop.scopes, pop.groups, strict=False)]

    def _single_key_column(self, node: Node, key: Key, pop: Population) -> list[Any]:
        column = pop._column(key)
        if key[0] == "group":
            fn = self._fns[id(node)]
            table = {True: fn(NO_SCOPE, frozenset((key[1],))), False: fn(NO_SCOPE, NO_GROUPS)}
            return list(map(table.__getitem__, column))
        fv = self._value_fns.get(id(node))
        if fv is None:  # the part compiled again, reading its one attribute from the first argument
            fv = self._value_fns[id(node)] = Compiler(self.text, self._field, value_mode=True).compile(node).fn
        distinct = pop._distinct_values(key)
        if distinct is not None and 2 * len(distinct) <= len(pop):
            table = {v: fv(v, NO_GROUPS) for v in distinct}
            return list(map(table.__getitem__, column))
        return list(map(fv, column, repeat(NO_GROUPS)))


def _collect_keys(node: Node, out: dict[int, tuple[Key, ...]]) -> frozenset[Key]:
    """What each node reads: ("attr", root, name) and ("group", name, "") keys, by id(node)."""
    keys: frozenset[Key]
    if isinstance(node, Attribute):
        keys = frozenset({("attr", node.root, node.name)})
    elif isinstance(node, Literal):
        keys = frozenset()
    elif isinstance(node, Call) and node.function.reads_groups:
        keys = frozenset(("group", name, "") for name in node.group_names())
    else:
        keys = frozenset().union(*(_collect_keys(c, out) for c in _children(node)))
    out[id(node)] = tuple(sorted(keys))
    return keys


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, (Logical, Concat)):
        return node.operands
    if isinstance(node, Comparison):
        return (node.left, node.right)
    if isinstance(node, Conditional):
        return (node.test, node.then, node.otherwise)
    if isinstance(node, Call):
        return node.args
    return ()


def _surely_boolean(node: Node) -> bool:
    if isinstance(node, (Comparison, Logical, Not)):
        return True
    if isinstance(node, Literal):
        return type(node.value) is bool
    if isinstance(node, Call):
        return id(node.function) in BUILTINS and node.kinds == BOOLEAN_ONLY
    if isinstance(node, Conditional):
        return _surely_boolean(node.then) and _surely_boolean(node.otherwise)
    return False


def _scope_for(keys: tuple[Key, ...], values: tuple[Any, ...]) -> tuple[dict[str, dict[str, Any]], frozenset[str]]:
    scope: dict[str, dict[str, Any]] = {}
    groups = []
    for (what, name, attr), value in zip(keys, values, strict=False):
        if what == "group":
            if value:
                groups.append(name)
        else:
            scope.setdefault(name, {})[attr] = value
    return scope, frozenset(groups)


def compile_expression(
    text: str,
    *,
    roots: Collection[str] = RULE_ROOTS,
    functions: Mapping[str, Function] = DEFAULT_FUNCTIONS,
    kind: str = "any",
    field: str = "expression",
) -> CompiledExpression:
    """Parse, check and compile ``text`` once; raises ExpressionError (``field`` names it) with the column.

    ``roots``: the variables it may read (rules: ``RULE_ROOTS``; mappings:
    ``MAPPING_ROOTS``); ``functions``: the functions it may call (mappings:
    ``MAPPING_FUNCTIONS``); ``kind="boolean"`` for a rule, which must be a condition.
    """
    return CompiledExpression(parse_expression(text, roots=roots, functions=functions, kind=kind, field=field), field)
