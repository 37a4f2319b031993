"""SLO status now: SLI, error budget left and burn rates, computed through a MetricSource."""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors import ScrapedSample

from ._exceptions import SloError
from ._sli_queries import event_rate_queries, window_error_ratio_expr
from ._spec import LatencySli, RatioSli, SloSpec
from ._timeslice_sli import TIMESLICE_RECORD, timeslice_bad_expr
from ._windows import BurnRateWindow

logger = logging.getLogger("inferops.slo")

if TYPE_CHECKING:
    # The lead's contract module; `collectors` re-exports it once its package is written.
    from collectors._source import MetricSource


@dataclass(frozen=True, slots=True)
class SloStatus:
    """One SLO at one instant.

    `sli_value` and `error_budget_remaining` are over the SLO window (None when there were
    no events in it); the budget goes negative once overspent. `burn_rates` maps each window
    (seconds) of the burn-rate windows to error ratio / (1 - objective); windows without
    events are left out.
    """

    name: str
    objective: float
    sli_value: float | None
    error_budget_remaining: float | None
    burn_rates: Mapping[float, float]
    group: Mapping[str, str] = field(default_factory=dict)
    """The `group_by` labels' values of this status (empty for a whole-SLO status)."""


GroupKey = tuple[tuple[str, str], ...]


def period_window_s(spec: SloSpec, at_s: float) -> float:
    """The SLO window ending at `at_s`: rolling, or the calendar month so far (UTC)."""
    if spec.calendar != "month":
        return spec.window_s
    now = datetime.datetime.fromtimestamp(at_s, tz=datetime.UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return at_s - first.timestamp()


class SloEvaluator:
    """Evaluates specs with instant queries, the same PromQL the generated rules record."""

    def __init__(self, source: MetricSource) -> None:
        self._source = source

    def evaluate(
        self, spec: SloSpec, at_s: float, windows: Sequence[BurnRateWindow] = ()
    ) -> SloStatus:
        """Errors of the source (a failing query) propagate; no traffic gives None values."""
        error_budget = 1.0 - spec.objective
        period_s = period_window_s(spec, at_s)
        period_ratio = self.error_ratio(spec, period_s, at_s) if period_s > 0 else None
        burn_rates: dict[float, float] = {}
        for window_s in sorted(
            {w for pair in windows for w in (pair.long_window_s, pair.short_window_s)}
        ):
            ratio = self.error_ratio(spec, window_s, at_s)
            if ratio is not None:
                burn_rates[window_s] = ratio / error_budget
        return SloStatus(
            name=spec.name,
            objective=spec.objective,
            sli_value=None if period_ratio is None else 1.0 - period_ratio,
            error_budget_remaining=(
                None if period_ratio is None else 1.0 - period_ratio / error_budget
            ),
            burn_rates=burn_rates,
        )

    def evaluate_all(
        self, spec: SloSpec, at_s: float, windows: Sequence[BurnRateWindow] = ()
    ) -> list[SloStatus]:
        """One status per group of a `group_by` spec (sorted by labels), else `[evaluate()]`."""
        if not spec.group_by:
            return [self.evaluate(spec, at_s, windows)]
        error_budget = 1.0 - spec.objective
        period_s = period_window_s(spec, at_s)
        period = self.group_error_ratios(spec, period_s, at_s) if period_s > 0 else {}
        burn_rates: dict[GroupKey, dict[float, float]] = {}
        for window_s in sorted(
            {w for pair in windows for w in (pair.long_window_s, pair.short_window_s)}
        ):
            for key, ratio in self.group_error_ratios(spec, window_s, at_s).items():
                burn_rates.setdefault(key, {})[window_s] = ratio / error_budget
        statuses = []
        for key in sorted(set(period) | set(burn_rates)):
            period_ratio = period.get(key)
            statuses.append(
                SloStatus(
                    name=spec.name,
                    objective=spec.objective,
                    sli_value=None if period_ratio is None else 1.0 - period_ratio,
                    error_budget_remaining=(
                        None if period_ratio is None else 1.0 - period_ratio / error_budget
                    ),
                    burn_rates=burn_rates.get(key, {}),
                    group=dict(key),
                )
            )
        return statuses

    def group_error_ratios(
        self, spec: SloSpec, window_s: float, at_s: float
    ) -> dict[GroupKey, float]:
        """Error ratio per `group_by` group with events in the window."""
        if not isinstance(spec.sli, RatioSli | LatencySli):
            raise SloError(f"SLO {spec.name!r}: group_by needs a ratio or latency SLI")
        queries = event_rate_queries(spec.sli, window_s, spec.group_by)
        totals = self._by_group(queries.total, at_s, spec.group_by)
        counted = self._by_group(queries.counted, at_s, spec.group_by)
        ratios: dict[GroupKey, float] = {}
        for key, total in totals.items():
            if total <= 0:
                continue
            if not queries.counted_are_good:
                ratios[key] = counted.get(key, 0.0) / total
            elif key in counted or isinstance(spec.sli, RatioSli):
                ratios[key] = 1.0 - counted.get(key, 0.0) / total
        return ratios

    def _by_group(self, expr: str, at_s: float, by: tuple[str, ...]) -> dict[GroupKey, float]:
        return {
            tuple((name, sample.labels.get(name, "")) for name in by): sample.value
            for sample in self._source.query(expr, at_s)
            if math.isfinite(sample.value)
        }

    def error_ratio(self, spec: SloSpec, window_s: float, at_s: float) -> float | None:
        """Share of bad events over `window_s` ending at `at_s`; None without events.

        The two rates are queried apart so that a service which never failed (and so has no
        error series at all) reads 0 rather than nothing.
        """
        if not isinstance(spec.sli, RatioSli | LatencySli):
            return self._rate(window_error_ratio_expr(spec, window_s), at_s)
        queries = event_rate_queries(spec.sli, window_s)
        total = self._rate(queries.total, at_s)
        if total is None or total <= 0:
            return None
        counted = self._rate(queries.counted, at_s)
        if not queries.counted_are_good:
            return (counted or 0.0) / total
        if counted is None and isinstance(spec.sli, RatioSli):
            counted = 0.0  # no good-event series at all: every event failed
        if counted is None:
            raise SloError(
                f"SLO {spec.name!r}: {queries.total} has events but {queries.counted} is empty: "
                "the latency threshold must be one of the histogram's bucket bounds"
            )
        return 1.0 - counted / total

    def timeslice_samples(self, specs: Sequence[SloSpec], at_s: float) -> list[ScrapedSample]:
        """The per-slice SLIs judged at `at_s`, as `slo:timeslice_bad:bool` samples to store.

        What the generated recording rule does in Prometheus: the control plane appends them
        to its store every round before the alert rules read them. A slice without demand
        gives no sample; a failing query is logged and that SLO skipped this round.
        """
        samples: list[ScrapedSample] = []
        for spec in specs:
            if isinstance(spec.sli, RatioSli | LatencySli):
                continue
            try:
                answer = self._source.query(timeslice_bad_expr(spec.sli), at_s)
            except Exception:
                logger.exception("SLO %s: judging the slice at %.3f failed", spec.name, at_s)
                continue
            values = [sample.value for sample in answer if math.isfinite(sample.value)]
            if values:
                labels = dict(sorted({**spec.labels, "slo": spec.name}.items()))
                samples.append(ScrapedSample(TIMESLICE_RECORD, labels, max(values), at_s))
        return samples

    def _rate(self, expr: str, at_s: float) -> float | None:
        values = [sample.value for sample in self._source.query(expr, at_s)]
        if not values or not all(math.isfinite(value) for value in values):
            return None
        return math.fsum(values)
