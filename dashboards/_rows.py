"""What the data-access layer hands the page: plain frozen values, units in the field names.

`None` always means "no data" (no series, or a ratio over zero requests), never zero, so the
page can tell an idle node from one it knows nothing about.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class NodeStatus(enum.StrEnum):
    """What the fleet does with a node, as the router sees it and its scrape confirms.

    `down` wins over the router's drain state: an engineer must see first that the node
    does not answer, whatever an admin asked of it.
    """

    SERVING = "serving"
    DRAINING = "draining"
    """Drained by an admin (no new requests) with requests still in flight."""
    DRAINED = "drained"
    """Drained and idle: safe to restart."""
    DOWN = "down"
    """Its scrape failed, or the router's health check did."""
    UNKNOWN = "unknown"
    """Neither the router nor a scrape says anything about it."""


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One inference node at one instant."""

    node: str
    up: bool | None
    """Whether the node's own `/metrics` scrape succeeded (`up{job="nodes"}`)."""
    requests_per_s: float | None
    p50_s: float | None
    p99_s: float | None
    error_ratio: float | None
    gpu_util_percent: float | None
    queue: float | None
    """Requests waiting for a slot (`vllm:num_requests_waiting`)."""
    kv_usage: float | None
    """KV-cache usage as a ratio, 0..1 (`vllm:kv_cache_usage_perc`)."""
    status: NodeStatus = NodeStatus.UNKNOWN
    ttft_p50_s: float | None = None
    """Time to first token, median (`vllm:time_to_first_token_seconds`)."""
    ttft_p99_s: float | None = None
    gpu_temperature_celsius: float | None = None
    """The hottest GPU of the node (`DCGM_FI_DEV_GPU_TEMP`)."""
    gpu_power_watts: float | None = None
    """All GPUs of the node together (`DCGM_FI_DEV_POWER_USAGE`)."""
    gpu_memory_used_bytes: float | None = None
    """All GPUs of the node together (`DCGM_FI_DEV_FB_USED`, MiB in DCGM)."""
    gpu_memory_total_bytes: float | None = None
    """Used plus free framebuffer (`DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE`)."""
    in_flight: float | None = None
    """Requests the router has outstanding on the node (`inferops_router_in_flight`)."""


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
class SloAlert:
    """One alert an SLO drives (an alert labelled `slo=<name>`) and its latest state."""

    alertname: str
    severity: str | None
    state: str
    """`firing`, `pending` or `resolved`: the latest instance of that alert."""


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


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One line of an incident timeline: an alert transition or a remediation decision."""

    at_s: float
    kind: str
    """`pending`, `firing`, `resolved` (the alert) or `decision`."""
    text: str
    outcome: str | None = None
    """For a decision: `succeeded`, `failed`, `refused`, `dry_run`."""


@dataclass(frozen=True, slots=True)
class Incident:
    """Everything that happened about one alert (by fingerprint), oldest event first."""

    key: str
    """The alert fingerprint, or `decision-<id>` for a decision no alert asked for."""
    alertname: str | None
    node: str | None
    events: tuple[IncidentEvent, ...]

    @property
    def started_at_s(self) -> float:
        return self.events[0].at_s if self.events else 0.0


class ChartKind(enum.StrEnum):
    """The charts the pages draw, one per question an on-call engineer asks."""

    REQUEST_RATE = "request-rate"
    LATENCY = "latency"
    ERROR_RATIO = "error-ratio"
    GPU_UTILIZATION = "gpu-utilization"
    ERROR_BUDGET_REMAINING = "error-budget-remaining"
    """One line per SLO: `slo:error_budget_remaining:ratio` (the burn-down chart)."""
    COST_PER_REQUEST = "cost-per-request"
    """GPU dollars per request, by the cost SLO's definition."""
    COST_PER_1K_OUTPUT_TOKENS = "cost-per-1k-output-tokens"


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One line of a chart: a legend name and parallel timestamps and values."""

    name: str
    timestamps_s: tuple[float, ...]
    values: tuple[float, ...]
