"""SloEvaluator: SLI, error budget left and burn rates from instant queries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from collectors._source import InstantSample, RangeSeries
from slo import (
    BurnRateWindow,
    LatencySli,
    RatioSli,
    SloError,
    SloEvaluator,
    SloSpec,
    SloStatus,
)

AVAILABILITY = SloSpec(
    name="router-availability",
    objective=0.99,
    sli=RatioSli(
        bad='http_requests_total{job="router",status="5xx"}',
        total='http_requests_total{job="router"}',
    ),
)
LATENCY = SloSpec(
    name="router-latency",
    objective=0.95,
    sli=LatencySli(
        histogram="vllm:e2e_request_latency_seconds", threshold_s=2.5, selector='{job="router"}'
    ),
)
PAGE = [BurnRateWindow(severity="page", long_window_s=3600, short_window_s=300, burn_rate=14.4)]

BAD = 'sum(rate(http_requests_total{job="router",status="5xx"}[{w}]))'
TOTAL = 'sum(rate(http_requests_total{job="router"}[{w}]))'
GOOD = 'sum(rate(vllm:e2e_request_latency_seconds_bucket{job="router",le="2.5"}[{w}]))'
COUNT = 'sum(rate(vllm:e2e_request_latency_seconds_count{job="router"}[{w}]))'


def q(template: str, window: str) -> str:
    return template.replace("{w}", window)


class AnswersSource:
    """A MetricSource that knows a fixed answer per expression (absent: an empty vector)."""

    def __init__(self, answers: Mapping[str, float]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, float]] = []

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        self.asked.append((expr, at_s))
        if expr not in self.answers:
            return []
        return [InstantSample(labels={}, value=self.answers[expr], timestamp_s=at_s)]

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        raise AssertionError("the evaluator only makes instant queries")


CASES = {
    "errors within budget over the SLO window, burning fast lately": (
        AVAILABILITY,
        {
            q(BAD, "30d"): 0.02,
            q(TOTAL, "30d"): 4.0,  # error ratio 0.005: half the 1% budget spent
            q(BAD, "1h"): 0.5,
            q(TOTAL, "1h"): 5.0,  # 0.1 = 10x the budget
            q(BAD, "5m"): 1.0,
            q(TOTAL, "5m"): 4.0,  # 0.25 = 25x
        },
        SloStatus("router-availability", 0.99, 0.995, 0.5, {300.0: 25.0, 3600.0: 10.0}),
    ),
    "traffic and no error series at all reads as perfect": (
        AVAILABILITY,
        {q(TOTAL, "30d"): 4.0, q(TOTAL, "1h"): 5.0, q(TOTAL, "5m"): 4.0},
        SloStatus("router-availability", 0.99, 1.0, 1.0, {300.0: 0.0, 3600.0: 0.0}),
    ),
    "no traffic at all gives no values": (
        AVAILABILITY,
        {},
        SloStatus("router-availability", 0.99, None, None, {}),
    ),
    "traffic that stopped (a zero rate) gives no values, not NaN": (
        AVAILABILITY,
        {q(BAD, "30d"): 0.0, q(TOTAL, "30d"): 0.0, q(TOTAL, "1h"): 2.0},
        SloStatus("router-availability", 0.99, None, None, {3600.0: 0.0}),
    ),
    "slow requests over budget give a negative budget": (
        LATENCY,
        {
            q(GOOD, "30d"): 9.0,
            q(COUNT, "30d"): 10.0,  # 10% slow against a 5% budget: overspent twice
            q(GOOD, "1h"): 2.0,
            q(COUNT, "1h"): 8.0,  # 75% slow = 15x
            q(GOOD, "5m"): 0.0,
            q(COUNT, "5m"): 1.0,  # all slow = 20x
        },
        SloStatus("router-latency", 0.95, 0.9, -1.0, {300.0: 20.0, 3600.0: 15.0}),
    ),
}


@pytest.mark.parametrize(("spec", "answers", "expected"), CASES.values(), ids=CASES.keys())
def test_status_from_the_rates(
    spec: SloSpec, answers: Mapping[str, float], expected: SloStatus
) -> None:
    status = SloEvaluator(AnswersSource(answers)).evaluate(spec, 1_000_000.0, PAGE)
    assert status == SloStatus(
        name=expected.name,
        objective=expected.objective,
        sli_value=close_to(expected.sli_value),
        error_budget_remaining=close_to(expected.error_budget_remaining),
        burn_rates={window: close_to(rate) for window, rate in expected.burn_rates.items()},
    )


def close_to(value: float | None) -> Any:
    """Equal to `value` up to float rounding (1 - 0.99 is not exactly 0.01); None stays None."""
    return None if value is None else pytest.approx(value, rel=1e-12)


def test_the_queries_asked_are_the_rates_of_each_window_at_the_given_time() -> None:
    source = AnswersSource({})
    SloEvaluator(source).evaluate(LATENCY, 1234.5, PAGE)
    assert source.asked == [
        (q(COUNT, "30d"), 1234.5),
        (q(COUNT, "5m"), 1234.5),
        (q(COUNT, "1h"), 1234.5),
    ]


def test_every_kind_of_matcher_is_carried_into_the_bucket_and_count_queries() -> None:
    spec = SloSpec(
        name="ttft",
        objective=0.9,
        sli=LatencySli(
            histogram="vllm:time_to_first_token_seconds",
            threshold_s=1.0,
            selector='{job=~"node|router", model_name!="a\\"b", path!~"/health.*"}',
        ),
        window_s=3600,
    )
    count = (
        "sum(rate(vllm:time_to_first_token_seconds_count"
        '{job=~"node|router",model_name!="a\\"b",path!~"/health.*"}[1h]))'
    )
    bucket = (
        "sum(rate(vllm:time_to_first_token_seconds_bucket"
        '{job=~"node|router",model_name!="a\\"b",path!~"/health.*",le="1.0"}[1h]))'
    )
    source = AnswersSource({count: 4.0, bucket: 3.0})
    status = SloEvaluator(source).evaluate(spec, 0.0)
    assert source.asked == [(count, 0.0), (bucket, 0.0)]
    assert status.sli_value == 0.75


def test_a_threshold_that_is_no_bucket_bound_is_named() -> None:
    source = AnswersSource({q(COUNT, "30d"): 10.0})
    with pytest.raises(SloError) as caught:
        SloEvaluator(source).evaluate(LATENCY, 0.0)
    assert str(caught.value) == (
        f"SLO 'router-latency': {q(COUNT, '30d')} has events but {q(GOOD, '30d')} is empty: "
        "the latency threshold must be one of the histogram's bucket bounds"
    )


def test_the_embedded_store_gives_the_same_status(tmp_path: Path) -> None:
    """The real StoreSource over SQLite: 1 request in 10 fails, sampled every 10 s."""
    collectors = pytest.importorskip("collectors")
    if not hasattr(collectors, "StoreSource"):
        pytest.skip("collectors.StoreSource is not written yet")
    store = collectors.SampleStore(collectors.open_database(f"sqlite:///{tmp_path}/store.db"))
    samples = []
    for step in range(61):  # 10 minutes from t=10_000
        at_s = 10_000.0 + 10 * step
        for code, start, per_step in (("2xx", 1000.0, 9.0), ("5xx", 100.0, 1.0)):
            samples.append(
                collectors.ScrapedSample(
                    name="http_requests_total",
                    labels={"job": "router", "instance": "127.0.0.1:8000", "status": code},
                    value=start + per_step * step,
                    timestamp_s=at_s,
                )
            )
    store.append(samples)
    spec = SloSpec(name="api", objective=0.99, sli=AVAILABILITY.sli, window_s=300)
    windows = [BurnRateWindow("page", long_window_s=120, short_window_s=30, burn_rate=14.4)]
    status = SloEvaluator(collectors.StoreSource(store)).evaluate(spec, 10_600.0, windows)
    assert status.sli_value == pytest.approx(0.9, rel=1e-9)
    assert status.error_budget_remaining == pytest.approx(-9.0, rel=1e-9)
    assert status.burn_rates == pytest.approx({30.0: 10.0, 120.0: 10.0}, rel=1e-9)
