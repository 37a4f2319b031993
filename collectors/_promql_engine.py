"""A PromQL evaluator over loaded samples, every evaluation step at once.

An instant query is a range query of one step. Each AST node evaluates to a `Scalar` (one
value per step), a list of `Series` (one value per step and whether the series has a
sample at that step: an instant vector over all the steps), or a `String`. Selectors read
the samples they need once for the whole range, through a `Loader`.

Semantics are Prometheus 3's: an instant selector takes the newest sample in
(t - lookback, t], none if that sample is a staleness marker; a range selector `[r]` takes
the samples in (t - r, t] without staleness markers; timestamps are integer milliseconds.

This module parses and dispatches on the AST; the values live in `_promql_values`, the
selectors in `_promql_selectors`, the functions in `_promql_calls`, the aggregations in
`_promql_aggregations` and the operators in `_promql_binary`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import promql_parser as pp

from ._exceptions import QueryError
from ._promql_aggregations import SUPPORTED_AGGREGATIONS, aggregate
from ._promql_binary import apply_binary
from ._promql_calls import FunctionCalls
from ._promql_selectors import SelectorReader
from ._promql_values import (
    IntArray,
    Labels,
    Loader,
    RawSeries,
    Scalar,
    Series,
    String,
    Value,
    as_scalar,
    as_vector,
    drop_name,
    merge,
)

__all__ = [
    "Evaluator",
    "Labels",
    "Loader",
    "RawSeries",
    "Scalar",
    "Series",
    "String",
    "Value",
    "parse",
]


@lru_cache(maxsize=512)
def parse(expr: str) -> Any:
    """The parsed expression (cached: the control plane asks the same ones every second)."""
    try:
        return pp.parse(expr)
    except ValueError as error:
        raise QueryError(f"invalid PromQL {expr!r}: {error}") from None
    except Exception as error:  # the parser may raise its own kinds
        raise QueryError(f"invalid PromQL {expr!r}: {error}") from None


class Evaluator:
    """Evaluates one parsed expression over the steps `steps_ms` (sorted, integer ms)."""

    def __init__(
        self,
        loader: Loader,
        steps_ms: IntArray,
        *,
        lookback_ms: int,
    ) -> None:
        self._selectors = SelectorReader(loader, steps_ms, lookback_ms=lookback_ms)
        self._calls = FunctionCalls(self._eval, self._selectors)
        self._n = len(steps_ms)

    def evaluate(self, node: Any) -> Value:
        self._selectors.plan(node)  # what each selector needs, so that it is loaded once
        with np.errstate(all="ignore"):
            return self._eval(node)

    def _eval(self, node: Any) -> Value:
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(self._n, float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(str(node.val))
        if isinstance(node, pp.ParenExpr):
            return self._eval(node.expr)
        if isinstance(node, pp.UnaryExpr):
            return self._negate(self._eval(node.expr))
        if isinstance(node, pp.VectorSelector):
            return self._selectors.instant(node)
        if isinstance(node, pp.MatrixSelector):
            raise QueryError(
                f"{node} is a range vector: a query must give an instant vector or a scalar "
                "(apply a function such as rate() to it)"
            )
        if isinstance(node, pp.Call):
            return self._calls.call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return apply_binary(
                str(node.op), self._eval(node.lhs), self._eval(node.rhs), node.modifier, self._n
            )
        raise QueryError(f"unsupported PromQL construct {type(node).__name__}: {node}")

    def _negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, String):
            raise QueryError("unary minus needs a number or an instant vector")
        return merge([Series(drop_name(s.labels), -s.values, s.present) for s in value])

    def _aggregate(self, node: Any) -> list[Series]:
        op = str(node.op)
        if op not in SUPPORTED_AGGREGATIONS:
            raise QueryError(f"aggregation {op}() is not supported by the embedded PromQL engine")
        vector = as_vector(self._eval(node.expr), f"{op}()'s argument")
        param = None
        if node.param is not None:
            param = as_scalar(self._eval(node.param), f"{op}()'s parameter")
        return aggregate(op, vector, param, node.modifier, self._n)
