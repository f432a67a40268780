"""The columnar evaluator's data: a population of scopes read column by column.

``CompiledExpression.evaluate_all`` asks a ``Population`` for columns (every scope's value of
one attribute, or membership of one group), their distinct values and dictionary encodings,
so that a part of an expression runs once per distinct value it reads, not once per scope.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, Protocol, cast

from provtui.domain.expressions.values import NO_GROUPS, Scope

Key = tuple[str, str, str]
"""What a part reads: ("attr", root, name) or ("group", name, "")."""


class ReadsKeys(Protocol):
    """What prefetch needs of an expression (a CompiledExpression): the keys it reads."""

    def keys_read(self) -> Iterable[Key]: ...


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
        self.groups = list(groups) if groups is not None else [NO_GROUPS] * len(self.scopes)
        if len(self.groups) != len(self.scopes):
            raise ValueError("one group set per scope")
        self._columns: dict[Key, list[Any]] = {}
        self._distinct: dict[Key, set[Any] | None] = {}
        self._roots: dict[str, list[Mapping[str, Any] | None]] = {}
        self._encoded: dict[Key, tuple[list[Any], list[int]] | None] = {}

    def __len__(self) -> int:
        return len(self.scopes)

    def prefetch(self, expressions: Iterable[ReadsKeys]) -> None:
        """Read every attribute the expressions read, in one pass over the scopes.

        Optional: ``evaluate_all`` reads what it is missing by itself, but one pass that
        visits each profile once is several times faster than a pass per attribute.
        """
        self.load({key for e in expressions for key in e.keys_read()})

    def load(self, keys: Iterable[Key]) -> None:
        """Read these keys' columns, each profile visited once (what is already read is kept)."""
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
                columns = [list(map(dict.get, cast(list[dict[str, Any]], values), repeat(attrs[0])))]  # the loop runs in C
            else:
                columns = [[] for _ in attrs]
                appends = list(zip([c.append for c in columns], attrs, strict=False))
                for d in values:  # each profile visited once, while it is in the cache
                    if d is None:
                        for append, _ in appends:
                            append(None)
                    else:
                        get = d.get
                        for append, attr in appends:
                            append(get(attr))
            for attr, column in zip(attrs, columns, strict=False):
                self._columns[("attr", root, attr)] = column

    def _column(self, key: Key) -> list[Any]:
        """("attr", root, name): every scope's value; ("group", name, ""): every scope's membership."""
        column = self._columns.get(key)
        if column is None:
            self.load((key,))
            column = self._columns[key]
        return column

    def _distinct_values(self, key: Key) -> set[Any] | None:
        """The column's distinct values when they are plain and few enough to memoise (at most
        one per two scopes), else None.  Plain: str and None, plus int or bool but never
        both, and no float (Python hashes 1, 1.0 and True alike, but they differ here)."""
        if key not in self._distinct:
            column = self._column(key)
            distinct: set[Any] | None = None
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

    def _codes(self, key: Key) -> tuple[list[Any], list[int]] | None:
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

    def _memo_plan(self, keys: tuple[Key, ...]) -> tuple[dict[int, tuple[Any, ...]], list[int]] | None:
        """({code: the values of one distinct combination}, each scope's code) when memoising
        pays (at most one distinct combination per two scopes), else None.  Codes are ints
        (mixed-radix over the encoded columns), so no tuple is built per scope."""
        self.load(keys)
        found = [self._codes(key) for key in keys]
        encoded = [e for e in found if e is not None]
        if len(encoded) < len(found) or math.prod(len(e[0]) for e in encoded) > 1 << 62:
            return None
        codes = encoded[0][1]
        for values, column in encoded[1:]:
            radix = len(values)
            codes = [c * radix + x for c, x in zip(codes, column, strict=False)]
        distinct = set(codes)
        if 2 * len(distinct) > len(self.scopes):
            return None
        combos: dict[int, tuple[Any, ...]] = {}
        for code in distinct:
            rest, picked = code, []
            for values, _ in reversed(encoded):
                rest, i = divmod(rest, len(values))
                picked.append(values[i])
            combos[code] = tuple(reversed(picked))
        return combos, codes
