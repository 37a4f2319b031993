"""The query side of the telemetry pipeline, shared by the embedded store and Prometheus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class InstantSample:
    """One element of an instant vector (or a scalar, with empty labels)."""

    labels: Mapping[str, str]
    value: float
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range query: parallel lists of timestamps and values."""

    labels: Mapping[str, str]
    timestamps_s: tuple[float, ...]
    values: tuple[float, ...]


@runtime_checkable
class MetricSource(Protocol):
    """PromQL over some store. Implementations: `StoreSource` (embedded), `PrometheusSource`."""

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        """Evaluate `expr` as an instant query at `at_s` (unix seconds)."""
        ...

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        """Evaluate `expr` at every step in [start_s, end_s]."""
        ...
