"""Calendar-month SLOs: the budget is over the month so far and resets on the 1st, 00:00 UTC."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectors import SampleStore, ScrapedSample, StoreSource
from slo import RatioSli, SloEvaluator, SloSpec
from slo._evaluator import period_window_s


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime.datetime(
        year, month, day, hour, minute, second, tzinfo=datetime.UTC
    ).timestamp()


SLI = RatioSli(bad='http_requests_total{status="5xx"}', total="http_requests_total")
MONTHLY = SloSpec(name="monthly", objective=0.99, sli=SLI, calendar="month")
ROLLING = SloSpec(name="rolling", objective=0.99, sli=SLI, window_s=30 * 86_400.0)

PERIODS = {
    "late in November: 24 days 13 hours so far": (utc(2026, 11, 25, 13), 24 * 86_400 + 13 * 3600),
    "one second into December": (utc(2026, 12, 1, 0, 0, 1), 1),
    "the last second of February in a leap year": (utc(2028, 2, 29, 23, 59, 59), 29 * 86_400 - 1),
}


@pytest.mark.parametrize(("at_s", "seconds"), PERIODS.values(), ids=PERIODS.keys())
def test_a_calendar_month_window_starts_on_the_first_at_midnight_utc(
    at_s: float, seconds: float
) -> None:
    assert period_window_s(MONTHLY, at_s) == seconds
    assert period_window_s(ROLLING, at_s) == 30 * 86_400.0


def test_errors_of_last_month_spend_none_of_this_months_budget(tmp_path: Path) -> None:
    # 10 requests/s from Oct 31 22:00 to Nov 1 02:00 UTC, sampled every minute; 1 in 10
    # failed until midnight, none after.
    start = utc(2026, 10, 31, 22)
    midnight = utc(2026, 11, 1)
    samples = []
    for minute in range(241):
        at_s = start + minute * 60
        failed_minutes = min(minute, 120)
        samples.append(
            ScrapedSample(
                "http_requests_total",
                {"status": "2xx"},
                600.0 * minute - 60.0 * failed_minutes,
                at_s,
            )
        )
        samples.append(
            ScrapedSample("http_requests_total", {"status": "5xx"}, 60.0 * failed_minutes, at_s)
        )
    database = sa.create_engine(f"sqlite:///{tmp_path / 'calendar.db'}")
    store = SampleStore(database)
    store.append(samples)
    evaluator = SloEvaluator(StoreSource(store))
    try:
        before = evaluator.evaluate(MONTHLY, midnight - 60)
        after = evaluator.evaluate(MONTHLY, midnight + 3600)
        rolling = evaluator.evaluate(ROLLING, midnight + 3600)
    finally:
        database.dispose()
    assert (before.sli_value, before.error_budget_remaining) == pytest.approx((0.9, -9.0))
    assert (after.sli_value, after.error_budget_remaining) == (1.0, 1.0)
    # The rolling 30 days still hold October's 2 hours of errors: 7,200 failed of 108,000.
    assert rolling.error_budget_remaining == pytest.approx(1 - (7_200 / 108_000) / 0.01, rel=1e-3)
