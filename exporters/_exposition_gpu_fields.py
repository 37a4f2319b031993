"""The GPU metric families, one table shared by both ways of exporting them.

`GpuCollector` (prometheus_client's generic path) and `GpuExposition` (the direct text
renderer) both walk `FIELDS` in order, so the two can only differ in how they write, never in
what: a name, help text, type or skip rule lives here once.

Names, types and help texts follow dcgm-exporter's `etc/default-counters.csv` (rows that file
ships commented out, such as the ECC totals, the violation counters and the NVLink error
counters, are enabled); a few NVML-backed DCGM fields outside that file (FB total, power
limit, P-state, slowdown/shutdown temperatures, PCIe link, row-remap pending) carry DCGM's
field names and help texts written here. Labels are the ones dcgm-exporter puts on every GPU
series: `gpu`, `UUID`, `pci_bus_id`, `device` (`nvidia<N>`), `modelName`, `Hostname`.

A series is left out when its source field is in the sample's `errors` (unknown, not 0, as
dcgm-exporter leaves out blank fields) or is None (the GPU does not have it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

from ._gpu_sample import GpuSample

MIB = 1024 * 1024
LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname")

# NVML clocks-event reason bits that mean the GPU is too hot (pynvml's names).
CLOCKS_EVENT_REASON_SW_THERMAL_SLOWDOWN = 0x20
CLOCKS_EVENT_REASON_HW_THERMAL_SLOWDOWN = 0x40
_THERMAL_REASONS = CLOCKS_EVENT_REASON_SW_THERMAL_SLOWDOWN | CLOCKS_EVENT_REASON_HW_THERMAL_SLOWDOWN

HEALTH_REASONS = ("none", "xid", "ecc_dbe", "thermal")
"""`inferops_gpu_health`'s `reason` label: `none` when healthy, else the first cause found in
this order (an XID outranks a pending ECC row remap, which outranks thermal slowdown)."""


@dataclass(frozen=True)
class GpuField:
    """One per-GPU family: a DCGM name and where its value comes from."""

    name: str
    documentation: str
    kind: str  # "gauge" | "counter"
    source: str
    """The GpuSample field whose read error (in `errors`) hides this series."""
    value: Callable[[GpuSample], float | int | bool | None]
    also_needs: tuple[str, ...] = ()


def _attr(name: str) -> Callable[[GpuSample], float | int | bool | None]:
    getter: Callable[[GpuSample], float | int | bool | None] = attrgetter(name)
    return getter


def _fb_free(sample: GpuSample) -> int:
    return (sample.memory_total_bytes - sample.memory_used_bytes) // MIB


def _fb_used(sample: GpuSample) -> int:
    return sample.memory_used_bytes // MIB


def _fb_total(sample: GpuSample) -> int:
    return sample.memory_total_bytes // MIB


def _g(name: str, doc: str, source: str) -> GpuField:
    return GpuField(name, doc, "gauge", source, _attr(source))


def _c(name: str, doc: str, source: str) -> GpuField:
    return GpuField(name, doc, "counter", source, _attr(source))


FIELDS: tuple[GpuField, ...] = (
    _g("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "sm_clock_mhz"),
    _g("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", "memory_clock_mhz"),
    _g("DCGM_FI_DEV_MEMORY_TEMP", "Memory temperature (in C).", "memory_temperature_celsius"),
    _g("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_celsius"),
    _g("DCGM_FI_DEV_SLOWDOWN_TEMP", "Slowdown temperature for the device (in C).",
       "slowdown_temperature_celsius"),
    _g("DCGM_FI_DEV_SHUTDOWN_TEMP", "Shutdown temperature for the device (in C).",
       "shutdown_temperature_celsius"),
    _g("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_watts"),
    _g("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Current power limit for the device (in W).",
       "power_limit_watts"),
    _c("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since boot (in mJ).",
       "energy_consumed_millijoules"),
    _g("DCGM_FI_DEV_PSTATE", "Performance state (P-State) 0-15. 0=highest.",
       "performance_state"),
    _c("DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
       "Total number of bytes transmitted through PCIe TX (in KB) via NVML.", "pcie_tx_kib"),
    _c("DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
       "Total number of bytes received through PCIe RX (in KB) via NVML.", "pcie_rx_kib"),
    _c("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "Total number of PCIe retries.", "pcie_replays"),
    _g("DCGM_FI_DEV_PCIE_LINK_GEN", "PCIe current link generation.", "pcie_link_generation"),
    _g("DCGM_FI_DEV_PCIE_LINK_WIDTH", "PCIe current link width.", "pcie_link_width"),
    _g("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization_percent"),
    _g("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).",
       "memory_copy_utilization_percent"),
    _g("DCGM_FI_DEV_ENC_UTIL", "Encoder utilization (in %).", "encoder_utilization_percent"),
    _g("DCGM_FI_DEV_DEC_UTIL", "Decoder utilization (in %).", "decoder_utilization_percent"),
    _g("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", "xid_last"),
    _c("DCGM_FI_DEV_POWER_VIOLATION",
       "Throttling duration due to power constraints (in us).", "power_violation_us"),
    _c("DCGM_FI_DEV_THERMAL_VIOLATION",
       "Throttling duration due to thermal constraints (in us).", "thermal_violation_us"),
    _c("DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
       "Throttling duration due to sync-boost constraints (in us).", "sync_boost_violation_us"),
    _c("DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
       "Throttling duration due to board limit constraints (in us).",
       "board_limit_violation_us"),
    _c("DCGM_FI_DEV_LOW_UTIL_VIOLATION",
       "Throttling duration due to low utilization (in us).", "low_util_violation_us"),
    _c("DCGM_FI_DEV_RELIABILITY_VIOLATION",
       "Throttling duration due to reliability constraints (in us).",
       "reliability_violation_us"),
    GpuField("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "gauge",
             "memory_used_bytes", _fb_free, also_needs=("memory_total_bytes",)),
    GpuField("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "gauge",
             "memory_used_bytes", _fb_used),
    GpuField("DCGM_FI_DEV_FB_TOTAL", "Total framebuffer memory (in MiB).", "gauge",
             "memory_total_bytes", _fb_total, also_needs=("memory_used_bytes",)),
    _c("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Total number of single-bit volatile ECC errors.",
       "ecc_sbe_volatile_total"),
    _c("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Total number of double-bit volatile ECC errors.",
       "ecc_dbe_volatile_total"),
    _c("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "Total number of single-bit persistent ECC errors.",
       "ecc_sbe_aggregate_total"),
    _c("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "Total number of double-bit persistent ECC errors.",
       "ecc_dbe_aggregate_total"),
    _c("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
       "Total number of NVLink flow-control CRC errors.", "nvlink_crc_flit_errors"),
    _c("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
       "Total number of NVLink data CRC errors.", "nvlink_crc_data_errors"),
    _c("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "Total number of NVLink retries.",
       "nvlink_replay_errors"),
    _c("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
       "Total number of NVLink recovery errors.", "nvlink_recovery_errors"),
    _c("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
       "Total number of NVLink bandwidth counters for all lanes", "nvlink_bandwidth_kib"),
    _c("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
       "Number of remapped rows for uncorrectable errors", "remapped_rows_uncorrectable"),
    _c("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
       "Number of remapped rows for correctable errors", "remapped_rows_correctable"),
    _g("DCGM_FI_DEV_ROW_REMAP_FAILURE", "Whether remapping of rows has failed",
       "row_remap_failure"),
    _g("DCGM_FI_DEV_ROW_REMAP_PENDING", "Whether a row remap is pending (needs a GPU reset)",
       "row_remap_pending"),
    _g("DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
       "Current clock event reasons (bitmask of NVML clocks event reasons).",
       "throttle_reasons"),
)

# InferOps' own families, after the DCGM ones, in this order.
XID_TOTAL_NAME = "inferops_gpu_xid_errors"
XID_TOTAL_HELP = "XID errors reported by the GPU since the exporter started, by XID code."
HEALTH_NAME = "inferops_gpu_health"
HEALTH_HELP = ("1 if the GPU is healthy, 0 if not; reason: none, xid (an XID error is showing), "
               "ecc_dbe (an uncorrectable ECC error awaits a GPU reset), thermal (slowdown).")
PROCESS_MEMORY_NAME = "inferops_gpu_process_memory_used_bytes"
PROCESS_MEMORY_HELP = ("GPU memory used by one process (NVML compute processes), by pid and the "
                       "serving node and model it belongs to (empty when unattributed).")
PROCESS_LABELS = ("gpu", "UUID", "Hostname", "pid", "node", "model_name")
BACKEND_INFO_NAME = "inferops_gpu_backend_info"
BACKEND_INFO_HELP = "Where the GPU metrics come from: nvml (real GPUs) or sim (simulated GPUs)."
BACKEND_UP_NAME = "inferops_gpu_backend_up"
BACKEND_UP_HELP = "1 if the last GPU sample succeeded, 0 if the backend failed."
SAMPLE_ERRORS_NAME = "inferops_gpu_sample_errors"
SAMPLE_ERRORS_HELP = "GPU samples that failed as a whole (the backend raised)."
FIELD_ERRORS_NAME = "inferops_gpu_field_errors"
FIELD_ERRORS_HELP = "GPU fields that could not be read (NVML errors), by field."


def field_value(spec: GpuField, sample: GpuSample) -> float | int | bool | None:
    """The value `spec` exports for `sample`, or None when the series is left out."""
    errors = sample.errors
    if errors and (spec.source in errors or any(name in errors for name in spec.also_needs)):
        return None
    return spec.value(sample)


def gpu_health(sample: GpuSample) -> tuple[int, str]:
    """(1, "none") for a healthy GPU, else (0, reason), from this sample alone.

    Why these three: an XID showing is the driver saying the GPU misbehaved (79: fell off the
    bus); a pending row remap or a failed one means an uncorrectable (double-bit) ECC error
    that only a GPU reset clears (where the backend cannot tell, any volatile DBE counts);
    thermal slowdown means the GPU cannot hold its clocks. A field that could not be read
    proves nothing either way and is skipped.
    """
    errors = sample.errors
    if sample.xid_last and "xid_last" not in errors:
        return 0, "xid"
    if sample.row_remap_pending is None and sample.row_remap_failure is None:
        if sample.ecc_dbe_volatile_total > 0 and "ecc_dbe_volatile_total" not in errors:
            return 0, "ecc_dbe"
    elif (sample.row_remap_pending or sample.row_remap_failure) and not (
        "row_remap_pending" in errors or "row_remap_failure" in errors
    ):
        return 0, "ecc_dbe"
    if sample.throttle_reasons & _THERMAL_REASONS and "throttle_reasons" not in errors:
        return 0, "thermal"
    return 1, "none"
