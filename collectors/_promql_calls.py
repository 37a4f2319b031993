"""PromQL function calls (rate(), histogram_quantile(), absent(), ...): which ones, and how.

The numeric kernels live in `_promql_functions`; this module picks the kernel for a call,
evaluates its arguments and gives the call's labels.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import promql_parser as pp

from . import _promql_functions as fn
from ._exceptions import QueryError
from ._promql_selectors import SelectorReader, matrix_arg
from ._promql_values import (
    BoolArray,
    FloatArray,
    Labels,
    Scalar,
    Series,
    Value,
    as_scalar,
    as_vector,
    drop_name,
    merge,
)
from ._store_matchers import METRIC_NAME, from_vector_selector

_SIMPLE_FUNCTIONS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": lambda v: np.where(v < 0, -1.0, np.where(v > 0, 1.0, v)),
}
_RATE_FUNCTIONS = {
    "rate": (True, True),
    "increase": (True, False),
    "delta": (False, False),
}
_OVER_TIME = (
    "avg_over_time",
    "count_over_time",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
)
SUPPORTED_FUNCTIONS = frozenset(
    [
        *_SIMPLE_FUNCTIONS,
        *_RATE_FUNCTIONS,
        *_OVER_TIME,
        "irate",
        "idelta",
        "changes",
        "resets",
        "quantile_over_time",
        "histogram_quantile",
        "clamp",
        "clamp_min",
        "clamp_max",
        "round",
        "vector",
        "scalar",
        "time",
        "pi",
        "absent",
        "absent_over_time",
    ]
)


class FunctionCalls:
    """Evaluates the function calls of one query; `evaluate` evaluates their arguments."""

    def __init__(self, evaluate: Callable[[Any], Value], selectors: SelectorReader) -> None:
        self._evaluate = evaluate
        self._selectors = selectors
        self._steps = selectors.steps
        self._n = selectors.n

    def call(self, node: Any) -> Value:
        name = node.func.name
        args = node.args
        if name not in SUPPORTED_FUNCTIONS:
            raise QueryError(f"function {name}() is not supported by the embedded PromQL engine")
        if name in _RATE_FUNCTIONS:
            is_counter, is_rate = _RATE_FUNCTIONS[name]
            return self._selectors.range_function(
                name,
                matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r, raw_from: fn.extrapolated_rate(
                    ts, v, lo, hi, at, r, is_counter=is_counter, is_rate=is_rate,
                    raw_from_ms=raw_from,
                ),
                resolution_aware=True,
            )
        if name in ("irate", "idelta"):
            return self._selectors.range_function(
                name,
                matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.instant_value(
                    ts, v, lo, hi, is_rate=name == "irate"
                ),
            )
        if name in _OVER_TIME:
            return self._selectors.range_function(
                name,
                matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.over_time(name, v, lo, hi),
                keep_name=name == "last_over_time",
            )
        if name in ("changes", "resets"):
            return self._selectors.range_function(
                name,
                matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.changes_or_resets(name, v, lo, hi),
            )
        if name == "quantile_over_time":
            q = as_scalar(self._evaluate(args[0]), "quantile_over_time()'s quantile")
            return self._selectors.range_function(
                name,
                matrix_arg(args[1], name),
                lambda ts, v, lo, hi, at, r: fn.quantile_over_time(q, v, lo, hi),
            )
        if name == "absent_over_time":
            matrix = matrix_arg(args[0], name)
            any_present = np.zeros(self._n, dtype=np.bool_)
            for _raw, _ts, _v, lo, hi, _t, _r in self._selectors.windows(matrix):
                any_present |= hi > lo
            return self._absent(any_present, matrix.vector_selector)
        if name in _SIMPLE_FUNCTIONS:
            vector = as_vector(self._evaluate(args[0]), f"{name}()'s argument")
            function = _SIMPLE_FUNCTIONS[name]
            return merge(
                [Series(drop_name(s.labels), function(s.values), s.present) for s in vector]
            )
        if name in ("clamp", "clamp_min", "clamp_max", "round"):
            return self._clamp_or_round(name, args)
        if name == "histogram_quantile":
            q = as_scalar(self._evaluate(args[0]), "histogram_quantile()'s quantile")
            vector = as_vector(self._evaluate(args[1]), "histogram_quantile()'s argument")
            return self._histogram_quantile(q, vector)
        if name == "vector":
            value = as_scalar(self._evaluate(args[0]), "vector()'s argument")
            return [Series((), value.copy(), np.ones(self._n, dtype=np.bool_))]
        if name == "scalar":
            vector = as_vector(self._evaluate(args[0]), "scalar()'s argument")
            counts = np.zeros(self._n, dtype=np.int64)
            total = np.zeros(self._n)
            for s in vector:
                counts += s.present
                total = np.where(s.present, s.values, total)
            return Scalar(np.where(counts == 1, total, np.nan))
        if name == "time":
            return Scalar(self._steps / 1000)
        if name == "pi":
            return Scalar(np.full(self._n, math.pi))
        if name == "absent":
            vector = as_vector(self._evaluate(args[0]), "absent()'s argument")
            any_present = np.zeros(self._n, dtype=np.bool_)
            for s in vector:
                any_present |= s.present
            inner = args[0]
            while isinstance(inner, pp.ParenExpr):
                inner = inner.expr
            return self._absent(any_present, inner)
        raise QueryError(f"function {name}() is not supported by the embedded PromQL engine")

    def _absent(self, any_present: BoolArray, arg: Any) -> list[Series]:
        absent = ~any_present
        if not absent.any():
            return []
        labels: dict[str, str] = {}
        if isinstance(arg, pp.VectorSelector):
            seen: set[str] = set()
            for group in from_vector_selector(arg).alternatives[:1]:
                for matcher in group:
                    if matcher.name == METRIC_NAME:
                        continue
                    if matcher.op == "=" and matcher.name not in seen:
                        labels[matcher.name] = matcher.value
                    else:
                        labels.pop(matcher.name, None)
                    seen.add(matcher.name)
        return [Series(tuple(sorted(labels.items())), np.where(absent, 1.0, np.nan), absent)]

    def _clamp_or_round(self, name: str, args: Sequence[Any]) -> list[Series]:
        vector = as_vector(self._evaluate(args[0]), f"{name}()'s argument")
        scalars = [as_scalar(self._evaluate(a), f"{name}()'s bounds") for a in args[1:]]
        if name == "round":
            nearest = scalars[0] if scalars else np.ones(self._n)
            inverse = 1.0 / nearest
            out = [
                Series(drop_name(s.labels), np.floor(s.values * inverse + 0.5) / inverse, s.present)
                for s in vector
            ]
            return merge(out)
        if name == "clamp":
            low, high = scalars
        elif name == "clamp_min":
            low, high = scalars[0], np.full(self._n, math.inf)
        else:
            low, high = np.full(self._n, -math.inf), scalars[0]
        valid = ~(high < low)  # clamp() with max < min gives nothing
        out = [
            Series(
                drop_name(s.labels),
                np.maximum(low, np.minimum(high, s.values)),
                s.present & valid,
            )
            for s in vector
        ]
        return merge([s for s in out if s.present.any()])

    def _histogram_quantile(self, q: FloatArray, vector: list[Series]) -> list[Series]:
        groups: dict[Labels, list[tuple[float, Series]]] = defaultdict(list)
        for s in vector:
            le = next((v for k, v in s.labels if k == "le"), None)
            if le is None:
                continue
            try:
                bound = float(le)
            except ValueError:
                continue
            groups[tuple(item for item in s.labels if item[0] != "le")].append((bound, s))
        out = []
        for key, members in groups.items():
            values = np.full(self._n, np.nan)
            present = np.zeros(self._n, dtype=np.bool_)
            for member in members:
                present |= member[1].present
            for i in np.nonzero(present)[0]:
                buckets = [(b, float(s.values[i])) for b, s in members if s.present[i]]
                values[i] = fn.bucket_quantile(float(q[i]), buckets)
            out.append(Series(drop_name(key), values, present))
        return merge(out)
