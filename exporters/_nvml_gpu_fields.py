"""The NVML reads behind dcgm-exporter's wider field set (energy, PCIe, violations, NVLink,
row remapping, limits), kept apart from `_nvml_gpu`'s core reads.

Each field is optional: a GPU that does not have it (NVML_ERROR_NOT_SUPPORTED, e.g. NVLink on
a PCIe card, or a binding without the call) gives None, which leaves the series out without
counting an error; any other NVML error puts the field in the sample's `errors`. PCIe traffic
is a rate in NVML (KB/s over the last 20 ms); it is integrated over the poll interval into the
running KiB total that dcgm-exporter's counter type and help text describe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OptionalRead = Callable[..., Any]
"""`optional(name, function_name, *args)`: the call's result, or None (see module doc)."""

# (GpuSample field, NVML field id constant) read with one nvmlDeviceGetFieldValues call
_FIELD_VALUES = (
    ("memory_temperature_celsius", "NVML_FI_DEV_MEMORY_TEMP"),
    ("nvlink_crc_flit_errors", "NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"),
    ("nvlink_crc_data_errors", "NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL"),
    ("nvlink_replay_errors", "NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL"),
    ("nvlink_recovery_errors", "NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL"),
    ("nvlink_bandwidth_kib", "NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL"),
)
_VIOLATIONS = (
    ("power_violation_us", "NVML_PERF_POLICY_POWER"),
    ("thermal_violation_us", "NVML_PERF_POLICY_THERMAL"),
    ("sync_boost_violation_us", "NVML_PERF_POLICY_SYNC_BOOST"),
    ("board_limit_violation_us", "NVML_PERF_POLICY_BOARD_LIMIT"),
    ("low_util_violation_us", "NVML_PERF_POLICY_LOW_UTILIZATION"),
    ("reliability_violation_us", "NVML_PERF_POLICY_RELIABILITY"),
)
_VALUE_MEMBERS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal")
"""c_nvmlValue_t's member for each NVML_VALUE_TYPE_* (0..5)."""


@dataclass
class PcieTotals:
    """A GPU's integrated PCIe traffic: KiB so far and when NVML was last read."""

    tx_kib: float = 0.0
    rx_kib: float = 0.0
    read_at_s: float | None = None


def read_wider_fields(
    nvml: Any, optional: OptionalRead, field_errors: Callable[[str], None],
    pcie: PcieTotals, *, clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The wider GpuSample fields of one GPU, as keyword arguments (None where absent).

    `field_errors(name)` records a per-field failure found inside a batched call.
    """
    values: dict[str, Any] = {}
    energy = optional("energy_consumed_millijoules", "nvmlDeviceGetTotalEnergyConsumption")
    values["energy_consumed_millijoules"] = None if energy is None else int(energy)
    values["pcie_replays"] = _int(optional("pcie_replays", "nvmlDeviceGetPcieReplayCounter"))
    for name, call in (("encoder_utilization_percent", "nvmlDeviceGetEncoderUtilization"),
                       ("decoder_utilization_percent", "nvmlDeviceGetDecoderUtilization")):
        result = optional(name, call)
        values[name] = None if result is None else float(result[0])  # [percent, period us]
    for name, policy in _VIOLATIONS:
        result = optional(name, "nvmlDeviceGetViolationStatus", getattr(nvml, policy))
        values[name] = None if result is None else int(result.violationTime) // 1000  # ns
    for name, error_type in (("ecc_sbe_aggregate_total", "NVML_MEMORY_ERROR_TYPE_CORRECTED"),
                             ("ecc_dbe_aggregate_total", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED")):
        values[name] = _int(optional(name, "nvmlDeviceGetTotalEccErrors",
                                     getattr(nvml, error_type), nvml.NVML_AGGREGATE_ECC))
    rows = optional("row_remap_pending", "nvmlDeviceGetRemappedRows")
    if rows is None:
        values.update(remapped_rows_correctable=None, remapped_rows_uncorrectable=None,
                      row_remap_pending=None, row_remap_failure=None)
    else:
        correctable, uncorrectable, pending, failure = rows
        values.update(remapped_rows_correctable=int(correctable),
                      remapped_rows_uncorrectable=int(uncorrectable),
                      row_remap_pending=bool(pending), row_remap_failure=bool(failure))
    limit_mw = optional("power_limit_watts", "nvmlDeviceGetPowerManagementLimit")
    values["power_limit_watts"] = None if limit_mw is None else limit_mw / 1000
    values["performance_state"] = _int(optional("performance_state",
                                                "nvmlDeviceGetPerformanceState"))
    for name, threshold in (
        ("slowdown_temperature_celsius", "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN"),
        ("shutdown_temperature_celsius", "NVML_TEMPERATURE_THRESHOLD_SHUTDOWN"),
    ):
        result = optional(name, "nvmlDeviceGetTemperatureThreshold", getattr(nvml, threshold))
        values[name] = None if result is None else float(result)
    values["pcie_link_generation"] = _int(optional("pcie_link_generation",
                                                   "nvmlDeviceGetCurrPcieLinkGeneration"))
    values["pcie_link_width"] = _int(optional("pcie_link_width",
                                              "nvmlDeviceGetCurrPcieLinkWidth"))
    values.update(_pcie_traffic(nvml, optional, pcie, clock()))
    values.update(_field_values(nvml, optional, field_errors))
    return values


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _pcie_traffic(nvml: Any, optional: OptionalRead, pcie: PcieTotals,
                  now_s: float) -> dict[str, int | None]:
    tx = optional("pcie_tx_kib", "nvmlDeviceGetPcieThroughput", nvml.NVML_PCIE_UTIL_TX_BYTES)
    rx = optional("pcie_rx_kib", "nvmlDeviceGetPcieThroughput", nvml.NVML_PCIE_UTIL_RX_BYTES)
    if pcie.read_at_s is not None:
        elapsed = max(0.0, now_s - pcie.read_at_s)
        pcie.tx_kib += (tx or 0) * elapsed  # KB/s x s
        pcie.rx_kib += (rx or 0) * elapsed
    pcie.read_at_s = now_s
    return {"pcie_tx_kib": None if tx is None else int(pcie.tx_kib),
            "pcie_rx_kib": None if rx is None else int(pcie.rx_kib)}


def _field_values(nvml: Any, optional: OptionalRead,
                  field_errors: Callable[[str], None]) -> dict[str, float | int | None]:
    found: dict[str, float | int | None] = {name: None for name, _ in _FIELD_VALUES}
    wanted = [(name, getattr(nvml, constant, None)) for name, constant in _FIELD_VALUES]
    wanted = [(name, field_id) for name, field_id in wanted if field_id is not None]
    results = optional("field_values", "nvmlDeviceGetFieldValues", [i for _, i in wanted])
    if results is None:
        return found
    for (name, _), result in zip(wanted, results, strict=False):
        code = int(result.nvmlReturn)
        if code == nvml.NVML_ERROR_NOT_SUPPORTED:
            continue
        if code != nvml.NVML_SUCCESS:
            field_errors(name)
            continue
        member = _VALUE_MEMBERS[int(result.valueType)] if int(result.valueType) < 6 else "ullVal"
        raw = getattr(result.value, member)
        found[name] = float(raw) if name == "memory_temperature_celsius" else int(raw)
    return found
