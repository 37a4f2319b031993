"""What an SLO is: an objective for the share of good events over a rolling window."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._exceptions import SloSpecError
from ._promql import check_label_selector, check_vector_selector, is_metric_name

DEFAULT_WINDOW_S = 30 * 86_400.0

_SLO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Set by the generated rules themselves; a spec label of the same name would be overwritten.
RESERVED_LABELS = ("alertname", "severity", "slo")


@dataclass(frozen=True, slots=True)
class RatioSli:
    """Bad events over all events, both PromQL vector selectors of counters."""

    bad: str
    total: str


@dataclass(frozen=True, slots=True)
class LatencySli:
    """Events slower than `threshold_s` in a Prometheus histogram (base name, no `_bucket`).

    `threshold_s` must be one of the histogram's bucket bounds: the good events are read
    from the bucket `le="<threshold>"` as written by Prometheus clients (2.5 -> "2.5"),
    with no interpolation between buckets.
    """

    histogram: str
    threshold_s: float
    selector: str = ""


@dataclass(frozen=True, slots=True)
class SloSpec:
    name: str
    objective: float
    sli: RatioSli | LatencySli
    window_s: float = DEFAULT_WINDOW_S
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

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
        if isinstance(self.sli, RatioSli):
            _validate_ratio(self.sli)
        else:
            _validate_latency(self.sli)


def _validate_ratio(sli: RatioSli) -> None:
    for name, text in (("bad", sli.bad), ("total", sli.total)):
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
