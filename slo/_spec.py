"""What an SLO is: an objective for the share of good events over a rolling window."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._exceptions import SloSpecError
from ._promql import check_label_selector, check_vector_selector, is_metric_name
from ._timeslice_sli import (
    CostSli,
    PercentileSli,
    ThresholdSli,
    ThroughputSli,
    validate_timeslice,
)

DEFAULT_WINDOW_S = 30 * 86_400.0

_SLO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Set by the generated rules themselves; a spec label of the same name would be overwritten.
RESERVED_LABELS = ("alertname", "severity", "slo")


@dataclass(frozen=True, slots=True)
class RatioSli:
    """Bad events over all events, PromQL vector selectors of counters. `good` instead of
    `bad` (bad left empty) counts the good events, as OpenSLO's ratioMetric may."""

    bad: str
    total: str
    good: str = ""


@dataclass(frozen=True, slots=True)
class LatencySli:
    """Events slower than `threshold_s` in a Prometheus histogram (base name, no `_bucket`).

    Without `buckets`, `threshold_s` must be one of the histogram's bucket bounds: the good
    events are read from the bucket `le="<threshold>"` as Prometheus clients write it
    (2.5 -> "2.5"). With `buckets` (the histogram's finite bounds) a threshold between two
    bounds is interpolated linearly between their counts, as `histogram_quantile` does
    (below the first bound, from 0); see docs/slo.md for how exact that is.
    """

    histogram: str
    threshold_s: float
    selector: str = ""
    buckets: tuple[float, ...] = ()


Sli = RatioSli | LatencySli | PercentileSli | ThroughputSli | CostSli | ThresholdSli


@dataclass(frozen=True, slots=True)
class SloSpec:
    """One SLO. `min_events` (0: off) keeps its burn-rate alerts quiet while the long window
    of a pair holds fewer events (requests; slices for the per-slice SLI kinds), so one error
    in a handful of requests does not page."""

    name: str
    objective: float
    sli: Sli
    window_s: float = DEFAULT_WINDOW_S
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    min_events: float = 0.0
    calendar: str = ""
    group_by: tuple[str, ...] = ()
    """One SLO per value of these labels (`[model_name]`): one status, one ratio series and
    one alert per group. Ratio and latency SLIs only."""
    """"month": the budget is over the calendar month so far (resetting on the 1st, 00:00
    UTC) in the native evaluator; Prometheus rules, which have no calendar, use `window_s`."""

    def validate(self) -> None:
        """Raise `SloSpecError` naming the first wrong field (as the YAML spells it)."""
        if _SLO_NAME.fullmatch(self.name) is None:
            raise SloSpecError(
                "must start with a letter or digit and use only letters, digits, '.', '_' "
                f"and '-', got {self.name!r}",
                field="name",
            )
        if not (math.isfinite(self.objective) and 0.0 < self.objective < 1.0):
            hint = ""
            if 50.0 <= self.objective < 100.0:  # surely a percentage
                hint = f" (write {self.objective:.15g}% as {self.objective / 100:.15g})"
            raise SloSpecError(
                f"must be between 0 and 1 (exclusive), got {self.objective:.15g}{hint}",
                field="objective",
            )
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise SloSpecError(
                f"must be longer than zero, got {self.window_s:.15g}s", field="window"
            )
        for name in self.labels:
            if _LABEL_NAME.fullmatch(name) is None or name.startswith("__"):
                raise SloSpecError(
                    "must be a Prometheus label name (letters, digits, '_'; not starting "
                    f"with '__'), got {name!r}",
                    field=f"labels.{name}",
                )
            if name in RESERVED_LABELS:
                raise SloSpecError(
                    f"is set by the generated rules ({', '.join(RESERVED_LABELS)} are reserved)",
                    field=f"labels.{name}",
                )
        if self.calendar not in ("", "month"):
            raise SloSpecError(
                f"must be month (or left out for a rolling window), got {self.calendar!r}",
                field="calendar",
            )
        if not (math.isfinite(self.min_events) and self.min_events >= 0):
            raise SloSpecError(
                f"must be zero or more events, got {self.min_events:.15g}", field="min_events"
            )
        for name in self.group_by:
            if _LABEL_NAME.fullmatch(name) is None or name in (*RESERVED_LABELS, "le"):
                raise SloSpecError(
                    f"must be label names other than {', '.join(RESERVED_LABELS)} and le, "
                    f"got {name!r}",
                    field="group_by",
                )
        if self.group_by and not isinstance(self.sli, RatioSli | LatencySli):
            raise SloSpecError("is supported for ratio and latency SLIs only", field="group_by")
        if isinstance(self.sli, RatioSli):
            _validate_ratio(self.sli)
        elif isinstance(self.sli, LatencySli):
            _validate_latency(self.sli)
        else:
            validate_timeslice(self.sli)


def _validate_ratio(sli: RatioSli) -> None:
    if bool(sli.bad) == bool(sli.good):
        raise SloSpecError("must count exactly one of bad or good events", field="sli.ratio")
    counted = ("good", sli.good) if sli.good else ("bad", sli.bad)
    for name, text in (counted, ("total", sli.total)):
        problem = check_vector_selector(text)
        if problem is not None:
            raise SloSpecError(problem, field=f"sli.ratio.{name}")


def _validate_latency(sli: LatencySli) -> None:
    if not is_metric_name(sli.histogram):
        raise SloSpecError(
            f"must be a metric name such as vllm:e2e_request_latency_seconds, got "
            f"{sli.histogram!r}",
            field="sli.latency.histogram",
        )
    for suffix in ("_bucket", "_count", "_sum"):
        if sli.histogram.endswith(suffix):
            raise SloSpecError(
                f"must be the histogram's base name, without {suffix!r}: "
                f"{sli.histogram.removesuffix(suffix)!r}",
                field="sli.latency.histogram",
            )
    if not (math.isfinite(sli.threshold_s) and sli.threshold_s > 0):
        raise SloSpecError(
            f"must be longer than zero, got {sli.threshold_s:.15g}s", field="sli.latency.threshold"
        )
    problem = check_label_selector(sli.selector)
    if problem is not None:
        raise SloSpecError(problem, field="sli.latency.selector")
    bounds = list(sli.buckets)
    if any(not (math.isfinite(b) and b > 0) for b in bounds) or bounds != sorted(set(bounds)):
        raise SloSpecError(
            "must be the histogram's finite bucket bounds, above zero, increasing, got "
            f"{', '.join(f'{b:g}' for b in bounds)}",
            field="sli.latency.buckets",
        )
    if bounds and sli.threshold_s > bounds[-1]:
        raise SloSpecError(
            f"must be at most the last finite bucket bound {bounds[-1]:g}s (nothing to "
            f"interpolate towards +Inf), got {sli.threshold_s:g}s",
            field="sli.latency.threshold",
        )
