"""The ids of the page's elements: stable, because tests and users script against them."""

from __future__ import annotations

import enum


class ElementId(enum.StrEnum):
    PAGE = "dashboard"
    LAST_UPDATED = "last-updated"
    TIME_RANGE = "time-range"
    REFRESH = "refresh-interval"
    FLEET_TABLE = "fleet-table"
    REQUESTS_CHART = "requests-chart"
    LATENCY_CHART = "latency-chart"
    ERRORS_CHART = "errors-chart"
    GPU_CHART = "gpu-chart"
    SLO_TABLE = "slo-table"
    ALERTS_TABLE = "alerts-table"
    REMEDIATIONS_TABLE = "remediations-table"
