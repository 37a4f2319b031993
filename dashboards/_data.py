"""The dashboard's data-access layer: PromQL and the stores in, frozen rows out, no Dash.

Kept apart from the page so every number the page shows can be checked without a browser,
and so a query that fails raises here and the page decides how to show it.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from collectors import MetricSource, RangeSeries
from slo import CostSli, parse_duration

from . import _queries
from ._cost import CostReader, CostRow, model_rows
from ._exceptions import DashboardArgumentError, TimeRangeError
from ._fleet_rows import ERROR_STATUS, read_fleet, values_by_label
from ._incidents import incidents, slo_alerts
from ._kernels import KernelDiffRow, KernelRow, ProfileReader, kernel_rows
from ._node_order import natural_sort_key
from ._records import AlertReader, AlertRecord, DecisionReader
from ._rows import (
    AlertRow,
    BurnRate,
    ChartKind,
    ChartSeries,
    FleetRow,
    Incident,
    RemediationRow,
    SloAlert,
    SloRow,
)

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus refuses range queries with more points per series; so does the dashboard."""

_ALERT_STATE_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


class DashboardData:
    """Everything the dashboard shows, read from a `MetricSource` and the two stores.

    `rate_window_s` is the `rate()` window of the fleet table (and the shortest one the
    charts use); it should span a few scrape intervals. `clock` gives "now" in unix seconds.
    `cost` is the cost SLI whose GPU prices and counters the cost page reads (None: the
    page says no cost SLO is configured); `profiles` the stored kernel profiles (None:
    the kernels page is empty).
    """

    def __init__(
        self,
        source: MetricSource,
        alerts: AlertReader,
        decisions: DecisionReader,
        *,
        rate_window_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        cost: CostSli | None = None,
        profiles: ProfileReader | None = None,
    ) -> None:
        if not (math.isfinite(rate_window_s) and rate_window_s > 0):
            raise DashboardArgumentError(
                f"rate_window_s must be a positive number of seconds, got {rate_window_s!r}"
            )
        self._source = source
        self._alerts = alerts
        self._decisions = decisions
        self._rate_window_s = rate_window_s
        self._clock = clock
        self._cost = None if cost is None else CostReader(source, cost)
        self._profiles = profiles

    @property
    def rate_window_s(self) -> float:
        return self._rate_window_s

    def now(self) -> float:
        """The current time by the injected clock (unix seconds)."""
        return self._clock()

    def fleet(self, at_s: float) -> list[FleetRow]:
        """One row per node seen in any node or router series at `at_s`, in natural order."""
        return read_fleet(self._source, at_s, self._rate_window_s)

    def slos(self, at_s: float) -> list[SloRow]:
        """One row per SLO the control plane has recorded, by name."""
        sli = self._by_label(_queries.SLO_SLI, "slo", at_s)
        objective = self._by_label(_queries.SLO_OBJECTIVE, "slo", at_s)
        budget = self._by_label(_queries.SLO_BUDGET_REMAINING, "slo", at_s)
        burn_rates: dict[str, list[BurnRate]] = defaultdict(list)
        for sample in self._source.query(_queries.SLO_BURN_RATE, at_s):
            name, window = sample.labels.get("slo"), sample.labels.get("window")
            if name is not None and window is not None and not math.isnan(sample.value):
                burn_rates[name].append(BurnRate(window=window, ratio=sample.value))
        names = set(sli) | set(objective) | set(budget) | set(burn_rates)
        return [
            SloRow(
                slo=name,
                sli_ratio=sli.get(name),
                objective_ratio=objective.get(name),
                error_budget_remaining_ratio=budget.get(name),
                burn_rates=tuple(sorted(burn_rates[name], key=_window_sort_key)),
            )
            for name in sorted(names)
        ]

    def timeseries(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[ChartSeries]:
        """`expr` as a range query, one `ChartSeries` per result series, named by its labels."""
        _check_range(start_s, end_s, step_s)
        return [
            ChartSeries(series_name(series.labels, expr), series.timestamps_s, series.values)
            for series in self._source.query_range(expr, start_s, end_s, step_s)
        ]

    def chart(
        self, kind: ChartKind, start_s: float, end_s: float, step_s: float
    ) -> list[ChartSeries]:
        """The series of one fleet chart, per node, in natural node order (as the table).

        The `rate()` window is at least one step, so that no request between two points
        goes uncounted on a wide time range.
        """
        _check_range(start_s, end_s, step_s)
        window_s = max(self._rate_window_s, step_s)
        if kind is ChartKind.REQUEST_RATE or kind is ChartKind.GPU_UTILIZATION:
            expr = (
                _queries.request_rate(window_s)
                if kind is ChartKind.REQUEST_RATE
                else _queries.GPU_UTIL_PERCENT
            )
            series = self.timeseries(expr, start_s, end_s, step_s)
            return sorted(series, key=lambda line: natural_sort_key(line.name))
        if kind is ChartKind.ERROR_BUDGET_REMAINING:
            budgets = self._source.query_range(
                _queries.SLO_BUDGET_REMAINING, start_s, end_s, step_s
            )
            return sorted(
                (
                    ChartSeries(
                        line.labels.get("slo")
                        or series_name(line.labels, _queries.SLO_BUDGET_REMAINING),
                        line.timestamps_s,
                        line.values,
                    )
                    for line in budgets
                ),
                key=lambda line: line.name,
            )
        if kind is ChartKind.COST_PER_REQUEST or kind is ChartKind.COST_PER_1K_OUTPUT_TOKENS:
            if self._cost is None:
                return []
            per_request, per_tokens = self._cost.fleet_over_time(start_s, end_s, step_s)
            return per_request if kind is ChartKind.COST_PER_REQUEST else per_tokens
        if kind is ChartKind.LATENCY:
            lines: list[ChartSeries] = []
            for quantile, suffix in ((0.5, "p50"), (0.99, "p99")):
                expr = _queries.latency_quantile(quantile, window_s)
                lines += [
                    ChartSeries(f"{line.name} {suffix}", line.timestamps_s, line.values)
                    for line in self.timeseries(expr, start_s, end_s, step_s)
                ]
            return sorted(lines, key=lambda line: natural_sort_key(line.name))
        expr = _queries.request_rate_by_status(window_s)
        return _error_ratio_lines(self._source.query_range(expr, start_s, end_s, step_s))

    @property
    def has_cost(self) -> bool:
        return self._cost is not None

    def costs(self, at_s: float) -> tuple[list[CostRow], list[CostRow]]:
        """Per node and per model, now; both empty without a cost SLI."""
        if self._cost is None:
            return [], []
        nodes = self._cost.node_rows(at_s)
        return nodes, model_rows(nodes)

    def kernels(self) -> tuple[list[KernelRow], list[KernelDiffRow]]:
        """Each node's latest kernel profile and its diff against a healthy peer (a
        profiled node no active alert names)."""
        if self._profiles is None:
            return [], []
        alerting = {node for alert in self._alerts.active() if (node := alert.labels.get("node"))}
        return kernel_rows(self._profiles.latest_per_node(), alerting)

    def alerts(self, limit: int = 50) -> list[AlertRow]:
        """Every active alert, then the most recent others: firing, pending, resolved."""
        _check_limit(limit)
        active = list(self._alerts.active())
        seen: set[tuple[str, float]] = set()
        rows: list[AlertRow] = []
        for alert in [*active, *self._alerts.recent(limit)]:
            key = (alert.fingerprint, alert.active_at_s)
            if key not in seen:
                seen.add(key)
                rows.append(_alert_row(alert))
        rows.sort(key=lambda row: (_ALERT_STATE_ORDER.get(row.state, 3), -row.active_at_s))
        return rows[: max(limit, len(active))]

    def remediations(self, limit: int = 50) -> list[RemediationRow]:
        """The most recent remediation decisions, newest first."""
        _check_limit(limit)
        rows = [
            RemediationRow(
                id=str(decision.id),
                action=str(decision.action),
                node=decision.node,
                outcome=str(decision.outcome),
                reason=decision.reason,
                guard=decision.guard,
                actor=decision.actor,
                alertname=decision.alertname,
                alert_fingerprint=decision.alert_fingerprint,
                started_at_s=decision.started_at_s,
                finished_at_s=decision.finished_at_s,
            )
            for decision in self._decisions.recent(limit)
        ]
        rows.sort(key=lambda row: -row.started_at_s)
        return rows[:limit]

    def slo_alerts(self, limit: int = 200) -> dict[str, tuple[SloAlert, ...]]:
        """SLO name -> the alerts it drives (labelled `slo=<name>`) that the store has seen
        among the active and the `limit` most recent alerts, each by its latest state."""
        _check_limit(limit)
        return slo_alerts([*self._alerts.active(), *self._alerts.recent(limit)])

    def incidents(self, limit: int = 50) -> list[Incident]:
        """Incident timelines: the `limit` most recent decisions and alerts, grouped by
        alert fingerprint, newest incident first."""
        _check_limit(limit)
        return incidents(
            [*self._alerts.active(), *self._alerts.recent(limit)],
            self._decisions.recent(limit),
        )[:limit]

    def _by_label(self, expr: str, label: str, at_s: float) -> dict[str, float]:
        return values_by_label(self._source.query(expr, at_s), label)


def series_name(labels: Mapping[str, str], expr: str) -> str:
    """A legend name: the node when there is one, else the labels, else the expression."""
    if "node" in labels:
        return labels["node"]
    shown = {key: value for key, value in labels.items() if key != "__name__"}
    if not shown:
        return expr
    return "{" + ", ".join(f'{key}="{value}"' for key, value in sorted(shown.items())) + "}"


def _window_sort_key(rate: BurnRate) -> tuple[float, str]:
    try:
        return (parse_duration(rate.window), rate.window)
    except ValueError:
        return (math.inf, rate.window)


def _error_ratio_lines(series: Sequence[RangeSeries]) -> list[ChartSeries]:
    requests: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    errors: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for one in series:
        node = one.labels.get("node")
        if node is None:
            continue
        for timestamp_s, value in zip(one.timestamps_s, one.values, strict=True):
            if math.isnan(value):
                continue
            requests[node][timestamp_s] += value
            if one.labels.get("status") == ERROR_STATUS:
                errors[node][timestamp_s] += value
    lines: list[ChartSeries] = []
    for node in sorted(requests, key=natural_sort_key):
        points = [
            (timestamp_s, errors[node].get(timestamp_s, 0.0) / total)
            for timestamp_s, total in sorted(requests[node].items())
            if total > 0
        ]
        if points:
            timestamps, values = zip(*points, strict=True)
            lines.append(ChartSeries(node, tuple(timestamps), tuple(values)))
    return lines


def _alert_row(alert: AlertRecord) -> AlertRow:
    annotations = alert.annotations
    return AlertRow(
        alertname=alert.labels.get("alertname", ""),
        node=alert.labels.get("node"),
        severity=alert.labels.get("severity"),
        state=str(alert.state),
        summary=annotations.get("summary") or annotations.get("description") or "",
        active_at_s=alert.active_at_s,
        fired_at_s=alert.fired_at_s,
        resolved_at_s=alert.resolved_at_s,
        fingerprint=alert.fingerprint,
        labels=dict(alert.labels),
    )


def _check_range(start_s: float, end_s: float, step_s: float) -> None:
    if not all(math.isfinite(value) for value in (start_s, end_s, step_s)):
        raise TimeRangeError(
            f"start_s, end_s and step_s must be finite, got {start_s!r}, {end_s!r}, {step_s!r}"
        )
    if step_s <= 0:
        raise TimeRangeError(f"step_s must be positive, got {step_s!r}")
    if end_s < start_s:
        raise TimeRangeError(f"end_s ({end_s!r}) is before start_s ({start_s!r})")
    if (end_s - start_s) / step_s + 1 > MAX_POINTS_PER_SERIES:
        raise TimeRangeError(
            f"{end_s - start_s:g} s at step_s={step_s:g} is more than "
            f"{MAX_POINTS_PER_SERIES} points; use a larger step"
        )


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise DashboardArgumentError(f"limit must be at least 1, got {limit!r}")
