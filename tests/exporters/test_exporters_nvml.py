"""NvmlGpuBackend: the real failure on a machine without a driver, and the field mapping.

The mapping tests replace a handful of pynvml's functions (monkeypatch, on the real module:
its constants and NVMLError classes stay real), since this machine has no GPU to read.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from exporters_doubles import exposition, parse, value, values
from prometheus_client import CollectorRegistry

from exporters import GpuBackend, GpuBackendUnavailable, GpuCollector, NvmlGpuBackend


def _nvml_initialises() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(_nvml_initialises(), reason="NVML initialises on this machine")
def test_no_driver_here_raises_a_clear_error() -> None:
    with pytest.raises(GpuBackendUnavailable) as caught:
        NvmlGpuBackend("node-0")
    error = caught.value
    assert isinstance(error.__cause__, pynvml.NVMLError_LibraryNotFound)
    assert error.reason == "libnvidia-ml.so.1 not found: no NVIDIA driver/GPU"
    assert "use the sim backend (--backend sim / --gpu-backend sim)" in str(error)


@pytest.mark.parametrize(("code", "reason"), [
    (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "the NVIDIA driver is not loaded"),
    (pynvml.NVML_ERROR_NO_PERMISSION, "no permission to open the NVIDIA devices"),
    (pynvml.NVML_ERROR_UNKNOWN, "nvmlInit failed: Unknown Error"),
])
def test_init_failures_are_explained(monkeypatch: pytest.MonkeyPatch, code: int,
                                     reason: str) -> None:
    def fail() -> None:
        raise pynvml.NVMLError(code)

    monkeypatch.setattr(pynvml, "nvmlInit", fail)
    with pytest.raises(GpuBackendUnavailable, match="NVML is not available on this machine") as c:
        NvmlGpuBackend("h")
    assert c.value.reason == reason


class FakeNvml:
    """Two GPUs as NVML would describe them; GPU 1's driver cannot deliver XID events."""

    def __init__(self) -> None:
        self.events: dict[int, deque[tuple[int, int]]] = {0: deque(), 1: deque()}
        self.failing: dict[tuple[int, str], int] = {}
        self.calls: dict[str, int] = {}
        self.freed: list[int] = []
        self.shutdowns = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def handle_of(index: int) -> int:
            return index

        def event_set_create() -> dict[str, Any]:
            return {"device": None}

        def register(handle: int, types: int, event_set: dict[str, Any]) -> None:
            assert types == pynvml.nvmlEventTypeXidCriticalError
            if handle == 1:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
            event_set["device"] = handle

        def wait(event_set: dict[str, Any], timeout_ms: int) -> Any:
            assert timeout_ms == 0  # never blocks a sample
            queue = self.events[event_set["device"]]
            if not queue:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)
            event_type, data = queue.popleft()
            return SimpleNamespace(eventType=event_type, eventData=data)

        def field(name: str, result: Any) -> Any:
            def read(handle: int, *args: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                if (handle, name) in self.failing:
                    raise pynvml.NVMLError(self.failing[(handle, name)])
                return result(handle, *args)
            return read

        mib = 2**20
        patches = {
            "nvmlInit": lambda: None,
            "nvmlShutdown": self._shutdown,
            "nvmlDeviceGetCount": lambda: 2,
            "nvmlDeviceGetHandleByIndex": handle_of,
            "nvmlDeviceGetUUID": lambda h: f"GPU-1111111{h}-2222-3333-4444-555555555555",
            "nvmlDeviceGetPciInfo": lambda h: SimpleNamespace(
                busId=f"00000000:{0x18 + h:02X}:00.0"),
            "nvmlDeviceGetName": lambda h: b"NVIDIA H100 80GB HBM3",  # older bindings: bytes
            "nvmlEventSetCreate": event_set_create,
            "nvmlDeviceRegisterEvents": register,
            "nvmlEventSetWait_v2": wait,
            "nvmlEventSetFree": lambda s: self.freed.append(s["device"]),
            "nvmlDeviceGetUtilizationRates": field(
                "util", lambda h: SimpleNamespace(gpu=87 + h, memory=40)),
            "nvmlDeviceGetMemoryInfo": field(
                "memory", lambda h: SimpleNamespace(total=81559 * mib, used=60000 * mib,
                                                    free=21559 * mib)),
            "nvmlDeviceGetTemperature": field(
                "temperature",
                lambda h, sensor: 61 if sensor == pynvml.NVML_TEMPERATURE_GPU else -1),
            "nvmlDeviceGetPowerUsage": field("power", lambda h: 512345),  # milliwatts
            "nvmlDeviceGetClockInfo": field(
                "clock",
                lambda h, kind: {pynvml.NVML_CLOCK_SM: 1980, pynvml.NVML_CLOCK_MEM: 2619}[kind]),
            "nvmlDeviceGetTotalEccErrors": field(
                "ecc", lambda h, error_type, counter: {
                    (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC): 5,
                    (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC): 1,
                    (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_AGGREGATE_ECC): 9,
                    (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_AGGREGATE_ECC): 2,
                }[(error_type, counter)]),
            "nvmlDeviceGetCurrentClocksEventReasons": field("reasons", lambda h: 0x40),
            # the wider fields: GPU 0 is an SXM board with NVLink, GPU 1 has none
            "nvmlDeviceGetTotalEnergyConsumption": field("energy", lambda h: 123456789),
            "nvmlDeviceGetPcieReplayCounter": field("replay", lambda h: 3),
            "nvmlDeviceGetEncoderUtilization": field("enc", lambda h: [0, 167000]),
            "nvmlDeviceGetDecoderUtilization": field("dec", lambda h: [4, 167000]),
            "nvmlDeviceGetViolationStatus": field(
                "violation", lambda h, policy: SimpleNamespace(
                    referenceTime=0, violationTime=(policy + 1) * 1_000_000)),  # ns
            "nvmlDeviceGetRemappedRows": field("rows", lambda h: (0, 1, 1, 0)),
            "nvmlDeviceGetPowerManagementLimit": field("limit", lambda h: 700000),
            "nvmlDeviceGetPerformanceState": field("pstate", lambda h: 0),
            "nvmlDeviceGetTemperatureThreshold": field(
                "threshold",
                lambda h, kind: {pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: 87,
                                 pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: 92}[kind]),
            "nvmlDeviceGetCurrPcieLinkGeneration": field("linkgen", lambda h: 5),
            "nvmlDeviceGetCurrPcieLinkWidth": field("linkwidth", lambda h: 16),
            "nvmlDeviceGetPcieThroughput": field(
                "pcie", lambda h, counter: 1000 if counter == pynvml.NVML_PCIE_UTIL_TX_BYTES
                else 4000),  # KB/s
            "nvmlDeviceGetFieldValues": field("field_values", self._field_values),
            # GPU 0: a serving node (two contexts of one pid) and a process NVML cannot size
            "nvmlDeviceGetComputeRunningProcesses": field(
                "processes", lambda h: [
                    SimpleNamespace(pid=4242, usedGpuMemory=50000 * mib),
                    SimpleNamespace(pid=777, usedGpuMemory=None),
                    SimpleNamespace(pid=4242, usedGpuMemory=9000 * mib),
                ] if h == 0 else []),
        }
        for name, fn in patches.items():
            monkeypatch.setattr(pynvml, name, fn)

    def _shutdown(self) -> None:
        self.shutdowns += 1

    @staticmethod
    def _field_values(handle: int, field_ids: list[int]) -> list[Any]:
        known = {
            pynvml.NVML_FI_DEV_MEMORY_TEMP: (pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, 58),
            pynvml.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: (3, 7),
            pynvml.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: (3, 0),
            pynvml.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: (3, 2),
            pynvml.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: (3, 0),
            pynvml.NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL: (3, 10**9),
        }
        results = []
        for field_id in field_ids:
            value_type, raw = known[field_id]
            nvlink = field_id != pynvml.NVML_FI_DEV_MEMORY_TEMP
            code = (pynvml.NVML_ERROR_NOT_SUPPORTED if nvlink and handle == 1
                    else pynvml.NVML_SUCCESS)
            member = "uiVal" if value_type == pynvml.NVML_VALUE_TYPE_UNSIGNED_INT else "ullVal"
            results.append(SimpleNamespace(fieldId=field_id, nvmlReturn=code, valueType=value_type,
                                           value=SimpleNamespace(**{member: raw})))
        return results


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    nvml = FakeNvml()
    nvml.install(monkeypatch)
    return nvml


def test_field_mapping(fake: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="exporters"):
        backend = NvmlGpuBackend("gpu-host")
    assert isinstance(backend, GpuBackend) and backend.name == "nvml"
    assert fake.freed == [None]  # GPU 1's event set, freed when registering failed
    assert any("GPU 1: XID events unavailable" in r.getMessage() for r in caplog.records)
    fake.events[0].extend([(pynvml.nvmlEventTypeXidCriticalError, 13),
                           (pynvml.nvmlEventTypeXidCriticalError, 79),
                           (pynvml.nvmlEventTypeXidCriticalError, 79)])
    gpu0, gpu1 = backend.sample()
    assert gpu0.uuid == "GPU-11111110-2222-3333-4444-555555555555"
    assert (gpu0.pci_bus_id, gpu1.pci_bus_id) == ("00000000:18:00.0", "00000000:19:00.0")
    assert gpu0.model_name == "NVIDIA H100 80GB HBM3"
    assert (gpu0.utilization_percent, gpu1.utilization_percent) == (87.0, 88.0)
    assert (gpu0.memory_used_bytes, gpu0.memory_total_bytes) == (60000 * 2**20, 81559 * 2**20)
    assert gpu0.temperature_celsius == 61.0
    assert gpu0.power_watts == 512.345
    assert (gpu0.sm_clock_mhz, gpu0.memory_clock_mhz) == (1980.0, 2619.0)
    assert (gpu0.ecc_sbe_volatile_total, gpu0.ecc_dbe_volatile_total) == (5, 1)
    assert gpu0.throttle_reasons == 0x40
    assert (gpu0.xid_last, gpu0.xid_total, gpu0.errors) == (79, {13: 1, 79: 2}, ())
    assert (gpu1.xid_last, gpu1.xid_total, gpu1.errors) == (0, {}, ("xid_last",))

    gpu0, _ = backend.sample()  # no new events: the last XID stays, as DCGM reports it
    assert (gpu0.xid_last, gpu0.xid_total) == (79, {13: 1, 79: 2})
    backend.close()
    assert fake.freed == [None, 0] and fake.shutdowns == 1
    with pytest.raises(RuntimeError, match="closed"):
        backend.sample()
    backend.close()  # idempotent
    assert fake.shutdowns == 1


def test_one_field_failing_never_fails_the_sample(fake: FakeNvml,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    fake.failing[(0, "temperature")] = pynvml.NVML_ERROR_UNKNOWN
    fake.failing[(1, "power")] = pynvml.NVML_ERROR_NOT_SUPPORTED
    backend = NvmlGpuBackend("h")
    with caplog.at_level(logging.WARNING, logger="exporters"):
        for _ in range(3):
            gpu0, gpu1 = backend.sample()
    assert gpu0.errors == ("temperature_celsius",)
    assert gpu1.errors == ("power_watts", "xid_last")
    assert gpu0.power_watts == 512.345 and gpu1.temperature_celsius == 61.0
    # an unsupported field is asked once; a failing one each time; each logged once
    assert fake.calls["power"] == 3 + 1
    assert fake.calls["temperature"] == 6
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot read temperature_celsius" in m for m in messages) == 1
    assert sum("cannot read power_watts" in m for m in messages) == 1

    registry = CollectorRegistry()
    registry.register(GpuCollector(backend, hostname="h"))
    families = parse(exposition(registry))
    assert [dict(k)["gpu"] for k in values(families, "DCGM_FI_DEV_GPU_TEMP")] == ["1"]
    assert [dict(k)["gpu"] for k in values(families, "DCGM_FI_DEV_POWER_USAGE")] == ["0"]
    assert value(families, "DCGM_FI_DEV_POWER_USAGE", gpu="0") == 512.345
    assert value(families, "inferops_gpu_backend_info", backend="nvml") == 1
    assert values(families, "inferops_gpu_field_errors") == {
        (("field", "power_watts"),): 1.0, (("field", "temperature_celsius"),): 1.0,
        (("field", "xid_last"),): 1.0}
    backend.close()


def test_a_lost_gpu_does_not_hide_the_others(fake: FakeNvml,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def handle_of(index: int) -> int:
        if index == 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return index

    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", handle_of)
    backend = NvmlGpuBackend("h")
    lost, fine = backend.sample()
    assert lost.uuid == "unknown" and "utilization_percent" in lost.errors
    assert "xid_last" in lost.errors
    assert fine.utilization_percent == 88.0
    backend.close()


def test_no_gpus_is_unavailable(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 0)
    with pytest.raises(GpuBackendUnavailable, match="NVML sees no GPU"):
        NvmlGpuBackend("h")
    assert fake.shutdowns == 1


def test_wider_fields_map_from_nvml_and_a_missing_nvlink_is_no_error(fake: FakeNvml) -> None:
    backend = NvmlGpuBackend("h")
    for device in backend._devices:  # as if the last PCIe read was 2 s ago
        device.pcie.read_at_s = time.monotonic() - 2.0
    gpu0, gpu1 = backend.sample()
    assert gpu0.memory_temperature_celsius == 58.0
    assert gpu0.energy_consumed_millijoules == 123456789
    assert gpu0.pcie_replays == 3
    assert (gpu0.encoder_utilization_percent, gpu0.decoder_utilization_percent) == (0.0, 4.0)
    assert gpu0.memory_copy_utilization_percent == 40.0
    assert [gpu0.power_violation_us, gpu0.thermal_violation_us, gpu0.sync_boost_violation_us,
            gpu0.board_limit_violation_us, gpu0.low_util_violation_us,
            gpu0.reliability_violation_us] == [1000, 2000, 3000, 4000, 5000, 6000]
    assert (gpu0.ecc_sbe_aggregate_total, gpu0.ecc_dbe_aggregate_total) == (9, 2)
    assert (gpu0.remapped_rows_correctable, gpu0.remapped_rows_uncorrectable,
            gpu0.row_remap_pending, gpu0.row_remap_failure) == (0, 1, True, False)
    assert (gpu0.power_limit_watts, gpu0.performance_state) == (700.0, 0)
    assert (gpu0.slowdown_temperature_celsius, gpu0.shutdown_temperature_celsius) == (87, 92)
    assert (gpu0.pcie_link_generation, gpu0.pcie_link_width) == (5, 16)
    assert (gpu0.nvlink_crc_flit_errors, gpu0.nvlink_replay_errors,
            gpu0.nvlink_bandwidth_kib) == (7, 2, 10**9)
    # the PCIe rate (KB/s) is integrated over the time since the last read: 2 s (and the
    # little the sample itself took; bounded loosely, this is no timing test)
    assert gpu0.pcie_tx_kib is not None and 2000 <= gpu0.pcie_tx_kib < 1000 * 12
    assert gpu0.pcie_rx_kib is not None and 8000 <= gpu0.pcie_rx_kib < 4000 * 12
    # GPU 1 has no NVLink: None, and not an error
    assert (gpu1.nvlink_crc_flit_errors, gpu1.nvlink_bandwidth_kib) == (None, None)
    assert gpu1.memory_temperature_celsius == 58.0
    assert gpu1.errors == ("xid_last",)

    families = parse(exposition(_registry(backend)))
    assert value(families, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", gpu="0") == 1e9
    assert [dict(k)["gpu"] for k in values(families, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL")] == [
        "0"]
    # a pending row remap (after an uncorrectable ECC error) makes the GPU unhealthy
    assert values(families, "inferops_gpu_health") == {
        (("UUID", gpu0.uuid), ("gpu", "0"), ("reason", "ecc_dbe")): 0.0,
        (("UUID", gpu1.uuid), ("gpu", "1"), ("reason", "ecc_dbe")): 0.0}
    backend.close()


def test_a_failing_wider_field_is_a_field_error_and_unsupported_is_asked_once(
    fake: FakeNvml,
) -> None:
    fake.failing[(0, "energy")] = pynvml.NVML_ERROR_UNKNOWN
    fake.failing[(1, "energy")] = pynvml.NVML_ERROR_NOT_SUPPORTED
    backend = NvmlGpuBackend("h")
    for _ in range(3):
        gpu0, gpu1 = backend.sample()
    assert "energy_consumed_millijoules" in gpu0.errors
    assert gpu0.energy_consumed_millijoules is None
    assert gpu1.energy_consumed_millijoules is None
    assert "energy_consumed_millijoules" not in gpu1.errors
    assert fake.calls["energy"] == 3 + 1  # GPU 0 each time, GPU 1 once
    families = parse(exposition(_registry(backend)))
    assert values(families, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION") == {}
    assert value(families, "inferops_gpu_field_errors",
                 field="energy_consumed_millijoules") == 1
    backend.close()


def _registry(backend: NvmlGpuBackend) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(GpuCollector(backend, hostname="h"))
    return registry
