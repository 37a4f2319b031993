"""PromQL for an SLI's error ratio over a window, shared by the evaluator and the rules."""

from __future__ import annotations

from dataclasses import dataclass

from ._promql import label_matchers, le_label, rate_sum, selector
from ._rules import format_duration
from ._spec import LatencySli, RatioSli, SloSpec
from ._timeslice_sli import TIMESLICE_RECORD


@dataclass(frozen=True, slots=True)
class EventRateQueries:
    """Two instant queries whose quotient gives the error ratio.

    For a ratio SLI `counted` is the bad events; for a latency SLI it is the good events
    (the bucket at the threshold), so error ratio = 1 - counted / total.
    """

    counted: str
    total: str
    counted_are_good: bool


def event_rate_queries(
    sli: RatioSli | LatencySli, window_s: float, by: tuple[str, ...] = ()
) -> EventRateQueries:
    """`by`: the SLO's `group_by` labels (one ratio per group)."""
    if isinstance(sli, RatioSli):
        return EventRateQueries(
            counted=rate_sum(sli.good or sli.bad, window_s, by),
            total=rate_sum(sli.total, window_s, by),
            counted_are_good=bool(sli.good),
        )
    matchers = label_matchers(sli.selector)
    return EventRateQueries(
        counted=_good_latency_rate(sli, matchers, window_s, by),
        total=rate_sum(selector(f"{sli.histogram}_count", matchers), window_s, by),
        counted_are_good=True,
    )


def _good_latency_rate(
    sli: LatencySli, matchers: list[str], window_s: float, by: tuple[str, ...]
) -> str:
    """Requests at or under the threshold per second: one bucket, or two interpolated."""

    def bucket_rate(bound: float) -> str:
        le = f'le="{le_label(bound)}"'
        return rate_sum(selector(f"{sli.histogram}_bucket", [*matchers, le]), window_s, by)

    if not sli.buckets or sli.threshold_s in sli.buckets:
        return bucket_rate(sli.threshold_s)
    upper = min(b for b in sli.buckets if b > sli.threshold_s)
    below = [b for b in sli.buckets if b < sli.threshold_s]
    if not below:  # histogram_quantile's first bucket starts at 0
        return f"{bucket_rate(upper)} * {sli.threshold_s / upper:.12g}"
    lower = max(below)
    share = (sli.threshold_s - lower) / (upper - lower)
    return f"({bucket_rate(lower)} + ({bucket_rate(upper)} - {bucket_rate(lower)}) * {share:.12g})"


def window_error_ratio_expr(
    spec: SloSpec,
    window_s: float,
    *,
    zero_without_errors: bool = False,
    block: bool = False,
) -> str:
    """The spec's error ratio over `window_s`, whatever its SLI kind."""
    if isinstance(spec.sli, RatioSli | LatencySli):
        return error_ratio_expr(
            spec.sli,
            window_s,
            zero_without_errors=zero_without_errors,
            block=block,
            by=spec.group_by,
        )
    return f"avg_over_time({timeslice_selector(spec)}[{format_duration(window_s)}])"


def window_events_expr(spec: SloSpec, window_s: float) -> str:
    """How many events (requests, or judged slices) the window holds, for `min_events`."""
    if isinstance(spec.sli, RatioSli | LatencySli):
        total = event_rate_queries(spec.sli, window_s, spec.group_by).total
        return total.replace("(rate(", "(increase(", 1)  # sum(...) or sum by (...) (...)
    return f"sum(count_over_time({timeslice_selector(spec)}[{format_duration(window_s)}]))"


def timeslice_selector(spec: SloSpec) -> str:
    escaped = spec.name.replace("\\", "\\\\").replace('"', '\\"')
    return f'{TIMESLICE_RECORD}{{slo="{escaped}"}}'


def error_ratio_expr(
    sli: RatioSli | LatencySli,
    window_s: float,
    *,
    zero_without_errors: bool = False,
    block: bool = False,
    by: tuple[str, ...] = (),
) -> str:
    """The error ratio over `window_s` as one expression (per `by` group when given).

    `zero_without_errors` writes `or vector(0)` after the bad-event rate: a service that never
    failed has no error series at all, and a recorded SLI should then read 0, not be absent.
    (Alert rules do not need it: no errors never exceed a threshold.) `block` lays it out on
    several lines, for rule files people read.
    """
    queries = event_rate_queries(sli, window_s, by)
    # A group's zero: `vector(0)` has no labels, so it would match no group.
    zero = f"0 * {queries.total}" if by else "vector(0)"
    if queries.counted_are_good:
        if isinstance(sli, RatioSli):  # no good series at all means every event failed
            queries = EventRateQueries(f"({queries.counted} or {zero})", queries.total, True)
        if block:
            return f"1 - (\n  {queries.counted}\n  /\n  {queries.total}\n)"
        return f"1 - ({queries.counted} / {queries.total})"
    counted = f"({queries.counted} or {zero})" if zero_without_errors else queries.counted
    return f"{counted}\n/\n{queries.total}" if block else f"{counted} / {queries.total}"
