"""The compiler: the checked tree -> nested closures ``(scope, groups) -> value``.

Each node compiles once into a closure specialised for its shape (an attribute compared with a
constant reads and tests inline; a part with no attribute, no group and only built-in functions
is folded to its value).  In *value mode* the tree reads a single attribute and the closures get
that attribute's value as their first argument instead of a scope: the columnar evaluator runs
such a part once per distinct value of a column.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from provtui.domain.expressions.errors import ExpressionError, Fault
from provtui.domain.expressions.functions import BUILTINS, is_member
from provtui.domain.expressions.tree import Attribute, Call, Comparison, Concat, Conditional, Literal, Logical, Node, Not
from provtui.domain.expressions.values import COMPARISONS, FLIPPED, NO_GROUPS, NO_SCOPE, NUMBER_TYPES, plus

Closure = Callable[[Any, Collection[str]], Any]
"""A compiled node: ``(scope, groups) -> value``; in value mode ``(value, groups) -> value``."""


@dataclass(frozen=True, slots=True)
class _Code:
    """A compiled node: its closure, and its value when it is a constant."""

    fn: Closure
    const: bool = False
    value: Any = None


def _constant(value: Any) -> _Code:
    return _Code(lambda s, g: value, True, value)


def _the_value(s: Any, g: Collection[str]) -> Any:
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
    return id(node.function) in BUILTINS and not node.function.reads_groups and all(_pure(a) for a in node.args)


class Compiler:
    """Checked tree -> nested closures ``(scope, groups) -> value``, specialised for the common shapes."""

    def __init__(self, text: str, field: str, *, value_mode: bool = False):
        # value_mode: the tree reads one attribute, and its value is the closures' first argument.
        self.text, self.field, self.value_mode = text, field, value_mode
        self.fns: dict[int, Closure] = {}

    def fault(self, fault: Fault, pos: int) -> ExpressionError:
        return ExpressionError(str(fault), self.text, pos, field=self.field)

    def compile(self, node: Node) -> _Code:
        method: Callable[[Node], _Code] = getattr(self, f"_{type(node).__name__}")
        code = method(node)
        if not code.const and not isinstance(node, Attribute) and _pure(node):
            try:
                code = _constant(code.fn(NO_SCOPE, NO_GROUPS))
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

        def read(s: Any, g: Collection[str]) -> Any:
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

            def all_true(s: Any, g: Collection[str]) -> Any:
                for op in ops:
                    if op(s, g) is not True:
                        return False
                return True

            return _Code(all_true)
        if len(ops) == 2:
            a, b = ops
            return _Code(lambda s, g: a(s, g) is True or b(s, g) is True)

        def any_true(s: Any, g: Collection[str]) -> Any:
            for op in ops:
                if op(s, g) is True:
                    return True
            return False

        return _Code(any_true)

    def _Comparison(self, node: Comparison) -> _Code:
        op, left, right = node.op, node.left, node.right
        lc, rc = self.compile(left), self.compile(right)
        if lc.const and not rc.const:  # keep the constant on the right
            op, left, right, lc, rc = FLIPPED[op], right, left, rc, lc
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
        rest = tuple((self.compile(o).fn, pos) for o, pos in zip(node.operands[1:], node.plus_at, strict=False))
        fault = self.fault

        def concat(s: Any, g: Collection[str]) -> Any:
            value = first(s, g)
            for fn, pos in rest:
                try:
                    value = plus(value, fn(s, g))
                except Fault as f:
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
            names = node.group_names()
            if impl is is_member:
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

                    def call_value(s: Any, g: Collection[str]) -> Any:
                        try:
                            return impl(s, c)
                        except Fault as f:
                            raise fault(f, pos) from None

                    return _Code(call_value)

                def call_value_n(s: Any, g: Collection[str]) -> Any:
                    try:
                        return impl(s, *rest)
                    except Fault as f:
                        raise fault(f, pos) from None

                return _Code(call_value_n)
            if isinstance(first, Attribute):
                root, name = first.root, first.name

                def call_attribute(s: Any, g: Collection[str]) -> Any:
                    d = s.get(root)
                    try:
                        return impl(None if d is None else d.get(name), *rest)
                    except Fault as f:
                        raise fault(f, pos) from None

                return _Code(call_attribute)
            a = codes[0].fn

            def call_first(s: Any, g: Collection[str]) -> Any:
                value = a(s, g)
                try:
                    return impl(value, *rest)
                except Fault as f:
                    raise fault(f, pos) from None

            return _Code(call_first)
        fns = tuple(c.fn for c in codes)
        if len(fns) == 1:
            (a,) = fns

            def call1(s: Any, g: Collection[str]) -> Any:
                value = a(s, g)
                try:
                    return impl(value)
                except Fault as f:
                    raise fault(f, pos) from None

            return _Code(call1)

        def call(s: Any, g: Collection[str]) -> Any:
            args = [f(s, g) for f in fns]
            try:
                return impl(*args)
            except Fault as f:
                raise fault(f, pos) from None

        return _Code(call)


def _value_test(op: str, c: Any) -> Closure:
    """``value <op> constant`` in value mode (the value is the first argument)."""
    if op in ("==", "!=") and type(c) is str:  # only an equal str equals a str
        return (lambda s, g: s == c) if op == "==" else (lambda s, g: s != c)
    if op in ("==", "!=") and (c is None or type(c) is bool):  # singletons
        return (lambda s, g: s is c) if op == "==" else (lambda s, g: s is not c)
    test = COMPARISONS[op]
    return lambda s, g: test(s, c)


def _attribute_test(root: str, name: str, op: str, c: Any) -> Closure | None:
    """A closure for ``root.name <op> constant`` that reads and tests inline, or None for the generic path."""
    tc = type(c)
    if op in ("==", "!="):
        if tc is str:  # only an equal str equals a str
            if op == "==":

                def eq_str(s: Any, g: Collection[str]) -> Any:
                    d = s.get(root)
                    return d is not None and d.get(name) == c

                return eq_str

            def ne_str(s: Any, g: Collection[str]) -> Any:
                d = s.get(root)
                return d is None or d.get(name) != c

            return ne_str
        if c is None or tc is bool:  # singletons
            if op == "==":

                def is_const(s: Any, g: Collection[str]) -> Any:
                    d = s.get(root)
                    return (None if d is None else d.get(name)) is c

                return is_const

            def is_not_const(s: Any, g: Collection[str]) -> Any:
                d = s.get(root)
                return (None if d is None else d.get(name)) is not c

            return is_not_const
        return None
    if tc is str:
        test = COMPARISONS[op]

        def order_str(s: Any, g: Collection[str]) -> Any:
            d = s.get(root)
            v = None if d is None else d.get(name)
            return type(v) is str and test(v, c)

        return order_str
    if tc in NUMBER_TYPES:
        test = COMPARISONS[op]

        def order_number(s: Any, g: Collection[str]) -> Any:
            d = s.get(root)
            v = None if d is None else d.get(name)
            return type(v) in NUMBER_TYPES and test(v, c)

        return order_number
    return None
