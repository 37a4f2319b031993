"""`StoreSource`: PromQL over the embedded `SampleStore`, with Prometheus's semantics."""

from __future__ import annotations

import math

import numpy as np

from ._exceptions import QueryError
from ._exemplars import ExemplarSeries, query_store_exemplars
from ._promql_engine import Evaluator, Labels, RawSeries, Scalar, Series, String, parse
from ._source import InstantSample, RangeSeries
from ._store import SampleStore
from ._store_cache import SampleCache
from ._store_matchers import METRIC_NAME, SeriesMatcher

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus refuses range queries of more points per series; so does this source."""


class StoreSource:
    """A `MetricSource` over a `SampleStore`: expressions parsed by promql-parser.

    `lookback_s` is Prometheus's lookback delta: an instant selector takes the newest
    sample at most that old. Samples read are kept in memory (at most `cache_samples`;
    0 turns the cache off) and refreshed from the store's write log, so a query asked
    again reads only what was written since; see `collectors._store_cache`. Results are
    sorted by their label sets; an instant query's samples carry the evaluation time as
    their timestamp, as Prometheus's do.

    Supported: selectors with `=`, `!=`, `=~`, `!~` (on `__name__` too), `offset`, `@`;
    range functions rate, increase, delta, irate, idelta, changes, resets and
    <avg|count|last|max|min|present|stddev|stdvar|sum|quantile>_over_time,
    absent_over_time; histogram_quantile (classic buckets), abs, ceil, floor, exp, sqrt, ln,
    log2, log10, sgn, round, clamp, clamp_min, clamp_max, absent, vector, scalar, time, pi;
    aggregations sum, avg, max, min, count, group, stddev, stdvar, topk, bottomk, quantile
    with `by` / `without`; arithmetic, comparison (filter or `bool`) and set operators with
    `on` / `ignoring` / `group_left` / `group_right`; unary minus; parentheses.
    Anything else (subqueries, count_values, label_replace, native histograms, ...) raises
    `QueryError` naming it.
    """

    def __init__(
        self,
        store: SampleStore,
        *,
        lookback_s: float = 300.0,
        cache_samples: int = 10_000_000,
    ) -> None:
        if not (math.isfinite(lookback_s) and lookback_s > 0):
            raise ValueError(f"lookback_s must be a positive number of seconds, got {lookback_s!r}")
        self._store = store
        self._lookback_ms = round(lookback_s * 1000)
        self._cache = SampleCache(store, max_samples=cache_samples) if cache_samples > 0 else None

    @property
    def store(self) -> SampleStore:
        return self._store

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        """`expr` as an instant query at `at_s`: a scalar is one sample with no labels."""
        _check_time("at_s", at_s)
        steps = np.array([_to_ms(at_s)], dtype=np.int64)
        result = self._evaluate(expr, steps)
        if isinstance(result, Scalar):
            return [InstantSample(labels={}, value=float(result.values[0]), timestamp_s=at_s)]
        return [
            InstantSample(labels=dict(s.labels), value=float(s.values[0]), timestamp_s=at_s)
            for s in _sorted(result)
            if s.present[0]
        ]

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        """`expr` at start_s, start_s + step_s, ... up to end_s; data is read once."""
        _check_time("start_s", start_s)
        _check_time("end_s", end_s)
        _check_time("step_s", step_s)
        start_ms, end_ms, step_ms = _to_ms(start_s), _to_ms(end_s), _to_ms(step_s)
        if step_ms <= 0:
            raise QueryError(f"step_s must be positive (at least 1 ms), got {step_s!r}")
        if end_ms < start_ms:
            raise QueryError(f"end_s ({end_s!r}) is before start_s ({start_s!r})")
        points = (end_ms - start_ms) // step_ms + 1
        if points > MAX_POINTS_PER_SERIES:
            raise QueryError(
                f"exceeded maximum resolution of {MAX_POINTS_PER_SERIES} points per timeseries "
                f"({points}): try decreasing the query resolution (larger step_s)"
            )
        steps = start_ms + step_ms * np.arange(points, dtype=np.int64)
        result = self._evaluate(expr, steps)
        times = steps / 1000
        if isinstance(result, Scalar):
            return [RangeSeries({}, tuple(times.tolist()), tuple(result.values.tolist()))]
        return [
            RangeSeries(
                labels=dict(s.labels),
                timestamps_s=tuple(times[s.present].tolist()),
                values=tuple(s.values[s.present].tolist()),
            )
            for s in _sorted(result)
            if s.present.any()
        ]

    def query_exemplars(self, expr: str, start_s: float, end_s: float) -> list[ExemplarSeries]:
        """The exemplars in [start_s, end_s] of every series `expr`'s selectors select."""
        return query_store_exemplars(self._store, expr, start_s, end_s)

    def _evaluate(self, expr: str, steps: np.ndarray) -> Scalar | list[Series]:
        if not isinstance(expr, str) or not expr.strip():
            raise QueryError("empty PromQL expression")
        node = parse(expr)
        result = Evaluator(self._load, steps, lookback_ms=self._lookback_ms).evaluate(node)
        if isinstance(result, String):
            raise QueryError(f"{expr!r} is a string: queries must give a number or a vector")
        return result

    def _load(
        self,
        matcher: SeriesMatcher,
        start_ms: int,
        end_ms: int,
        windows: tuple[float, float, float, int] | None = None,
    ) -> list[RawSeries]:
        # A millisecond of margin: stored times are floats, the engine compares integer ms.
        series = self._store.series(matcher)
        start_s, end_s = (start_ms - 1) / 1000, (end_ms + 1) / 1000
        if windows is not None:
            # A sparse range query (a month at a 1-hour step): only its windows, uncached.
            loaded = self._store.samples(series, start_s, end_s, windows=windows)
        elif self._cache is not None:
            loaded = self._cache.samples(series, start_s, end_s)
        else:
            loaded = self._store.samples(series, start_s, end_s)
        raw_from = self._store.raw_from_s()
        raw_from_ms = None if raw_from is None else round(raw_from * 1000)
        raws = []
        for one in loaded:
            labels: Labels = tuple(
                sorted([(METRIC_NAME, one.series.name), *one.series.labels.items()])
            )
            raws.append(
                RawSeries(
                    labels=labels,
                    timestamps_ms=np.round(one.timestamps_s * 1000).astype(np.int64),
                    values=one.values,
                    stale=one.stale,
                    raw_from_ms=raw_from_ms,
                )
            )
        return raws


def _sorted(series: list[Series]) -> list[Series]:
    return sorted(series, key=lambda s: s.labels)


def _to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def _check_time(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise QueryError(f"{name} must be a finite number of seconds, got {value!r}")
