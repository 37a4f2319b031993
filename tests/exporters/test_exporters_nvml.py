"""NvmlGpuBackend: the real failure on a machine without a driver, and the field mapping.

The mapping tests replace a handful of pynvml's functions (monkeypatch, on the real module:
its constants and NVMLError classes stay real), since this machine has no GPU to read.
"""

from __future__ import annotations

import logging
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
                }[(error_type, counter)]),
            "nvmlDeviceGetCurrentClocksEventReasons": field("reasons", lambda h: 0x40),
        }
        for name, fn in patches.items():
            monkeypatch.setattr(pynvml, name, fn)

    def _shutdown(self) -> None:
        self.shutdowns += 1


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
