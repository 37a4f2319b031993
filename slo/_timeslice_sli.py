"""SLIs judged per time slice: latency percentile, throughput and cost.

A p99 or a tokens/s rate is not a count of good and bad events, so these SLIs are measured
the way OpenSLO's `Timeslices` budgeting does: every evaluation, the trailing `slice` (1m by
default) is judged good (0) or bad (1) and recorded as `slo:timeslice_bad:bool{slo=...}`;
a slice without demand records nothing, so it is neither good nor bad. The error ratio over a
window is then the share of bad slices, `avg_over_time(slo:timeslice_bad:bool{...}[w])`.
A real Prometheus records the slice with a recording rule (`inferops slo rules`), the native
control plane writes the same sample into its store each round, so both read the same series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import promql_parser

from ._exceptions import SloSpecError
from ._promql import check_label_selector, check_vector_selector, is_metric_name, label_matchers
from ._promql import selector as with_matchers
from ._rules import format_duration

TIMESLICE_RECORD = "slo:timeslice_bad:bool"
DEFAULT_SLICE_S = 60.0
COST_UNITS = ("request", "1k_output_tokens")


@dataclass(frozen=True, slots=True)
class PercentileSli:
    """A slice is bad when the `quantile` (0.99 for p99) of the histogram is above `threshold_s`.

    The quantile is `histogram_quantile`'s, interpolated linearly inside a bucket; slices
    without requests (the histogram's `_count` did not grow) do not count.
    """

    histogram: str
    quantile: float
    threshold_s: float
    selector: str = ""
    slice_s: float = DEFAULT_SLICE_S


@dataclass(frozen=True, slots=True)
class ThroughputSli:
    """A slice is bad when `tokens` (a counter) grew slower than `min_tokens_per_s` while there
    was demand: some series of `demand` (gauges such as requests running or waiting) above 0.

    A slice with no demand is not bad: an idle fleet generates no tokens and that is fine.
    Nor is a slice where `tokens` has no rate yet (fewer than two samples in the slice).
    """

    tokens: str
    demand: str
    min_tokens_per_s: float
    slice_s: float = DEFAULT_SLICE_S


@dataclass(frozen=True, slots=True)
class CostSli:
    """A slice is bad when the fleet's GPU cost per `per` (`request` or `1k_output_tokens`)
    is above `max_dollars`.

    Cost is GPU time the fleet holds, not what it computes: every series of `gpus` (one per
    GPU, e.g. `DCGM_FI_DEV_GPU_UTIL`) costs `gpu_hour_prices[<its price_label value>]`
    dollars per hour while it is present (keyed by GPU model through `modelName`, or by node
    through `Hostname`/`node`). A GPU whose label value has no price costs nothing: list every
    model. Slices without requests do not count.
    """

    gpus: str
    price_label: str
    gpu_hour_prices: Mapping[str, float]
    requests: str
    per: str
    max_dollars: float
    output_tokens: str = ""
    slice_s: float = DEFAULT_SLICE_S


@dataclass(frozen=True, slots=True)
class ThresholdSli:
    """A slice is good when `query` (PromQL giving one number) compares `op` to `value`:
    OpenSLO's `thresholdMetric`. An empty answer (no data) is no slice."""

    query: str
    op: str
    value: float
    slice_s: float = DEFAULT_SLICE_S


THRESHOLD_OPS = {"lt": ">=", "lte": ">", "gt": "<=", "gte": "<"}  # op -> what makes it bad
TimesliceSli = PercentileSli | ThroughputSli | CostSli | ThresholdSli


def _number(value: float) -> str:
    return f"{value:.12g}"


def _rate(vector_selector: str, slice_s: float) -> str:
    return f"sum(rate({vector_selector}[{format_duration(slice_s)}]))"


def timeslice_bad_expr(sli: TimesliceSli) -> str:
    """PromQL giving 1 (bad slice), 0 (good) or nothing (no demand) at an evaluation time."""
    if isinstance(sli, PercentileSli):
        matchers = label_matchers(sli.selector)
        buckets = with_matchers(f"{sli.histogram}_bucket", matchers)
        count = with_matchers(f"{sli.histogram}_count", matchers)
        window = format_duration(sli.slice_s)
        return (
            f"(histogram_quantile({_number(sli.quantile)}, sum by (le) (rate({buckets}[{window}])))"
            f" > bool {_number(sli.threshold_s)})\n"
            f"and on() ({_rate(count, sli.slice_s)} > 0)"
        )
    if isinstance(sli, ThroughputSli):
        window = format_duration(sli.slice_s)
        return (
            f"({_rate(sli.tokens, sli.slice_s)} < bool {_number(sli.min_tokens_per_s)})\n"
            f"and on() (sum(max_over_time({sli.demand}[{window}])) > 0)"
        )
    if isinstance(sli, ThresholdSli):
        return f"({sli.query.strip()}) {THRESHOLD_OPS[sli.op]} bool {_number(sli.value)}"
    dollars = dollars_per_second_expr(sli)
    requests = _rate(sli.requests, sli.slice_s)
    if sli.per == "request":
        per_unit = f"({dollars}) / {requests}"
    else:
        per_unit = f"({dollars}) / {_rate(sli.output_tokens, sli.slice_s)} * 1000"
    return f"({per_unit} > bool {_number(sli.max_dollars)})\nand on() ({requests} > 0)"


def dollars_per_second_expr(sli: CostSli) -> str:
    """What the GPUs present now cost per second: sum over priced keys of count x price."""
    matchers = label_matchers(_selector_part(sli.gpus))
    metric = _metric_part(sli.gpus)
    terms = []
    for key, price in sorted(sli.gpu_hour_prices.items()):
        escaped = key.replace("\\", "\\\\").replace('"', '\\"')
        gpus = with_matchers(metric, [*matchers, f'{sli.price_label}="{escaped}"'])
        terms.append(f"(count({gpus}) * {_number(price / 3600.0)} or on() vector(0))")
    return " + ".join(terms)


def _metric_part(vector_selector: str) -> str:
    text = vector_selector.strip()
    return text.split("{", 1)[0]


def _selector_part(vector_selector: str) -> str:
    text = vector_selector.strip()
    return "{" + text.split("{", 1)[1] if "{" in text else ""


def _check_selector(text: str, field_name: str) -> None:
    problem = check_vector_selector(text)
    if problem is not None:
        raise SloSpecError(problem, field=field_name)


def _check_slice(slice_s: float, field_name: str) -> None:
    if not (math.isfinite(slice_s) and slice_s > 0):
        raise SloSpecError(f"must be longer than zero, got {slice_s:.15g}s", field=field_name)


def _check_positive(value: float, field_name: str, unit: str) -> None:
    if not (math.isfinite(value) and value > 0):
        raise SloSpecError(f"must be above zero, got {value:.15g}{unit}", field=field_name)


def validate_timeslice(sli: TimesliceSli) -> None:
    """Raise `SloSpecError` naming the first wrong field, relative to `sli.`."""
    if isinstance(sli, PercentileSli):
        base = "sli.percentile"
        if not is_metric_name(sli.histogram) or sli.histogram.endswith(
            ("_bucket", "_count", "_sum")
        ):
            raise SloSpecError(
                f"must be a histogram's base name (no _bucket/_count/_sum), got {sli.histogram!r}",
                field=f"{base}.histogram",
            )
        if not (math.isfinite(sli.quantile) and 0.0 < sli.quantile < 1.0):
            raise SloSpecError(
                f"must be between 0 and 1 (exclusive; p99 is 0.99), got {sli.quantile:.15g}",
                field=f"{base}.quantile",
            )
        _check_positive(sli.threshold_s, f"{base}.threshold", "s")
        problem = check_label_selector(sli.selector)
        if problem is not None:
            raise SloSpecError(problem, field=f"{base}.selector")
        _check_slice(sli.slice_s, f"{base}.slice")
    elif isinstance(sli, ThroughputSli):
        base = "sli.throughput"
        _check_selector(sli.tokens, f"{base}.tokens")
        _check_selector(sli.demand, f"{base}.demand")
        _check_positive(sli.min_tokens_per_s, f"{base}.min_tokens_per_s", "")
        _check_slice(sli.slice_s, f"{base}.slice")
    elif isinstance(sli, ThresholdSli):
        if sli.op not in THRESHOLD_OPS:
            raise SloSpecError(
                f"must be one of {', '.join(THRESHOLD_OPS)}, got {sli.op!r}", field="sli.op"
            )
        try:
            promql_parser.parse(sli.query)
        except ValueError as error:
            raise SloSpecError(f"not valid PromQL ({error})", field="sli.query") from None
        if not math.isfinite(sli.value):
            raise SloSpecError(f"must be a finite number, got {sli.value!r}", field="sli.value")
        _check_slice(sli.slice_s, "sli.slice")
    else:
        _validate_cost(sli)


def _validate_cost(sli: CostSli) -> None:
    base = "sli.cost"
    _check_selector(sli.gpus, f"{base}.gpus")
    _check_selector(sli.requests, f"{base}.requests")
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", sli.price_label):
        raise SloSpecError(
            f"must be a Prometheus label name such as modelName or Hostname, got "
            f"{sli.price_label!r}",
            field=f"{base}.price_label",
        )
    if sli.per not in COST_UNITS:
        raise SloSpecError(
            f"must be one of {', '.join(COST_UNITS)}, got {sli.per!r}", field=f"{base}.per"
        )
    if sli.per == "1k_output_tokens":
        if not sli.output_tokens:
            raise SloSpecError(
                "required when per is 1k_output_tokens (a counter of generated tokens)",
                field=f"{base}.output_tokens",
            )
        _check_selector(sli.output_tokens, f"{base}.output_tokens")
    if not sli.gpu_hour_prices:
        raise SloSpecError(
            "must price at least one GPU model or node", field=f"{base}.gpu_hour_prices"
        )
    for key, price in sli.gpu_hour_prices.items():
        if not (math.isfinite(price) and price >= 0):
            raise SloSpecError(
                f"must be a price of zero or more dollars per GPU-hour, got {price:.15g}",
                field=f"{base}.gpu_hour_prices.{key}",
            )
    _check_positive(sli.max_dollars, f"{base}.max_dollars", "")
    _check_slice(sli.slice_s, f"{base}.slice")
