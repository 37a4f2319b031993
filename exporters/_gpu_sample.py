"""The GPU measurement that flows from a backend to the collector.

Measuring is kept apart from exporting: a backend only produces `GpuSample`s, and
`GpuCollector` turns them into dcgm-exporter-named metric families at scrape time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """One process holding memory on a GPU (NVML's compute running processes)."""

    pid: int
    memory_used_bytes: int


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

    # The rest of dcgm-exporter's NVML-backed fields. None: this GPU or backend does not have
    # the field (NVLink on a PCIe card, HBM temperature on GDDR); its series is left out and it
    # is not an error. Counters are totals since the driver loaded (or the simulation started).
    memory_temperature_celsius: float | None = None
    energy_consumed_millijoules: int | None = None
    pcie_tx_kib: int | None = None
    """Bytes sent over PCIe, in KiB (dcgm-exporter's DCGM_FI_DEV_PCIE_TX_THROUGHPUT counter)."""
    pcie_rx_kib: int | None = None
    pcie_replays: int | None = None
    memory_copy_utilization_percent: float | None = None
    encoder_utilization_percent: float | None = None
    decoder_utilization_percent: float | None = None
    power_violation_us: int | None = None
    """Time the clocks were held down by the power limit, in microseconds (as DCGM)."""
    thermal_violation_us: int | None = None
    sync_boost_violation_us: int | None = None
    board_limit_violation_us: int | None = None
    low_util_violation_us: int | None = None
    reliability_violation_us: int | None = None
    ecc_sbe_aggregate_total: int | None = None
    ecc_dbe_aggregate_total: int | None = None
    nvlink_bandwidth_kib: int | None = None
    """NVLink traffic over all links, in KiB; None on a GPU without NVLink."""
    nvlink_crc_flit_errors: int | None = None
    nvlink_crc_data_errors: int | None = None
    nvlink_replay_errors: int | None = None
    nvlink_recovery_errors: int | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    row_remap_pending: bool | None = None
    """A row remap waits for a GPU reset (after an uncorrectable ECC error)."""
    row_remap_failure: bool | None = None
    power_limit_watts: float | None = None
    performance_state: int | None = None
    """NVML P-state: 0 (maximum performance) .. 15."""
    slowdown_temperature_celsius: float | None = None
    shutdown_temperature_celsius: float | None = None
    pcie_link_generation: int | None = None
    pcie_link_width: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    """Processes using the GPU and their memory, by pid (empty when NVML cannot tell)."""


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
