"""The benchmark's baseline: a tree-walking interpreter of provtui's expressions.

It walks the checked tree ``provtui.domain.expressions.parse_expression`` builds, on every
call, with the same semantics as the compiled closures and no specialisation: the yardstick
tests/bench/bench_rules.py measures the compiler against, and the oracle tests/unit/test_expressions.py
checks the compiler with.  Not part of provtui: nothing in the package needs it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from provtui.domain.expressions import (
    COMPARISONS,
    DEFAULT_FUNCTIONS,
    RULE_ROOTS,
    ExpressionError,
    Function,
    Node,
    Scope,
    parse_expression,
    plus,
)
from provtui.domain.expressions.errors import Fault
from provtui.domain.expressions.values import NO_GROUPS


class TreeInterpreter:
    """Evaluates an expression by walking its checked tree on every call.

    The yardstick for the compiled closures (the benchmark's baseline) and the oracle
    they are tested against: same parse, same checks, same semantics, no specialisation.
    """

    def __init__(
        self,
        text: str,
        *,
        roots: Collection[str] = RULE_ROOTS,
        functions: Mapping[str, Function] = DEFAULT_FUNCTIONS,
        kind: str = "any",
        field: str = "expression",
    ):
        parsed = parse_expression(text, roots=roots, functions=functions, kind=kind, field=field)
        self.text, self.kind, self.tree, self.field = text, kind, parsed.tree, field
        self.attributes_read, self.groups_read = parsed.attributes_read, parsed.groups_read

    def __call__(self, scope: Scope, groups: Collection[str] = NO_GROUPS) -> Any:
        value = self.eval(self.tree, scope, groups)
        return value is True if self.kind == "boolean" else value

    def eval(self, node: Node, scope: Scope, groups: Collection[str]) -> Any:
        return getattr(self, f"_{type(node).__name__}")(node, scope, groups)

    def _fault(self, fault: Fault, pos: int) -> ExpressionError:
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
        for operand, pos in zip(node.operands[1:], node.plus_at, strict=False):
            other = self.eval(operand, scope, groups)
            try:
                value = plus(value, other)
            except Fault as f:
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
        except Fault as f:
            raise self._fault(f, node.pos) from None
