"""PromQL selectors: what each one needs loaded (once per query), and its values per step.

An instant selector takes the newest sample in (t - lookback, t], none if that sample is a
staleness marker; a range selector `[r]` takes the samples in (t - r, t] without staleness
markers. `offset` and `@` move the times a selector is evaluated at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import promql_parser as pp

from ._exceptions import QueryError
from ._promql_values import (
    BoolArray,
    FloatArray,
    IntArray,
    Loader,
    RawSeries,
    Series,
    drop_name,
    merge,
    to_ms,
)
from ._store_matchers import SeriesMatcher, from_vector_selector

Window = tuple[RawSeries, IntArray, FloatArray, IntArray, IntArray, IntArray, int]
"""One series of a range selector: its samples, each step's window [lo, hi), times, range."""


class SelectorReader:
    """Loads and reads the selectors of one query over the steps `steps_ms` (sorted, ms)."""

    def __init__(self, loader: Loader, steps_ms: IntArray, *, lookback_ms: int) -> None:
        self._loader = loader
        self.steps = steps_ms
        self.n = len(steps_ms)
        self._start = int(steps_ms[0])
        self._end = int(steps_ms[-1])
        self._lookback = lookback_ms
        self._needed: dict[SeriesMatcher, tuple[int, int]] = {}
        self._uses: dict[SeriesMatcher, list[tuple[bool, int, int]]] = {}
        """Per matcher: (evaluated at every step, first evaluation time, window) per use."""
        self._loaded: dict[SeriesMatcher, list[RawSeries]] = {}

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

    def _need(self, selector: Any, window_ms: int, *, is_range: bool = False) -> None:
        matcher = from_vector_selector(selector)
        first, last = self._selector_times(selector)
        self._uses.setdefault(matcher, []).append(
            (is_range and selector.at is None, first, window_ms)
        )
        lo, hi = first - window_ms, last
        if matcher in self._needed:
            old_lo, old_hi = self._needed[matcher]
            lo, hi = min(lo, old_lo), max(hi, old_hi)
        self._needed[matcher] = (lo, hi)

    def plan(self, node: Any) -> None:
        if isinstance(node, pp.VectorSelector):
            self._need(node, self._lookback)
        elif isinstance(node, pp.MatrixSelector):
            self._need(node.vector_selector, to_ms(node.range), is_range=True)
        elif isinstance(node, pp.SubqueryExpr):
            raise QueryError(f"subqueries are not supported by the embedded engine: {node}")
        elif isinstance(node, pp.Call):
            for arg in node.args:
                self.plan(arg)
        elif isinstance(node, pp.AggregateExpr):
            self.plan(node.expr)
            if node.param is not None:
                self.plan(node.param)
        elif isinstance(node, pp.BinaryExpr):
            self.plan(node.lhs)
            self.plan(node.rhs)
        elif isinstance(node, pp.ParenExpr | pp.UnaryExpr):
            self.plan(node.expr)

    def _raw(self, selector: Any) -> list[RawSeries]:
        matcher = from_vector_selector(selector)
        if matcher not in self._loaded:
            lo, hi = self._needed[matcher]
            self._loaded[matcher] = self._loader(matcher, lo, hi, self._windows(matcher))
        return self._loaded[matcher]

    def _windows(self, matcher: SeriesMatcher) -> tuple[float, float, float, int] | None:
        """The windows a range query reads of a selector used once, by one range function,
        when they cover at most half of the time between them (else: None, read it all)."""
        uses = self._uses.get(matcher, [])
        if len(uses) != 1 or self.n < 3:
            return None
        every_step, first, window_ms = uses[0]
        step = int(self.steps[1] - self.steps[0])
        if not every_step or np.any(np.diff(self.steps) != step) or 2 * (window_ms + 2) > step:
            return None
        # A millisecond of margin each side: stored times are floats, steps integer ms.
        low = (first - window_ms - 1) / 1000
        return (low, (first + 1) / 1000, step / 1000, self.n)

    def _eval_times(self, selector: Any) -> IntArray:
        offset = to_ms(selector.offset)
        at = self._at_ms(selector.at)
        if at is not None:
            return np.full(self.n, at - offset, dtype=np.int64)
        return self.steps - offset

    # -- reading ------------------------------------------------------------------------

    def instant(self, node: Any) -> list[Series]:
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

    def windows(self, matrix: Any) -> Iterable[Window]:
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

    def range_function(
        self,
        name: str,
        matrix: Any,
        kernel: Callable[..., tuple[FloatArray, BoolArray]],
        *,
        keep_name: bool = False,
        resolution_aware: bool = False,
    ) -> list[Series]:
        """`kernel` over every series' windows; `resolution_aware` kernels also get the
        time before which the series' samples are roll-ups (`RawSeries.raw_from_ms`)."""
        out = []
        for raw, ts, values, lo, hi, times, range_ms in self.windows(matrix):
            if resolution_aware:
                result, present = kernel(ts, values, lo, hi, times, range_ms, raw.raw_from_ms)
            else:
                result, present = kernel(ts, values, lo, hi, times, range_ms)
            if present.any():
                labels = raw.labels if keep_name else drop_name(raw.labels)
                out.append(Series(labels, result, present))
        return merge(out)


def matrix_arg(node: Any, name: str) -> Any:
    """The range vector selector a function's argument must be (parentheses allowed)."""
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    if isinstance(node, pp.SubqueryExpr):
        raise QueryError(f"subqueries are not supported by the embedded engine: {node}")
    if not isinstance(node, pp.MatrixSelector):
        raise QueryError(f"{name}() needs a range vector selector such as x[5m]")
    return node
