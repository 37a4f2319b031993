"""A PromQL evaluator over loaded samples, every evaluation step at once.

An instant query is a range query of one step. Each AST node evaluates to a `Scalar` (one
value per step), a list of `Series` (one value per step and whether the series has a
sample at that step: an instant vector over all the steps), or a `String`. Selectors read
the samples they need once for the whole range, through a `Loader`.

Semantics are Prometheus 3's: an instant selector takes the newest sample in
(t - lookback, t], none if that sample is a staleness marker; a range selector `[r]` takes
the samples in (t - r, t] without staleness markers; timestamps are integer milliseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import promql_parser as pp

from . import _promql_functions as fn
from ._exceptions import QueryError
from ._store_matchers import METRIC_NAME, SeriesMatcher, from_vector_selector

FloatArray = fn.FloatArray
IntArray = fn.IntArray
BoolArray = fn.BoolArray
Labels = tuple[tuple[str, str], ...]
"""A label set, sorted by label name; `__name__` is one of the labels."""


@dataclass(slots=True)
class RawSeries:
    """One stored series as the engine reads it: all samples, oldest first."""

    labels: Labels
    timestamps_ms: IntArray
    values: FloatArray
    stale: BoolArray
    _fresh: tuple[IntArray, FloatArray] | None = field(default=None, repr=False)

    def without_stale(self) -> tuple[IntArray, FloatArray]:
        """The samples a range selector sees: staleness markers left out."""
        if self._fresh is None:
            if self.stale.any():
                keep = ~self.stale
                self._fresh = (self.timestamps_ms[keep], self.values[keep])
            else:
                self._fresh = (self.timestamps_ms, self.values)
        return self._fresh


class Loader(Protocol):
    def __call__(self, matcher: SeriesMatcher, start_ms: int, end_ms: int) -> list[RawSeries]:
        """Every series `matcher` selects, with its samples in [start_ms, end_ms]."""
        ...


@dataclass(slots=True)
class Series:
    labels: Labels
    values: FloatArray
    present: BoolArray


@dataclass(slots=True)
class Scalar:
    values: FloatArray


@dataclass(slots=True)
class String:
    value: str


Value = Scalar | list[Series] | String

ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,  # Go's math.Mod: the sign of the dividend
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
SET_OPERATORS = ("and", "or", "unless")

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
SUPPORTED_AGGREGATIONS = frozenset(
    ["sum", "avg", "max", "min", "count", "group", "stddev", "stdvar", "topk", "bottomk",
     "quantile"]
)


@lru_cache(maxsize=512)
def parse(expr: str) -> Any:
    """The parsed expression (cached: the control plane asks the same ones every second)."""
    try:
        return pp.parse(expr)
    except ValueError as error:
        raise QueryError(f"invalid PromQL {expr!r}: {error}") from None
    except Exception as error:  # the parser may raise its own kinds
        raise QueryError(f"invalid PromQL {expr!r}: {error}") from None


def to_ms(duration: timedelta | None) -> int:
    if duration is None:
        return 0
    return round(duration / timedelta(milliseconds=1))


def drop_name(labels: Labels) -> Labels:
    return tuple(item for item in labels if item[0] != METRIC_NAME)


class Evaluator:
    """Evaluates one parsed expression over the steps `steps_ms` (sorted, integer ms)."""

    def __init__(
        self,
        loader: Loader,
        steps_ms: IntArray,
        *,
        lookback_ms: int,
    ) -> None:
        self._loader = loader
        self._steps = steps_ms
        self._n = len(steps_ms)
        self._start = int(steps_ms[0])
        self._end = int(steps_ms[-1])
        self._lookback = lookback_ms
        self._needed: dict[SeriesMatcher, tuple[int, int]] = {}
        self._loaded: dict[SeriesMatcher, list[RawSeries]] = {}

    # -- entry point ------------------------------------------------------------------

    def evaluate(self, node: Any) -> Value:
        self._plan(node)
        with np.errstate(all="ignore"):
            return self._eval(node)

    # -- planning: what each selector needs, so that it is loaded once -----------------

    def _selector_times(self, selector: Any) -> tuple[int, int]:
        """The earliest and latest times the selector is evaluated at (offset and @)."""
        offset = to_ms(selector.offset)
        at = self._at_ms(selector.at)
        if at is not None:
            return at - offset, at - offset
        return self._start - offset, self._end - offset

    def _at_ms(self, at: Any) -> int | None:
        if at is None:
            return None
        if at.type == pp.AtModifierType.Start:
            return self._start
        if at.type == pp.AtModifierType.End:
            return self._end
        seconds: float = at.at.timestamp()
        return round(seconds * 1000)

    def _need(self, selector: Any, window_ms: int) -> None:
        matcher = from_vector_selector(selector)
        first, last = self._selector_times(selector)
        lo, hi = first - window_ms, last
        if matcher in self._needed:
            old_lo, old_hi = self._needed[matcher]
            lo, hi = min(lo, old_lo), max(hi, old_hi)
        self._needed[matcher] = (lo, hi)

    def _plan(self, node: Any) -> None:
        if isinstance(node, pp.VectorSelector):
            self._need(node, self._lookback)
        elif isinstance(node, pp.MatrixSelector):
            self._need(node.vector_selector, to_ms(node.range))
        elif isinstance(node, pp.SubqueryExpr):
            raise QueryError(f"subqueries are not supported by the embedded engine: {node}")
        elif isinstance(node, pp.Call):
            for arg in node.args:
                self._plan(arg)
        elif isinstance(node, pp.AggregateExpr):
            self._plan(node.expr)
            if node.param is not None:
                self._plan(node.param)
        elif isinstance(node, pp.BinaryExpr):
            self._plan(node.lhs)
            self._plan(node.rhs)
        elif isinstance(node, pp.ParenExpr | pp.UnaryExpr):
            self._plan(node.expr)

    def _raw(self, selector: Any) -> list[RawSeries]:
        matcher = from_vector_selector(selector)
        if matcher not in self._loaded:
            lo, hi = self._needed[matcher]
            self._loaded[matcher] = self._loader(matcher, lo, hi)
        return self._loaded[matcher]

    def _eval_times(self, selector: Any) -> IntArray:
        offset = to_ms(selector.offset)
        at = self._at_ms(selector.at)
        if at is not None:
            return np.full(self._n, at - offset, dtype=np.int64)
        return self._steps - offset

    # -- evaluation ---------------------------------------------------------------------

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
            return self._instant_selector(node)
        if isinstance(node, pp.MatrixSelector):
            raise QueryError(
                f"{node} is a range vector: a query must give an instant vector or a scalar "
                "(apply a function such as rate() to it)"
            )
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        raise QueryError(f"unsupported PromQL construct {type(node).__name__}: {node}")

    def _vector(self, value: Value, what: str) -> list[Series]:
        if not isinstance(value, list):
            raise QueryError(f"{what} must be an instant vector")
        return value

    def _scalar(self, value: Value, what: str) -> FloatArray:
        if not isinstance(value, Scalar):
            raise QueryError(f"{what} must be a scalar")
        return value.values

    def _negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, String):
            raise QueryError("unary minus needs a number or an instant vector")
        return merge([Series(drop_name(s.labels), -s.values, s.present) for s in value])

    def _instant_selector(self, node: Any) -> list[Series]:
        times = self._eval_times(node)
        out = []
        for raw in self._raw(node):
            ts = raw.timestamps_ms
            idx = np.searchsorted(ts, times, side="right") - 1
            safe = np.maximum(idx, 0)
            present = (idx >= 0) & (ts[safe] > times - self._lookback) & ~raw.stale[safe]
            if present.any():
                out.append(Series(raw.labels, np.where(present, raw.values[safe], np.nan), present))
        return out

    # -- functions ----------------------------------------------------------------------

    def _matrix_arg(self, node: Any, name: str) -> Any:
        while isinstance(node, pp.ParenExpr):
            node = node.expr
        if isinstance(node, pp.SubqueryExpr):
            raise QueryError(f"subqueries are not supported by the embedded engine: {node}")
        if not isinstance(node, pp.MatrixSelector):
            raise QueryError(f"{name}() needs a range vector selector such as x[5m]")
        return node

    def _windows(
        self, matrix: Any
    ) -> Iterable[tuple[RawSeries, IntArray, FloatArray, IntArray, IntArray, IntArray, int]]:
        selector = matrix.vector_selector
        range_ms = to_ms(matrix.range)
        times = self._eval_times(selector)
        for raw in self._raw(selector):
            ts, values = raw.without_stale()
            if len(ts) == 0:
                continue
            lo = np.searchsorted(ts, times - range_ms, side="right")
            hi = np.searchsorted(ts, times, side="right")
            yield raw, ts, values, lo, hi, times, range_ms

    def _range_function(
        self,
        name: str,
        matrix: Any,
        kernel: Callable[..., tuple[FloatArray, BoolArray]],
        *,
        keep_name: bool = False,
    ) -> list[Series]:
        out = []
        for raw, ts, values, lo, hi, times, range_ms in self._windows(matrix):
            result, present = kernel(ts, values, lo, hi, times, range_ms)
            if present.any():
                labels = raw.labels if keep_name else drop_name(raw.labels)
                out.append(Series(labels, result, present))
        return merge(out)

    def _call(self, node: Any) -> Value:
        name = node.func.name
        args = node.args
        if name not in SUPPORTED_FUNCTIONS:
            raise QueryError(f"function {name}() is not supported by the embedded PromQL engine")
        if name in _RATE_FUNCTIONS:
            is_counter, is_rate = _RATE_FUNCTIONS[name]
            return self._range_function(
                name,
                self._matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.extrapolated_rate(
                    ts, v, lo, hi, at, r, is_counter=is_counter, is_rate=is_rate
                ),
            )
        if name in ("irate", "idelta"):
            return self._range_function(
                name,
                self._matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.instant_value(
                    ts, v, lo, hi, is_rate=name == "irate"
                ),
            )
        if name in _OVER_TIME:
            return self._range_function(
                name,
                self._matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.over_time(name, v, lo, hi),
                keep_name=name == "last_over_time",
            )
        if name in ("changes", "resets"):
            return self._range_function(
                name,
                self._matrix_arg(args[0], name),
                lambda ts, v, lo, hi, at, r: fn.changes_or_resets(name, v, lo, hi),
            )
        if name == "quantile_over_time":
            q = self._scalar(self._eval(args[0]), "quantile_over_time()'s quantile")
            return self._range_function(
                name,
                self._matrix_arg(args[1], name),
                lambda ts, v, lo, hi, at, r: fn.quantile_over_time(q, v, lo, hi),
            )
        if name == "absent_over_time":
            matrix = self._matrix_arg(args[0], name)
            any_present = np.zeros(self._n, dtype=np.bool_)
            for _raw, _ts, _v, lo, hi, _t, _r in self._windows(matrix):
                any_present |= hi > lo
            return self._absent(any_present, matrix.vector_selector)
        if name in _SIMPLE_FUNCTIONS:
            vector = self._vector(self._eval(args[0]), f"{name}()'s argument")
            function = _SIMPLE_FUNCTIONS[name]
            return merge(
                [Series(drop_name(s.labels), function(s.values), s.present) for s in vector]
            )
        if name in ("clamp", "clamp_min", "clamp_max", "round"):
            return self._clamp_or_round(name, args)
        if name == "histogram_quantile":
            q = self._scalar(self._eval(args[0]), "histogram_quantile()'s quantile")
            vector = self._vector(self._eval(args[1]), "histogram_quantile()'s argument")
            return self._histogram_quantile(q, vector)
        if name == "vector":
            value = self._scalar(self._eval(args[0]), "vector()'s argument")
            return [Series((), value.copy(), np.ones(self._n, dtype=np.bool_))]
        if name == "scalar":
            vector = self._vector(self._eval(args[0]), "scalar()'s argument")
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
            vector = self._vector(self._eval(args[0]), "absent()'s argument")
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
        vector = self._vector(self._eval(args[0]), f"{name}()'s argument")
        scalars = [self._scalar(self._eval(a), f"{name}()'s bounds") for a in args[1:]]
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

    # -- aggregation --------------------------------------------------------------------

    def _aggregate(self, node: Any) -> list[Series]:
        op = str(node.op)
        if op not in SUPPORTED_AGGREGATIONS:
            raise QueryError(f"aggregation {op}() is not supported by the embedded PromQL engine")
        vector = self._vector(self._eval(node.expr), f"{op}()'s argument")
        param = None
        if node.param is not None:
            param = self._scalar(self._eval(node.param), f"{op}()'s parameter")
        modifier = node.modifier
        grouping: Callable[[Labels], Labels]
        if modifier is None:
            grouping = lambda labels: ()  # noqa: E731
        elif modifier.type == pp.AggModifierType.By:
            keep = frozenset(modifier.labels)
            grouping = lambda labels: tuple(i for i in labels if i[0] in keep)  # noqa: E731
        else:
            drop = frozenset([*modifier.labels, METRIC_NAME])
            grouping = lambda labels: tuple(i for i in labels if i[0] not in drop)  # noqa: E731
        groups: dict[Labels, list[Series]] = defaultdict(list)
        for s in vector:
            groups[grouping(s.labels)].append(s)
        if op in ("topk", "bottomk"):
            assert param is not None
            return self._top_or_bottom(op, param, groups.values())
        out = []
        for key, members in groups.items():
            values = np.stack([s.values for s in members])
            present = np.stack([s.present for s in members])
            count = present.sum(axis=0)
            any_present = count > 0
            if op in ("sum", "avg"):
                total = np.where(present, values, 0.0).sum(axis=0)
                result = total if op == "sum" else total / count
            elif op == "count":
                result = count.astype(np.float64)
            elif op == "group":
                result = np.ones(self._n)
            elif op == "max":
                result = np.fmax.reduce(np.where(present, values, np.nan), axis=0)
            elif op == "min":
                result = np.fmin.reduce(np.where(present, values, np.nan), axis=0)
            elif op in ("stddev", "stdvar"):
                mean = np.where(present, values, 0.0).sum(axis=0) / count
                squares = np.where(present, (values - mean) ** 2, 0.0).sum(axis=0) / count
                result = squares if op == "stdvar" else np.sqrt(squares)
            else:  # quantile
                assert param is not None
                result = np.full(self._n, np.nan)
                for i in np.nonzero(any_present)[0]:
                    result[i] = fn.quantile(float(param[i]), values[present[:, i], i].tolist())
            out.append(Series(key, np.where(any_present, result, np.nan), any_present))
        return out

    def _top_or_bottom(
        self, op: str, param: FloatArray, groups: Iterable[list[Series]]
    ) -> list[Series]:
        out = []
        for members in groups:
            chosen = np.zeros((len(members), self._n), dtype=np.bool_)
            for i in range(self._n):
                k = param[i]
                if not math.isfinite(k) or int(k) < 1:
                    continue
                ranked = sorted(
                    (
                        (math.isnan(value), -value if op == "topk" else value, j)
                        for j, s in enumerate(members)
                        if s.present[i]
                        for value in (float(s.values[i]),)
                    ),
                )
                for _nan, _key, j in ranked[: int(k)]:
                    chosen[j, i] = True
            for j, s in enumerate(members):
                if chosen[j].any():
                    out.append(Series(s.labels, s.values, chosen[j]))
        return out

    # -- binary operators ---------------------------------------------------------------

    def _binary(self, node: Any) -> Value:
        op = str(node.op)
        lhs, rhs = self._eval(node.lhs), self._eval(node.rhs)
        modifier = node.modifier
        return_bool = bool(modifier is not None and modifier.return_bool)
        if modifier is not None and modifier.fill_values is not None and (
            modifier.fill_values.lhs is not None or modifier.fill_values.rhs is not None
        ):
            raise QueryError("fill modifiers are not supported by the embedded PromQL engine")
        if isinstance(lhs, String) or isinstance(rhs, String):
            raise QueryError(f"operator {op} needs numbers or instant vectors, not strings")
        if op not in ARITHMETIC and op not in COMPARISON and op not in SET_OPERATORS:
            raise QueryError(f"operator {op} is not supported by the embedded PromQL engine")
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            if op in ARITHMETIC:
                return Scalar(ARITHMETIC[op](lhs.values, rhs.values))
            if op in COMPARISON:
                return Scalar(COMPARISON[op](lhs.values, rhs.values).astype(np.float64))
            raise QueryError(f"set operator {op} needs instant vectors on both sides")
        if isinstance(lhs, list) and isinstance(rhs, Scalar):
            return self._vector_scalar(op, lhs, rhs.values, swap=False, return_bool=return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, list):
            return self._vector_scalar(op, rhs, lhs.values, swap=True, return_bool=return_bool)
        assert isinstance(lhs, list) and isinstance(rhs, list)
        on, names = False, ()
        card = "one-to-one" if op not in SET_OPERATORS else "many-to-many"
        include: tuple[str, ...] = ()
        if modifier is not None:
            if modifier.matching is not None:
                on = modifier.matching.type == pp.LabelModifierType.Include
                names = tuple(modifier.matching.labels)
            if modifier.card == pp.VectorMatchCardinality.ManyToOne:
                card = "many-to-one"
            elif modifier.card == pp.VectorMatchCardinality.OneToMany:
                card = "one-to-many"
            include = tuple(modifier.group_labels or ())
        signature = _signature_function(on, names)
        if op in SET_OPERATORS:
            return self._set_operator(op, lhs, rhs, signature)
        return self._vector_vector(
            op, lhs, rhs, signature, card=card, on=on, names=names, include=include,
            return_bool=return_bool,
        )

    def _vector_scalar(
        self, op: str, vector: list[Series], scalar: FloatArray, *, swap: bool, return_bool: bool
    ) -> list[Series]:
        if op in SET_OPERATORS:
            raise QueryError(f"set operator {op} needs instant vectors on both sides")
        out = []
        for s in vector:
            left, right = (scalar, s.values) if swap else (s.values, scalar)
            labels = s.labels
            if op in ARITHMETIC:
                values = ARITHMETIC[op](left, right)
                present = s.present
                labels = drop_name(labels)
            else:
                keep = COMPARISON[op](left, right)
                if return_bool:
                    values = keep.astype(np.float64)
                    present = s.present
                    labels = drop_name(labels)
                else:
                    values = s.values  # a filter keeps the vector's own value
                    present = s.present & keep
            if present.any():
                out.append(Series(labels, values, present))
        return merge(out)

    def _set_operator(
        self,
        op: str,
        lhs: list[Series],
        rhs: list[Series],
        signature: Callable[[Labels], Labels],
    ) -> list[Series]:
        def presence_by_signature(side: list[Series]) -> dict[Labels, BoolArray]:
            found: dict[Labels, BoolArray] = {}
            for s in side:
                sig = signature(s.labels)
                found[sig] = found[sig] | s.present if sig in found else s.present.copy()
            return found

        none = np.zeros(self._n, dtype=np.bool_)
        if op == "and":
            right = presence_by_signature(rhs)
            out = [
                Series(s.labels, s.values, s.present & right.get(signature(s.labels), none))
                for s in lhs
            ]
        elif op == "unless":
            right = presence_by_signature(rhs)
            out = [
                Series(s.labels, s.values, s.present & ~right.get(signature(s.labels), none))
                for s in lhs
            ]
        else:  # or
            left = presence_by_signature(lhs)
            out = list(lhs) + [
                Series(s.labels, s.values, s.present & ~left.get(signature(s.labels), none))
                for s in rhs
            ]
        return merge([s for s in out if s.present.any()])

    def _vector_vector(
        self,
        op: str,
        lhs: list[Series],
        rhs: list[Series],
        signature: Callable[[Labels], Labels],
        *,
        card: str,
        on: bool,
        names: tuple[str, ...],
        include: tuple[str, ...],
        return_bool: bool,
    ) -> list[Series]:
        swapped = card == "one-to-many"
        many, one = (rhs, lhs) if swapped else (lhs, rhs)
        many_any = np.zeros(self._n, dtype=np.bool_)
        for s in many:
            many_any |= s.present
        one_any = np.zeros(self._n, dtype=np.bool_)
        for s in one:
            one_any |= s.present
        active = many_any & one_any  # Prometheus skips steps where either side is empty
        one_by_sig: dict[Labels, list[Series]] = defaultdict(list)
        for s in one:
            one_by_sig[signature(s.labels)].append(s)
        side = "left" if swapped else "right"
        for sig, members in one_by_sig.items():
            if len(members) > 1:
                counts = np.sum([m.present for m in members], axis=0)
                if ((counts > 1) & active).any():
                    raise QueryError(
                        f"found duplicate series for the match group {labels_text(sig)} on the "
                        f"{side} hand-side of the operation: many-to-many matching not allowed: "
                        "matching labels must be unique on one side"
                    )
        matched_per_sig: dict[Labels, IntArray] = {}
        out = []
        for s in many:
            sig = signature(s.labels)
            for other in one_by_sig.get(sig, ()):
                present = s.present & other.present
                if not present.any():
                    continue
                left, right = (other.values, s.values) if swapped else (s.values, other.values)
                labels = _result_labels(s.labels, other.labels, op, card, on, names, include)
                if op in ARITHMETIC:
                    values = ARITHMETIC[op](left, right)
                else:
                    keep = COMPARISON[op](left, right)
                    if return_bool:
                        values = keep.astype(np.float64)
                    else:
                        values = left
                        present = present & keep
                if return_bool:
                    labels = drop_name(labels)
                if not present.any():
                    continue
                if card == "one-to-one":
                    seen = matched_per_sig.setdefault(sig, np.zeros(self._n, dtype=np.int64))
                    seen += present
                    if (seen > 1).any():
                        raise QueryError(
                            "multiple matches for labels: many-to-one matching must be explicit "
                            f"(group_left/group_right): {labels_text(sig)}"
                        )
                out.append(Series(labels, values, present))
        return merge(out, duplicate="multiple matches for labels: grouping labels must ensure "
                                    "unique matches")


def _signature_function(on: bool, names: Sequence[str]) -> Callable[[Labels], Labels]:
    if on:
        keep = frozenset(names)
        return lambda labels: tuple(i for i in labels if i[0] in keep)
    drop = frozenset([*names, METRIC_NAME])
    return lambda labels: tuple(i for i in labels if i[0] not in drop)


def _result_labels(
    many: Labels,
    one: Labels,
    op: str,
    card: str,
    on: bool,
    names: tuple[str, ...],
    include: tuple[str, ...],
) -> Labels:
    labels = dict(many)
    if op in ARITHMETIC:
        labels.pop(METRIC_NAME, None)
    if card == "one-to-one":
        if on:
            labels = {k: v for k, v in labels.items() if k in names}
        else:
            for name in names:
                labels.pop(name, None)
    if include:
        one_labels = dict(one)
        for name in include:
            value = one_labels.get(name, "")
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
    return tuple(sorted(labels.items()))


def labels_text(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def merge(series: list[Series], *, duplicate: str | None = None) -> list[Series]:
    """Series with the same labels combined; an error where two have a value at one step.

    Prometheus refuses a vector with two elements of one label set (after a function or an
    operator dropped the metric name, say); over a range the two may take turns.
    """
    by_labels: dict[Labels, Series] = {}
    for s in series:
        existing = by_labels.get(s.labels)
        if existing is None:
            by_labels[s.labels] = s
            continue
        if (existing.present & s.present).any():
            raise QueryError(
                (duplicate or "vector cannot contain metrics with the same labelset")
                + f": {labels_text(s.labels)}"
            )
        by_labels[s.labels] = Series(
            s.labels,
            np.where(existing.present, existing.values, s.values),
            existing.present | s.present,
        )
    return list(by_labels.values())
