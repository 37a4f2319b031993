"""StoreSource: PromQL over samples written to a real SQLite store, expected values by hand.

Times are seconds. Unless a case says otherwise, samples are 1 s apart and the query runs
at t=100, so a `[10s]` window holds the samples at t=91..100 (Prometheus 3: the window
(t - 10s, t] excludes its left end).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collectors import QueryError, SampleStore, ScrapedSample, StoreSource, open_database

STALE = object()
"""A staleness marker in a series' points."""

Points = Iterable[tuple[float, Any]]


def points(values: Iterable[Any], start: float = 0.0, step: float = 1.0) -> list[tuple[float, Any]]:
    return [(start + i * step, v) for i, v in enumerate(values)]


def counter(
    per_s: float, *, start: float = 0.0, first: float = 0.0, until: float = 100.0, step: float = 1.0
) -> list[tuple[float, Any]]:
    n = round((until - start) / step) + 1
    return [(start + i * step, first + per_s * i * step) for i in range(n)]


@dataclass
class Data:
    series: list[tuple[str, Mapping[str, str], Points]] = field(default_factory=list)

    def add(self, name: str, labels: Mapping[str, str], pts: Points) -> Data:
        self.series.append((name, labels, list(pts)))
        return self

    def samples(self) -> list[ScrapedSample]:
        out = []
        for name, labels, pts in self.series:
            for t, v in pts:
                if v is STALE:
                    out.append(ScrapedSample(name, labels, math.nan, t, stale=True))
                else:
                    out.append(ScrapedSample(name, labels, float(v), t))
        return out


@pytest.fixture
def make_source(tmp_path: Path) -> Iterable[Callable[[Data], StoreSource]]:
    engines = []

    def make(data: Data, **kwargs: Any) -> StoreSource:
        engine = open_database(f"sqlite:///{tmp_path}/store-{len(engines)}.db")
        engines.append(engine)
        store = SampleStore(engine)
        store.append(data.samples())
        return StoreSource(store, **kwargs)

    yield make
    for engine in engines:
        engine.dispose()


def result(source: StoreSource, expr: str, at: float = 100.0) -> list[tuple[dict[str, str], float]]:
    return [(dict(s.labels), s.value) for s in source.query(expr, at)]


def assert_result(
    got: list[tuple[dict[str, str], float]], expected: list[tuple[dict[str, str], float]]
) -> None:
    assert [labels for labels, _ in got] == [labels for labels, _ in expected]
    for (_, value), (_, want) in zip(got, expected, strict=True):
        if math.isnan(want):
            assert math.isnan(value)
        else:
            assert value == pytest.approx(want, rel=1e-12, abs=1e-12)


# -- the data most cases share ------------------------------------------------------------

NODE0 = {"job": "nodes", "node": "node-0", "instance": "h:1"}
NODE1 = {"job": "nodes", "node": "node-1", "instance": "h:2"}


def counters() -> Data:
    return (
        Data()
        .add("c_total", NODE0, counter(10))  # 0, 10, 20, ... at t = 0..100
        .add("c_total", NODE1, counter(5, first=1000))
    )


@dataclass(frozen=True)
class Case:
    data: Callable[[], Data]
    expr: str
    expected: list[tuple[dict[str, str], float]]
    at: float = 100.0


def reset_counter() -> Data:
    # t = 90..100: 900 910 920 930 940 950 | reset | 5 15 25 35 45
    values = [900, 910, 920, 930, 940, 950, 5, 15, 25, 35, 45]
    return Data().add("c_total", NODE0, points(values, start=90))


def late_start(first: float) -> Callable[[], Data]:
    # A counter that appears at t=95 (first value `first`) and rises 10/s.
    return lambda: Data().add("c_total", NODE0, counter(10, start=95, first=first))


def gauge() -> Data:
    # t=90 holds 100 (outside (90, 100]); t = 91..100 hold 3 1 4 1 5 9 2 6 5 3.
    return Data().add("g", NODE0, points([100, 3, 1, 4, 1, 5, 9, 2, 6, 5, 3], start=90))


def buckets(
    counts: Mapping[str, float], name: str = "h_bucket", labels: Mapping[str, str] = NODE0
) -> Data:
    data = Data()
    for le, count in counts.items():
        data.add(name, {**labels, "le": le}, [(100.0, count)])
    return data


HIST = {"0.1": 10, "0.5": 30, "1.0": 60, "2.5": 90, "+Inf": 100}
L0 = {"job": "nodes", "node": "node-0", "instance": "h:1"}
L1 = {"job": "nodes", "node": "node-1", "instance": "h:2"}

CASES: dict[str, Case] = {
    # rate / increase / delta / irate --------------------------------------------------
    "rate of a steady counter": Case(counters, "rate(c_total[10s])", [(L0, 10.0), (L1, 5.0)]),
    "increase extrapolates the 9 s sampled to the 10 s window": Case(
        counters, 'increase(c_total{node="node-0"}[10s])', [(L0, 100.0)]
    ),
    "rate over a window wider than the data": Case(
        counters,
        'rate(c_total{node="node-0"}[1h])',
        [(L0, 1000.0 / 3600)],
        # 101 samples over 100 s (1000 raw); start: 3500 s away >> 1.1 s, so only half an
        # interval (0.5 s); zero point 0 s before the first sample (value 0) is closer:
        # min(0.5, 0) = 0. End: 0. Increase = 1000 * 100/100 = 1000 -> rate 1000/3600.
    ),
    "a counter that starts inside the window extrapolates half an interval": Case(
        late_start(1000),
        "increase(c_total[10s])",
        [(L0, 55.0)],
        # samples 95..100: 1000..1050, 50 over 5 s; start gap 5 s >= 1.1 -> 0.5 s; zero
        # point 5*(1000/50) = 100 s away; factor (5 + 0.5 + 0) / 5 = 1.1
    ),
    "a counter that starts near zero extrapolates to its zero point": Case(
        late_start(2),
        "increase(c_total[10s])",
        [(L0, 52.0)],
        # samples 2..52: zero point 5*(2/50) = 0.2 s < 0.5 s: factor (5 + 0.2) / 5 = 1.04
    ),
    "rate handles a counter reset": Case(
        reset_counter,
        "increase(c_total[10s])",
        [(L0, 85.0 * 10 / 9)],
        # window 91..100: 910..950 (+40), reset to 5 (+5), 5..45 (+40) = 85 over 9 s
    ),
    "rate handles a counter reset (per second)": Case(
        reset_counter, "rate(c_total[10s])", [(L0, 85.0 / 9)]
    ),
    "irate uses the last two samples": Case(
        counters, 'irate(c_total{node="node-1"}[10s])', [(L1, 5.0)]
    ),
    "irate across a reset takes the new value": Case(
        reset_counter, "irate(c_total[10s])", [(L0, 10.0)], at=99.0
    ),
    "irate right at a reset": Case(reset_counter, "irate(c_total[10s])", [(L0, 5.0)], at=96.0),
    "delta of a gauge extrapolates too": Case(
        lambda: Data().add("g", NODE0, points(range(0, 11), start=90)),  # 1..10 at 91..100
        "delta(g[10s])",
        [(L0, 10.0)],
    ),
    "one sample is not enough for rate": Case(counters, "rate(c_total[1s])", []),
    # *_over_time ---------------------------------------------------------------------
    "avg_over_time excludes the window's left end": Case(
        gauge, "avg_over_time(g[10s])", [(L0, 3.9)]
    ),
    "sum_over_time": Case(gauge, "sum_over_time(g[10s])", [(L0, 39.0)]),
    "max_over_time": Case(gauge, "max_over_time(g[10s])", [(L0, 9.0)]),
    "min_over_time": Case(gauge, "min_over_time(g[10s])", [(L0, 1.0)]),
    "count_over_time": Case(gauge, "count_over_time(g[10s])", [(L0, 10.0)]),
    "max_over_time includes the left end one ms later": Case(
        gauge, "max_over_time(g[10001ms])", [(L0, 100.0)]
    ),
    "last_over_time keeps the metric name": Case(
        gauge, "last_over_time(g[10s])", [({"__name__": "g", **L0}, 3.0)]
    ),
    "quantile_over_time": Case(gauge, "quantile_over_time(0.5, g[10s])", [(L0, 3.5)]),
    "stddev_over_time": Case(
        lambda: Data().add("g", NODE0, points([2, 4, 4, 4, 5, 5, 7, 9], start=93)),
        "stddev_over_time(g[10s])",
        [(L0, 2.0)],
    ),
    "changes and resets": Case(
        reset_counter, "changes(c_total[10s]) + resets(c_total[10s])", [(L0, 9.0 + 1.0)]
    ),
    # instant selectors, lookback, staleness ---------------------------------------------
    "an instant selector takes the newest sample": Case(
        counters, 'c_total{node="node-0"}', [({"__name__": "c_total", **L0}, 1000.0)]
    ),
    "an instant selector between samples": Case(
        counters, 'c_total{node="node-0"}', [({"__name__": "c_total", **L0}, 500.0)], at=50.5
    ),
    "the lookback reaches 5 minutes back": Case(
        lambda: Data().add("g", NODE0, [(50.0, 7.0)]),
        "g",
        [({"__name__": "g", **L0}, 7.0)],
        at=349.999,
    ),
    "the lookback window is left-open": Case(
        lambda: Data().add("g", NODE0, [(50.0, 7.0)]), "g", [], at=350.0
    ),
    "a staleness marker ends the series": Case(
        lambda: Data().add("g", NODE0, [*points([1, 2, 3], start=8), (11.0, STALE)]),
        "g",
        [],
        at=12.0,
    ),
    "before its staleness marker the series is there": Case(
        lambda: Data().add("g", NODE0, [*points([1, 2, 3], start=8), (11.0, STALE)]),
        "g",
        [({"__name__": "g", **L0}, 3.0)],
        at=10.5,
    ),
    "a series comes back after a staleness marker": Case(
        lambda: Data().add("g", NODE0, [*points([1, 2, 3], start=8), (11.0, STALE), (20, 4)]),
        "g",
        [({"__name__": "g", **L0}, 4.0)],
        at=20.0,
    ),
    "range functions skip staleness markers": Case(
        lambda: Data().add("g", NODE0, [*points([1, 2, 3], start=8), (11.0, STALE)]),
        "count_over_time(g[10s])",
        [(L0, 3.0)],
        at=12.0,
    ),
    "offset": Case(
        counters, 'c_total{node="node-0"} offset 30s', [({"__name__": "c_total", **L0}, 700.0)]
    ),
    "@ modifier": Case(
        counters, 'c_total{node="node-0"} @ 20', [({"__name__": "c_total", **L0}, 200.0)]
    ),
    "rate with offset": Case(counters, 'rate(c_total{node="node-1"}[10s] offset 50s)', [(L1, 5.0)]),
    # histogram_quantile ----------------------------------------------------------------
    "histogram_quantile interpolates in the bucket holding the rank": Case(
        lambda: buckets(HIST), "histogram_quantile(0.5, h_bucket)", [(L0, 0.5 + 0.5 * 20 / 30)]
    ),
    "histogram_quantile in the first bucket starts at 0": Case(
        lambda: buckets(HIST), "histogram_quantile(0.05, h_bucket)", [(L0, 0.05)]
    ),
    "histogram_quantile in the +Inf bucket gives the highest finite bound": Case(
        lambda: buckets(HIST), "histogram_quantile(0.99, h_bucket)", [(L0, 2.5)]
    ),
    "histogram_quantile forces monotonic buckets": Case(
        lambda: buckets({**HIST, "1.0": 25}),
        "histogram_quantile(0.5, h_bucket)",
        [(L0, 1.0 + 1.5 * 20 / 60)],
    ),  # counts 10 30 30 90 100: rank 50 in (1, 2.5]
    "histogram_quantile without a +Inf bucket is NaN": Case(
        lambda: buckets({"0.1": 1, "1": 2}), "histogram_quantile(0.5, h_bucket)", [(L0, math.nan)]
    ),
    "histogram_quantile of an empty histogram is NaN": Case(
        lambda: buckets({"0.1": 0, "+Inf": 0}),
        "histogram_quantile(0.5, h_bucket)",
        [(L0, math.nan)],
    ),
    "histogram_quantile above 1 is +Inf": Case(
        lambda: buckets(HIST), "histogram_quantile(1.5, h_bucket)", [(L0, math.inf)]
    ),
    "histogram_quantile groups by the labels but le": Case(
        lambda: (
            buckets(HIST)
            .add("h_bucket", {**NODE1, "le": "1"}, [(100.0, 4)])
            .add("h_bucket", {**NODE1, "le": "+Inf"}, [(100.0, 8)])
        ),
        "histogram_quantile(0.5, h_bucket)",
        [(L0, 0.5 + 0.5 * 20 / 30), (L1, 1.0)],
    ),
    # functions --------------------------------------------------------------------------
    "abs drops the metric name": Case(
        lambda: Data().add("g", NODE0, [(100.0, -3)]), "abs(g)", [(L0, 3.0)]
    ),
    "clamp_min / clamp_max": Case(
        lambda: Data().add("g", NODE0, [(100.0, -3)]).add("g", NODE1, [(100.0, 30)]),
        "clamp_max(clamp_min(g, 0), 10)",
        [(L0, 0.0), (L1, 10.0)],
    ),
    "vector and time": Case(counters, "vector(time())", [({}, 100.0)], at=100.0),
    "scalar of one element": Case(counters, 'scalar(c_total{node="node-0"}) * 2', [({}, 2000.0)]),
    "scalar of several elements is NaN": Case(counters, "scalar(c_total)", [({}, math.nan)]),
    "a number is a scalar": Case(counters, "1 + 2 * 3 ^ 2 % 5", [({}, 4.0)]),  # 1 + (18 % 5)
    "absent of a missing series": Case(
        counters, 'absent(nothing{job="x", node=~"a.*"})', [({"job": "x"}, 1.0)]
    ),
    "absent of a present series": Case(counters, "absent(c_total)", []),
    # aggregation ------------------------------------------------------------------------
    "sum by keeps only the by labels": Case(
        counters,
        "sum by (node) (rate(c_total[10s]))",
        [({"node": "node-0"}, 10.0), ({"node": "node-1"}, 5.0)],
    ),
    "sum without drops the listed labels and the name": Case(
        counters, "sum without (instance, node) (c_total)", [({"job": "nodes"}, 2500.0)]
    ),
    "sum of everything has no labels": Case(counters, "sum(c_total)", [({}, 2500.0)]),
    "avg / max / min / count": Case(
        counters,
        "avg(c_total) + max(c_total) * 10 + min(c_total) * 100 + count(c_total)",
        [({}, 1250.0 + 15000.0 + 100000.0 + 2.0)],
    ),
    "sum by a label some series lack": Case(
        lambda: counters().add("c_total", {"job": "other"}, [(100.0, 1.0)]),
        "sum by (node) (c_total)",
        [({}, 1.0), ({"node": "node-0"}, 1000.0), ({"node": "node-1"}, 1500.0)],
    ),
    "topk keeps the series' labels": Case(
        counters, "topk(1, c_total)", [({"__name__": "c_total", **L1}, 1500.0)]
    ),
    "quantile aggregation": Case(counters, "quantile(0.5, c_total)", [({}, 1250.0)]),
    # binary operators --------------------------------------------------------------------
    "vector / scalar drops the name": Case(counters, 'c_total{node="node-0"} / 4', [(L0, 250.0)]),
    "a comparison filters and keeps the name": Case(
        counters, "c_total > 1200", [({"__name__": "c_total", **L1}, 1500.0)]
    ),
    "a scalar on the left of a comparison keeps the vector's value": Case(
        counters, "1200 < c_total", [({"__name__": "c_total", **L1}, 1500.0)]
    ),
    "bool gives 0 or 1 and drops the name": Case(
        counters, "c_total > bool 1200", [(L0, 0.0), (L1, 1.0)]
    ),
    "vector / vector matches on all labels but the name": Case(
        lambda: counters().add("d", NODE0, [(100.0, 4.0)]), "c_total / d", [(L0, 250.0)]
    ),
    "ignoring": Case(
        counters,
        'c_total{node="node-1"} - ignoring(node, instance) c_total{node="node-0"}',
        [({"job": "nodes"}, 500.0)],
    ),
    "on keeps only the on labels": Case(
        lambda: counters().add("d", {"job": "nodes", "x": "y"}, [(100.0, 2.0)]),
        'c_total{node="node-0"} / on(job) d',
        [({"job": "nodes"}, 500.0)],
    ),
    "group_left copies labels from the one side": Case(
        lambda: counters().add("info", {"job": "nodes", "version": "v2"}, [(100.0, 1.0)]),
        "c_total * on(job) group_left(version) info",
        [({**L0, "version": "v2"}, 1000.0), ({**L1, "version": "v2"}, 1500.0)],
    ),
    "vector comparison filters with the left value": Case(
        lambda: (
            counters().add("limit", NODE0, [(100.0, 900.0)]).add("limit", NODE1, [(100.0, 2000.0)])
        ),
        "c_total > limit",
        [({"__name__": "c_total", **L0}, 1000.0)],
    ),
    "and": Case(
        lambda: counters().add("up", NODE1, [(100.0, 1.0)]),
        "c_total and up",
        [({"__name__": "c_total", **L1}, 1500.0)],
    ),
    "unless": Case(
        lambda: counters().add("up", NODE1, [(100.0, 1.0)]),
        "c_total unless up",
        [({"__name__": "c_total", **L0}, 1000.0)],
    ),
    "or adds what the left side lacks": Case(
        lambda: (
            Data()
            .add("a", NODE0, [(100.0, 1.0)])
            .add("b", NODE0, [(100.0, 2.0)])
            .add("b", NODE1, [(100.0, 3.0)])
        ),
        "a or b",
        [({"__name__": "a", **L0}, 1.0), ({"__name__": "b", **L1}, 3.0)],
    ),
    "or vector(0) fills an empty result": Case(
        counters, "sum(rate(missing_total[10s])) or vector(0)", [({}, 0.0)]
    ),
    "and on()": Case(
        counters,
        "c_total and on() vector(1)",
        [({"__name__": "c_total", **L0}, 1000.0), ({"__name__": "c_total", **L1}, 1500.0)],
    ),
    "unary minus and parentheses": Case(counters, '-(c_total{node="node-0"} - 1)', [(L0, -999.0)]),
    "modulo follows the dividend's sign": Case(counters, "-7 % 3", [({}, -1.0)]),
    "division by zero is infinite": Case(counters, 'c_total{node="node-0"} / 0', [(L0, math.inf)]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_instant_query(make_source: Callable[[Data], StoreSource], case: Case) -> None:
    source = make_source(case.data())
    assert_result(result(source, case.expr, case.at), case.expected)


def test_instant_samples_carry_the_evaluation_time(make_source: Callable[..., StoreSource]) -> None:
    source = make_source(counters())
    assert {s.timestamp_s for s in source.query("c_total", 55.25)} == {55.25}
    assert [s.timestamp_s for s in source.query("time()", 55.25)] == [55.25]


def test_lookback_is_configurable(make_source: Callable[..., StoreSource]) -> None:
    source = make_source(Data().add("g", NODE0, [(50.0, 7.0)]), lookback_s=10.0)
    assert result(source, "g", 59.0) == [({"__name__": "g", **L0}, 7.0)]
    assert result(source, "g", 60.0) == []


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(rate(x[5m])", "unclosed left parenthesis"),
        ("rate(x)", "expected type matrix in call to function 'rate'"),
        ("rate(x[5m:1m])", "subqueries are not supported"),
        ('count_values("v", x)', "aggregation count_values() is not supported"),
        ('label_replace(x, "a", "$1", "b", "(.*)")', "function label_replace() is not supported"),
        ("x[5m]", "is a range vector"),
        ('"text"', "is a string"),
        ("", "empty PromQL expression"),
    ],
)
def test_unsupported_or_invalid_expressions(
    make_source: Callable[[Data], StoreSource], expr: str, message: str
) -> None:
    source = make_source(counters())
    with pytest.raises(QueryError) as caught:
        source.query(expr, 100.0)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('abs({__name__=~"c_total|d"})', "vector cannot contain metrics with the same labelset"),
        ("c_total / on(job) c_total", "found duplicate series for the match group"),
        ('c_total / on(job) c_total{node="node-0"}', "multiple matches for labels"),
    ],
)
def test_ambiguous_matches_are_errors(
    make_source: Callable[[Data], StoreSource], expr: str, message: str
) -> None:
    source = make_source(counters().add("d", NODE0, [(100.0, 4.0)]))
    with pytest.raises(QueryError) as caught:
        source.query(expr, 100.0)
    assert message in str(caught.value)


# -- range queries --------------------------------------------------------------------------

RANGE_EXPRESSIONS = [
    "c_total",
    "rate(c_total[10s])",
    "sum by (node) (increase(c_total[30s]))",
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[20s])))",
    "c_total > 600 or vector(1)",
    "scalar(sum(c_total)) + time()",
    "max_over_time(g[15s]) - min_over_time(g[15s] offset 5s)",
    "g > bool 2",
    "absent(g)",
]


def range_data() -> Data:
    data = counters()
    data.add("g", NODE0, [*points([5, 1, 3, 2, 4] * 8, start=0, step=2.5), (100.0, STALE)])
    for le, per_s in (("0.5", 1.0), ("1", 3.0), ("+Inf", 4.0)):
        data.add("h_bucket", {**NODE0, "le": le}, counter(per_s, step=2.0))
    return data


@pytest.mark.parametrize("expr", RANGE_EXPRESSIONS)
def test_a_range_query_equals_instant_queries_at_each_step(
    make_source: Callable[[Data], StoreSource], expr: str
) -> None:
    source = make_source(range_data())
    start, end, step = 10.0, 110.0, 7.0
    series = source.query_range(expr, start, end, step)
    by_step: dict[float, dict[tuple[tuple[str, str], ...], float]] = {}
    for one in series:
        assert len(one.timestamps_s) == len(one.values) > 0
        for t, v in zip(one.timestamps_s, one.values, strict=True):
            by_step.setdefault(t, {})[tuple(sorted(one.labels.items()))] = v
    t = start
    while t <= end:
        instant = {tuple(sorted(s.labels.items())): s.value for s in source.query(expr, t)}
        ranged = by_step.get(t, {})
        assert ranged.keys() == instant.keys(), t
        for key, value in instant.items():
            assert ranged[key] == pytest.approx(value, nan_ok=True), (t, key)
        t += step
    assert [s.labels for s in series] == sorted(
        (s.labels for s in series), key=lambda labels: sorted(labels.items())
    )


def test_a_range_query_reads_each_selector_once(
    make_source: Callable[[Data], StoreSource], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_source(range_data())
    calls: list[tuple[float, float]] = []
    original = SampleStore.samples

    def counting(self: SampleStore, series: Any, start_s: float, end_s: float) -> Any:
        calls.append((start_s, end_s))
        return original(self, series, start_s, end_s)

    monkeypatch.setattr(SampleStore, "samples", counting)
    expr = "sum(rate(c_total[30s])) / sum(rate(c_total[10s])) + sum(c_total offset 1m)"
    out = source.query_range(expr, 0.0, 3600.0, 10.0)
    assert len(out) == 1 and len(out[0].values) > 0
    assert len(calls) == 1  # one selector, all its uses, the whole hour: one read
    start_s, end_s = calls[0]
    assert start_s == pytest.approx(-60.0 - 300.0, abs=0.01)  # offset + lookback
    assert end_s == pytest.approx(3600.0, abs=0.01)


def test_range_query_of_a_scalar_and_point_limits(
    make_source: Callable[[Data], StoreSource],
) -> None:
    source = make_source(counters())
    [line] = source.query_range("time() * 2", 0.0, 2.0, 1.0)
    assert line.labels == {} and line.timestamps_s == (0.0, 1.0, 2.0)
    assert line.values == (0.0, 2.0, 4.0)
    with pytest.raises(QueryError, match="11000 points"):
        source.query_range("time()", 0.0, 20_000.0, 1.0)
    with pytest.raises(QueryError, match="positive"):
        source.query_range("time()", 0.0, 10.0, 0.0)
    with pytest.raises(QueryError, match="before"):
        source.query_range("time()", 10.0, 0.0, 1.0)


def test_a_series_missing_at_some_steps_has_only_its_points(
    make_source: Callable[[Data], StoreSource],
) -> None:
    data = Data().add("g", NODE0, [(10.0, 1.0), (20.0, 2.0), (21.0, STALE), (40.0, 4.0)])
    source = make_source(data)
    [line] = source.query_range("g", 0.0, 50.0, 10.0)
    assert line.timestamps_s == (10.0, 20.0, 40.0, 50.0)
    assert line.values == (1.0, 2.0, 4.0, 4.0)
