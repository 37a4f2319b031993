"""SLO status now: SLI, error budget left and burn rates, computed through a MetricSource."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._exceptions import SloError
from ._sli_queries import event_rate_queries
from ._spec import SloSpec
from ._windows import BurnRateWindow

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


class SloEvaluator:
    """Evaluates specs with instant queries, the same PromQL the generated rules record."""

    def __init__(self, source: MetricSource) -> None:
        self._source = source

    def evaluate(
        self, spec: SloSpec, at_s: float, windows: Sequence[BurnRateWindow] = ()
    ) -> SloStatus:
        """Errors of the source (a failing query) propagate; no traffic gives None values."""
        error_budget = 1.0 - spec.objective
        period_ratio = self.error_ratio(spec, spec.window_s, at_s)
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

    def error_ratio(self, spec: SloSpec, window_s: float, at_s: float) -> float | None:
        """Share of bad events over `window_s` ending at `at_s`; None without events.

        The two rates are queried apart so that a service which never failed (and so has no
        error series at all) reads 0 rather than nothing.
        """
        queries = event_rate_queries(spec.sli, window_s)
        total = self._rate(queries.total, at_s)
        if total is None or total <= 0:
            return None
        counted = self._rate(queries.counted, at_s)
        if not queries.counted_are_good:
            return (counted or 0.0) / total
        if counted is None:
            raise SloError(
                f"SLO {spec.name!r}: {queries.total} has events but {queries.counted} is empty: "
                "the latency threshold must be one of the histogram's bucket bounds"
            )
        return 1.0 - counted / total

    def _rate(self, expr: str, at_s: float) -> float | None:
        values = [sample.value for sample in self._source.query(expr, at_s)]
        if not values or not all(math.isfinite(value) for value in values):
            return None
        return math.fsum(values)
