"""What the data-access layer hands the page: plain frozen values, units in the field names.

`None` always means "no data" (no series, or a ratio over zero requests), never zero, so the
page can tell an idle node from one it knows nothing about.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One inference node at one instant."""

    node: str
    up: bool | None
    requests_per_s: float | None
    p50_s: float | None
    p99_s: float | None
    error_ratio: float | None
    gpu_util_percent: float | None
    queue: float | None
    """Requests waiting for a slot (`vllm:num_requests_waiting`)."""
    kv_usage: float | None
    """KV-cache usage as a ratio, 0..1 (`vllm:kv_cache_usage_perc`)."""


@dataclass(frozen=True, slots=True)
class BurnRate:
    """How fast one SLO spends its error budget over one window (1.0 spends it exactly)."""

    window: str
    ratio: float


@dataclass(frozen=True, slots=True)
class SloRow:
    """One SLO as the control plane last recorded it (`slo:*:ratio` series)."""

    slo: str
    sli_ratio: float | None
    objective_ratio: float | None
    error_budget_remaining_ratio: float | None
    burn_rates: tuple[BurnRate, ...] = ()
    """Shortest window first."""


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert instance, with the labels an on-call engineer reads first pulled out."""

    alertname: str
    node: str | None
    severity: str | None
    state: str
    summary: str
    active_at_s: float
    fired_at_s: float | None
    resolved_at_s: float | None
    fingerprint: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemediationRow:
    """One remediation decision, taken or refused, with the reason it was."""

    id: str
    action: str
    node: str
    outcome: str
    reason: str
    guard: str | None
    actor: str
    alertname: str | None
    alert_fingerprint: str | None
    started_at_s: float
    finished_at_s: float | None


class ChartKind(enum.StrEnum):
    """The fleet charts the page draws, one per question an on-call engineer asks."""

    REQUEST_RATE = "request-rate"
    LATENCY = "latency"
    ERROR_RATIO = "error-ratio"
    GPU_UTILIZATION = "gpu-utilization"


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One line of a chart: a legend name and parallel timestamps and values."""

    name: str
    timestamps_s: tuple[float, ...]
    values: tuple[float, ...]
