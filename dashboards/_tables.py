"""The page's tables as Dash HTML: rows in, `<thead>` and `<tbody>` out.

Plain HTML tables rather than a grid widget: the page is read, not edited, and every cell
carries `data-column` (and every row `data-key`) so scripts find values without counting
columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from dash import html

from ._cost import CostRow
from ._display import (
    NO_VALUE,
    format_age,
    format_celsius,
    format_count,
    format_instant,
    format_memory,
    format_number,
    format_percent,
    format_ratio_percent,
    format_seconds,
    format_watts,
)
from ._kernels import KernelDiffRow, KernelRow
from ._rows import AlertRow, FleetRow, NodeStatus, RemediationRow, SloAlert, SloRow

Row = TypeVar("Row")

NO_DATA_YET = "no data yet"
HIGH_ERROR_RATIO = 0.05
"""Above this a node's error ratio is shown as bad; the page's only opinion on thresholds."""


@dataclass(frozen=True, slots=True)
class Column(Generic[Row]):
    """One column: its `data-column` key, header, cell text and (optional) cell class."""

    key: str
    header: str
    text: Callable[[Row], str]
    css_class: Callable[[Row], str] = lambda _row: ""


def render_table(
    columns: Sequence[Column[Row]],
    rows: Sequence[Row],
    *,
    row_key: Callable[[Row], str],
    row_class: Callable[[Row], str] = lambda _row: "",
    empty_message: str = NO_DATA_YET,
) -> list[html.Thead | html.Tbody]:
    """The children of an `html.Table`; one full-width message row when there are no rows."""
    head = html.Thead(html.Tr([html.Th(column.header) for column in columns]))
    if not rows:
        return [head, message_body(len(columns), empty_message)]
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(
                        column.text(row),
                        className=column.css_class(row),
                        **data_attribute("column", column.key),
                    )
                    for column in columns
                ],
                className=row_class(row),
                **data_attribute("key", row_key(row)),
            )
            for row in rows
        ]
    )
    return [head, body]


def data_attribute(name: str, value: str) -> dict[str, Any]:
    """A `data-*` attribute, which Dash's HTML components take as keyword arguments."""
    return {f"data-{name}": value}


def message_body(width: int, message: str) -> html.Tbody:
    return html.Tbody(
        html.Tr(
            html.Td(
                message, colSpan=width, className="message", **data_attribute("column", "message")
            )
        )
    )


def message_table(columns: Sequence[Column[Row]], message: str) -> list[html.Thead | html.Tbody]:
    """The table's header with `message` in place of rows (an error, say)."""
    return render_table(columns, [], row_key=str, empty_message=message)


def _error_class(row: FleetRow) -> str:
    return "bad" if row.error_ratio is not None and row.error_ratio > HIGH_ERROR_RATIO else ""


def _status_text(row: FleetRow) -> str:
    """The status, with what a draining node still has to finish."""
    if row.status is NodeStatus.DRAINING and row.in_flight is not None:
        return f"{row.status} ({format_count(row.in_flight)} in flight)"
    return str(row.status)


FLEET_COLUMNS: tuple[Column[FleetRow], ...] = (
    Column("node", "Node", lambda row: row.node),
    Column("status", "Status", _status_text, lambda row: f"status-{row.status}"),
    Column("requests_per_s", "Requests/s", lambda row: format_number(row.requests_per_s)),
    Column("p50_s", "p50 latency", lambda row: format_seconds(row.p50_s)),
    Column("p99_s", "p99 latency", lambda row: format_seconds(row.p99_s)),
    Column("ttft_p50_s", "TTFT p50", lambda row: format_seconds(row.ttft_p50_s)),
    Column("ttft_p99_s", "TTFT p99", lambda row: format_seconds(row.ttft_p99_s)),
    Column(
        "error_ratio", "Errors", lambda row: format_ratio_percent(row.error_ratio), _error_class
    ),
    Column("gpu_util_percent", "GPU util", lambda row: format_percent(row.gpu_util_percent)),
    Column(
        "gpu_memory",
        "GPU memory",
        lambda row: format_memory(row.gpu_memory_used_bytes, row.gpu_memory_total_bytes),
    ),
    Column(
        "gpu_temperature_celsius",
        "GPU temp",
        lambda row: format_celsius(row.gpu_temperature_celsius),
    ),
    Column("gpu_power_watts", "Power", lambda row: format_watts(row.gpu_power_watts)),
    Column("queue", "Queued", lambda row: format_count(row.queue)),
    Column("kv_usage", "KV cache", lambda row: format_ratio_percent(row.kv_usage, decimals=0)),
)

_STATUS_ROW_CLASS = {
    NodeStatus.DOWN: "row-down",
    NodeStatus.DRAINING: "row-drained",
    NodeStatus.DRAINED: "row-drained",
}


def fleet_table(rows: Sequence[FleetRow]) -> list[html.Thead | html.Tbody]:
    return render_table(
        FLEET_COLUMNS,
        rows,
        row_key=lambda row: row.node,
        row_class=lambda row: _STATUS_ROW_CLASS.get(row.status, ""),
    )


def _burn_rates_text(row: SloRow) -> str:
    if not row.burn_rates:
        return NO_VALUE
    return "  ".join(
        f"{rate.window}: {rate.ratio:.2f}\N{MULTIPLICATION SIGN}" for rate in row.burn_rates
    )


def _budget_class(row: SloRow) -> str:
    budget = row.error_budget_remaining_ratio
    if budget is None:
        return ""
    return "bad" if budget <= 0 else "warn" if budget < 0.25 else "good"


def _burn_class(row: SloRow) -> str:
    return "warn" if any(rate.ratio > 1 for rate in row.burn_rates) else ""


SLO_COLUMNS: tuple[Column[SloRow], ...] = (
    Column("slo", "SLO", lambda row: row.slo),
    Column("sli_ratio", "SLI", lambda row: format_ratio_percent(row.sli_ratio, decimals=3)),
    Column("objective_ratio", "Objective", lambda row: format_ratio_percent(row.objective_ratio)),
    Column(
        "error_budget_remaining_ratio",
        "Budget left",
        lambda row: format_ratio_percent(row.error_budget_remaining_ratio),
        _budget_class,
    ),
    Column("burn_rates", "Burn rates", _burn_rates_text, _burn_class),
)

NO_SLO_ALERTS = "none seen yet"
SLO_ALERTS_UNAVAILABLE = "unavailable"


def slo_columns(
    alerts_by_slo: Mapping[str, Sequence[SloAlert]] | None,
) -> tuple[Column[SloRow], ...]:
    """The SLO columns plus the alerts each SLO drives; `None` when the alert store could
    not be read (the SLO numbers are still shown)."""

    def alerts_text(row: SloRow) -> str:
        if alerts_by_slo is None:
            return SLO_ALERTS_UNAVAILABLE
        driven = alerts_by_slo.get(row.slo, ())
        if not driven:
            return NO_SLO_ALERTS
        return ", ".join(
            f"{alert.alertname}"
            + (f"/{alert.severity}" if alert.severity else "")
            + f" ({alert.state})"
            for alert in driven
        )

    def alerts_class(row: SloRow) -> str:
        states = {alert.state for alert in (alerts_by_slo or {}).get(row.slo, ())}
        if "firing" in states:
            return "state-firing"
        return "state-pending" if "pending" in states else ""

    return (*SLO_COLUMNS, Column("alerts", "Alerts it drives", alerts_text, alerts_class))


def slo_table(
    rows: Sequence[SloRow],
    alerts_by_slo: Mapping[str, Sequence[SloAlert]] | None = MappingProxyType({}),
) -> list[html.Thead | html.Tbody]:
    """`alerts_by_slo=None` says the alert store could not be read."""
    return render_table(slo_columns(alerts_by_slo), rows, row_key=lambda row: row.slo)


def alert_columns(now_s: float) -> tuple[Column[AlertRow], ...]:
    """The alert columns; "for" counts from `now_s` until the alert resolved."""

    def age(row: AlertRow) -> str:
        until_s = row.resolved_at_s if row.resolved_at_s is not None else now_s
        return format_age(until_s - row.active_at_s)

    return (
        Column("state", "State", lambda row: row.state, lambda row: f"state-{row.state}"),
        Column("alertname", "Alert", lambda row: row.alertname),
        Column("node", "Node", lambda row: row.node or NO_VALUE),
        Column("severity", "Severity", lambda row: row.severity or NO_VALUE),
        Column("summary", "Summary", lambda row: row.summary or NO_VALUE),
        Column("active_at_s", "Active since (UTC)", lambda row: format_instant(row.active_at_s)),
        Column("duration", "For", age),
        Column("resolved_at_s", "Resolved (UTC)", lambda row: format_instant(row.resolved_at_s)),
    )


def alerts_table(
    rows: Sequence[AlertRow], now_s: float, *, empty_message: str = "no alerts yet"
) -> list[html.Thead | html.Tbody]:
    return render_table(
        alert_columns(now_s),
        rows,
        # Not `:g`: six significant digits would give every alert of one series the same key.
        row_key=lambda row: f"{row.fingerprint}@{row.active_at_s:.15g}",
        empty_message=empty_message,
    )


REMEDIATION_COLUMNS: tuple[Column[RemediationRow], ...] = (
    Column("started_at_s", "Started (UTC)", lambda row: format_instant(row.started_at_s)),
    Column("action", "Action", lambda row: row.action),
    Column("node", "Node", lambda row: row.node),
    Column("outcome", "Outcome", lambda row: row.outcome, lambda row: f"outcome-{row.outcome}"),
    Column("alertname", "Alert", lambda row: row.alertname or NO_VALUE),
    Column("actor", "Actor", lambda row: row.actor),
    Column("guard", "Guard", lambda row: row.guard or NO_VALUE),
    Column("reason", "Reason", lambda row: row.reason),
)


def remediations_table(rows: Sequence[RemediationRow]) -> list[html.Thead | html.Tbody]:
    return render_table(
        REMEDIATION_COLUMNS,
        rows,
        row_key=lambda row: row.id,
        empty_message="no remediations yet",
    )


def _dollars(value: float | None) -> str:
    return NO_VALUE if value is None else f"${value:,.4f}"


COST_COLUMNS: tuple[Column[CostRow], ...] = (
    Column("node", "Node", lambda row: row.node or NO_VALUE),
    Column("model", "Model", lambda row: row.model or NO_VALUE),
    Column("gpu_dollars_per_hour", "GPU $/hour", lambda row: _dollars(row.gpu_dollars_per_hour)),
    Column("requests_per_s", "Requests/s", lambda row: format_number(row.requests_per_s)),
    Column(
        "output_tokens_per_s", "Output tokens/s", lambda row: format_number(row.output_tokens_per_s)
    ),
    Column("dollars_per_request", "$ per request", lambda row: _dollars(row.dollars_per_request)),
    Column(
        "dollars_per_1k_output_tokens",
        "$ per 1k output tokens",
        lambda row: _dollars(row.dollars_per_1k_output_tokens),
    ),
)
COST_MODEL_COLUMNS: tuple[Column[CostRow], ...] = COST_COLUMNS[1:]
NO_COST_SLO = "no cost SLO configured (an SLO with a cost SLI gives the GPU prices)"


def cost_table(rows: Sequence[CostRow], *, by_model: bool = False) -> list[html.Thead | html.Tbody]:
    return render_table(
        COST_MODEL_COLUMNS if by_model else COST_COLUMNS,
        rows,
        row_key=lambda row: (row.model or "") if by_model else (row.node or ""),
    )


KERNEL_COLUMNS: tuple[Column[KernelRow], ...] = (
    Column("node", "Node", lambda row: row.node),
    Column("taken_at_s", "Taken (UTC)", lambda row: format_instant(row.taken_at_s)),
    Column("seconds", "Length", lambda row: f"{row.seconds:g} s"),
    Column("device", "Device", lambda row: row.device),
    Column("top_ops", "Top ops (share of self time)", lambda row: row.top_ops),
)
KERNEL_DIFF_COLUMNS: tuple[Column[KernelDiffRow], ...] = (
    Column("node", "Node", lambda row: row.node),
    Column("peer", "Healthy peer", lambda row: row.peer or NO_VALUE),
    Column("regressed_ops", "Ops whose share rose", lambda row: row.regressed_ops),
)
NO_PROFILES = "no kernel profiles stored yet (the remediation profile step stores them)"


def kernels_table(rows: Sequence[KernelRow]) -> list[html.Thead | html.Tbody]:
    return render_table(
        KERNEL_COLUMNS, rows, row_key=lambda row: row.node, empty_message=NO_PROFILES
    )


def kernel_diff_table(rows: Sequence[KernelDiffRow]) -> list[html.Thead | html.Tbody]:
    return render_table(
        KERNEL_DIFF_COLUMNS, rows, row_key=lambda row: row.node, empty_message=NO_PROFILES
    )
