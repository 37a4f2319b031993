"""PromQL for an SLI's error ratio over a window, shared by the evaluator and the rules."""

from __future__ import annotations

from dataclasses import dataclass

from ._promql import label_matchers, le_label, rate_sum, selector
from ._spec import LatencySli, RatioSli


@dataclass(frozen=True, slots=True)
class EventRateQueries:
    """Two instant queries whose quotient gives the error ratio.

    For a ratio SLI `counted` is the bad events; for a latency SLI it is the good events
    (the bucket at the threshold), so error ratio = 1 - counted / total.
    """

    counted: str
    total: str
    counted_are_good: bool


def event_rate_queries(sli: RatioSli | LatencySli, window_s: float) -> EventRateQueries:
    if isinstance(sli, RatioSli):
        return EventRateQueries(
            counted=rate_sum(sli.bad, window_s),
            total=rate_sum(sli.total, window_s),
            counted_are_good=False,
        )
    matchers = label_matchers(sli.selector)
    bucket = selector(f"{sli.histogram}_bucket", [*matchers, f'le="{le_label(sli.threshold_s)}"'])
    return EventRateQueries(
        counted=rate_sum(bucket, window_s),
        total=rate_sum(selector(f"{sli.histogram}_count", matchers), window_s),
        counted_are_good=True,
    )


def error_ratio_expr(
    sli: RatioSli | LatencySli,
    window_s: float,
    *,
    zero_without_errors: bool = False,
    block: bool = False,
) -> str:
    """The error ratio over `window_s` as one expression.

    `zero_without_errors` writes `or vector(0)` after the bad-event rate: a service that never
    failed has no error series at all, and a recorded SLI should then read 0, not be absent.
    (Alert rules do not need it: no errors never exceed a threshold.) `block` lays it out on
    several lines, for rule files people read.
    """
    queries = event_rate_queries(sli, window_s)
    if queries.counted_are_good:
        if block:
            return f"1 - (\n  {queries.counted}\n  /\n  {queries.total}\n)"
        return f"1 - ({queries.counted} / {queries.total})"
    counted = f"({queries.counted} or vector(0))" if zero_without_errors else queries.counted
    return f"{counted}\n/\n{queries.total}" if block else f"{counted} / {queries.total}"
