"""Real GPUs through NVML (nvidia-ml-py's `pynvml`).

One NVML error on one field of one GPU never fails a sample: the field keeps a neutral value,
its name goes into `GpuSample.errors` (the collector then leaves that series out and counts
the failure), and the error is logged once per GPU, field and error kind.

XID errors come from NVML events: an event set per GPU registered for
`nvmlEventTypeXidCriticalError`, drained without blocking (timeout 0) on each sample. Where
the GPU or driver does not support the events, `xid_last` stays 0 and every sample lists
`xid_last` in `errors`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import GpuBackendUnavailable
from ._gpu_sample import GpuProcess, GpuSample
from ._nvml_gpu_fields import PcieTotals, read_wider_fields

logger = logging.getLogger("exporters.nvml")

_MAX_EVENTS_PER_SAMPLE = 256
_SIM_HINT = "use the sim backend (--backend sim / --gpu-backend sim) for simulated GPUs"


def _pynvml() -> Any:
    try:
        import pynvml
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise GpuBackendUnavailable(
            f"NVML is not available: nvidia-ml-py is not installed ({error}); {_SIM_HINT}",
            reason="nvidia-ml-py not installed",
        ) from error
    return pynvml


def _unavailable(nvml: Any, error: Exception) -> GpuBackendUnavailable:
    value = getattr(error, "value", None)
    if value == nvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        reason = "libnvidia-ml.so.1 not found: no NVIDIA driver/GPU"
    elif value == nvml.NVML_ERROR_DRIVER_NOT_LOADED:
        reason = "the NVIDIA driver is not loaded"
    elif value == nvml.NVML_ERROR_NO_PERMISSION:
        reason = "no permission to open the NVIDIA devices"
    elif value == nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        reason = "NVML library / kernel driver version mismatch (reload the driver or reboot)"
    else:
        reason = f"nvmlInit failed: {error}"
    return GpuBackendUnavailable(
        f"NVML is not available on this machine ({reason}); {_SIM_HINT}", reason=reason
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Device:
    index: int
    handle: Any
    uuid: str
    pci_bus_id: str
    model_name: str
    event_set: Any = None
    xid_last: int = 0
    xid_total: dict[int, int] = field(default_factory=dict)
    unsupported: set[str] = field(default_factory=set)
    logged: set[tuple[str, int]] = field(default_factory=set)
    pcie: PcieTotals = field(default_factory=PcieTotals)


class NvmlGpuBackend:
    """Every GPU NVML sees on this machine; `name` is `nvml`.

    Raises GpuBackendUnavailable, with the cause and what to do instead, when NVML cannot be
    initialised (no driver, no GPU, no library) or sees no GPU.
    """

    name = "nvml"

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        nvml = self._nvml = _pynvml()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise _unavailable(nvml, error) from error
        self._lock = threading.Lock()
        self._closed = False
        try:
            count = int(nvml.nvmlDeviceGetCount())
            if count == 0:
                raise GpuBackendUnavailable(
                    f"NVML is not available on this machine (NVML sees no GPU); {_SIM_HINT}",
                    reason="NVML sees no GPU",
                )
            self._devices = [self._open(i) for i in range(count)]
        except nvml.NVMLError as error:
            self._shutdown()
            raise GpuBackendUnavailable(
                f"NVML initialised but listing the GPUs failed ({error}); {_SIM_HINT}",
                reason=f"listing GPUs failed: {error}",
            ) from error
        except GpuBackendUnavailable:
            self._shutdown()
            raise

    @property
    def model_names(self) -> list[str]:
        return [device.model_name for device in self._devices]

    def _open(self, index: int) -> _Device:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError as error:
            # A GPU that is already lost (XID 79, ...) must not hide the others: it stays in
            # the list with every field in `errors`.
            logger.warning("GPU %d: nvmlDeviceGetHandleByIndex failed: %s", index, error)
            return _Device(index=index, handle=None, uuid="unknown", pci_bus_id="unknown",
                           model_name="unknown")
        device = _Device(index=index, handle=handle, uuid="", pci_bus_id="", model_name="")
        device.uuid = self._static(device, "uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle)))
        device.pci_bus_id = self._static(
            device, "pci_bus_id", lambda: _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
        )
        device.model_name = self._static(
            device, "model_name", lambda: _text(nvml.nvmlDeviceGetName(handle))
        )
        try:
            event_set = nvml.nvmlEventSetCreate()
            try:
                nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, event_set)
            except nvml.NVMLError:
                nvml.nvmlEventSetFree(event_set)
                raise
            device.event_set = event_set
        except nvml.NVMLError as error:
            device.unsupported.add("xid_last")
            logger.warning(
                "GPU %d: XID events unavailable (%s); DCGM_FI_DEV_XID_ERRORS is left out and "
                "counted in inferops_gpu_field_errors_total{field=\"xid_last\"}", index, error
            )
        return device

    def _static(self, device: _Device, name: str, read: Any) -> str:
        try:
            return str(read())
        except self._nvml.NVMLError as error:
            logger.warning("GPU %d: cannot read %s: %s", device.index, name, error)
            return "unknown"

    # -- GpuBackend -----------------------------------------------------------------------

    def sample(self) -> list[GpuSample]:
        with self._lock:
            if self._closed:
                raise RuntimeError("NvmlGpuBackend is closed")
            return [self._sample(device) for device in self._devices]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for device in self._devices:
                if device.event_set is not None:
                    try:
                        self._nvml.nvmlEventSetFree(device.event_set)
                    except self._nvml.NVMLError as error:
                        logger.debug("GPU %d: nvmlEventSetFree: %s", device.index, error)
            self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as error:
            logger.debug("nvmlShutdown: %s", error)

    # -- one GPU --------------------------------------------------------------------------

    def _sample(self, device: _Device) -> GpuSample:
        nvml = self._nvml
        handle = device.handle
        errors: list[str] = []

        def read(name: str, fn: Any, *args: Any) -> Any:
            if handle is None or name in device.unsupported:
                errors.append(name)
                return None
            try:
                return fn(handle, *args)
            except nvml.NVMLError as error:
                errors.append(name)
                code = getattr(error, "value", -1)
                if code == nvml.NVML_ERROR_NOT_SUPPORTED:
                    device.unsupported.add(name)
                if (name, code) not in device.logged:
                    device.logged.add((name, code))
                    logger.warning("GPU %d: cannot read %s: %s", device.index, name, error)
                return None

        utilization = read("utilization_percent", nvml.nvmlDeviceGetUtilizationRates)
        memory = read("memory_used_bytes", nvml.nvmlDeviceGetMemoryInfo)
        temperature = read("temperature_celsius", nvml.nvmlDeviceGetTemperature,
                           nvml.NVML_TEMPERATURE_GPU)
        power_mw = read("power_watts", nvml.nvmlDeviceGetPowerUsage)
        sm_clock = read("sm_clock_mhz", nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM)
        mem_clock = read("memory_clock_mhz", nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_MEM)
        sbe = read("ecc_sbe_volatile_total", nvml.nvmlDeviceGetTotalEccErrors,
                   nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC)
        dbe = read("ecc_dbe_volatile_total", nvml.nvmlDeviceGetTotalEccErrors,
                   nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC)
        reasons = read("throttle_reasons", _clocks_event_reasons(nvml))

        def optional(name: str, function_name: str, *args: Any) -> Any:
            # a field this GPU lacks is None and no error; other failures are per-field errors
            fn = getattr(nvml, function_name, None)
            if fn is None or name in device.unsupported:
                return None
            if handle is None:
                errors.append(name)
                return None
            try:
                return fn(handle, *args)
            except nvml.NVMLError as error:
                code = getattr(error, "value", -1)
                if code == nvml.NVML_ERROR_NOT_SUPPORTED:
                    device.unsupported.add(name)
                    return None
                errors.append(name)
                if (name, code) not in device.logged:
                    device.logged.add((name, code))
                    logger.warning("GPU %d: cannot read %s: %s", device.index, name, error)
                return None

        wider = read_wider_fields(nvml, optional, errors.append, device.pcie)
        running = optional("processes", "nvmlDeviceGetComputeRunningProcesses")
        if utilization is None:
            errors.append("memory_copy_utilization_percent")
        self._drain_xid_events(device, errors)
        return GpuSample(
            index=device.index,
            uuid=device.uuid,
            pci_bus_id=device.pci_bus_id,
            model_name=device.model_name,
            utilization_percent=float(utilization.gpu) if utilization is not None else 0.0,
            memory_used_bytes=int(memory.used) if memory is not None else 0,
            memory_total_bytes=int(memory.total) if memory is not None else 0,
            temperature_celsius=float(temperature) if temperature is not None else 0.0,
            power_watts=power_mw / 1000 if power_mw is not None else 0.0,
            sm_clock_mhz=float(sm_clock) if sm_clock is not None else 0.0,
            memory_clock_mhz=float(mem_clock) if mem_clock is not None else 0.0,
            xid_last=device.xid_last,
            xid_total=dict(device.xid_total),
            ecc_sbe_volatile_total=int(sbe) if sbe is not None else 0,
            ecc_dbe_volatile_total=int(dbe) if dbe is not None else 0,
            throttle_reasons=int(reasons) if reasons is not None else 0,
            errors=tuple(errors),
            memory_copy_utilization_percent=(
                float(utilization.memory) if utilization is not None else None),
            processes=_processes(running),
            **wider,
        )

    def _drain_xid_events(self, device: _Device, errors: list[str]) -> None:
        nvml = self._nvml
        if device.event_set is None:
            errors.append("xid_last")
            return
        for _ in range(_MAX_EVENTS_PER_SAMPLE):
            try:
                data = nvml.nvmlEventSetWait_v2(device.event_set, 0)
            except nvml.NVMLError as error:
                if getattr(error, "value", None) == nvml.NVML_ERROR_TIMEOUT:
                    return  # no (more) events pending
                errors.append("xid_last")
                if ("xid_last", error.value) not in device.logged:
                    device.logged.add(("xid_last", error.value))
                    logger.warning("GPU %d: waiting for XID events: %s", device.index, error)
                return
            if int(data.eventType) & nvml.nvmlEventTypeXidCriticalError:
                code = int(data.eventData)
                device.xid_last = code
                device.xid_total[code] = device.xid_total.get(code, 0) + 1
                logger.warning("GPU %d (%s): XID %d", device.index, device.uuid, code)


def _processes(running: Any) -> tuple[GpuProcess, ...]:
    """NVML's compute processes, one per pid (memory summed; None memory, as NVML reports
    under WDDM or without permission, counts as 0), sorted by pid."""
    memory: dict[int, int] = {}
    for info in running or ():
        pid = int(info.pid)
        used = getattr(info, "usedGpuMemory", None)
        memory[pid] = memory.get(pid, 0) + (int(used) if used is not None else 0)
    return tuple(GpuProcess(pid, used) for pid, used in sorted(memory.items()))


def _clocks_event_reasons(nvml: Any) -> Any:
    # nvmlDeviceGetCurrentClocksThrottleReasons was renamed ...ClocksEventReasons in NVML 12.x.
    return getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or (
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    )
