"""The GPU measurement that flows from a backend to the collector.

Measuring is kept apart from exporting: a backend only produces `GpuSample`s, and
`GpuCollector` turns them into dcgm-exporter-named metric families at scrape time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU at one instant. Units are in the field names."""

    index: int
    uuid: str
    pci_bus_id: str
    model_name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_celsius: float
    power_watts: float
    sm_clock_mhz: float
    memory_clock_mhz: float
    xid_last: int = 0
    """The last XID error code seen (0: none), as dcgm-exporter's DCGM_FI_DEV_XID_ERRORS."""
    xid_total: dict[int, int] = field(default_factory=dict)
    """XID errors seen since start, by code."""
    ecc_sbe_volatile_total: int = 0
    ecc_dbe_volatile_total: int = 0
    throttle_reasons: int = 0
    """NVML clocks-event-reasons bitmask (0: not throttled)."""
    errors: tuple[str, ...] = ()
    """Fields that could not be read this time (an NVML error on one field never kills a scrape)."""


@runtime_checkable
class GpuBackend(Protocol):
    """Where GPU samples come from: NVML on a real GPU, or a simulation on a CPU box."""

    @property
    def name(self) -> str:
        """`nvml` or `sim`: exported so a dashboard never mistakes simulated GPUs for real ones."""
        ...

    def sample(self) -> list[GpuSample]:
        """Read every GPU now."""
        ...

    def close(self) -> None:
        """Release the library handle."""
        ...
