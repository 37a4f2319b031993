"""GPU samples as dcgm-exporter-named Prometheus metric families, built at scrape time.

Names, types and help texts follow dcgm-exporter's `etc/default-counters.csv` (the ECC
volatile totals are the commented-out rows of that file, enabled); labels are the ones
dcgm-exporter puts on every GPU series: `gpu`, `UUID`, `pci_bus_id`, `device` (`nvidia<N>`),
`modelName`, `Hostname`. Beside them, InferOps' own families:

- `inferops_gpu_backend_info{backend="sim"|"nvml"} 1`: simulated GPUs never pass for real ones;
- `inferops_gpu_backend_up` 1 when the last sample succeeded, 0 when the backend raised;
- `inferops_gpu_sample_errors_total`: samples that raised (the scrape still answers);
- `inferops_gpu_field_errors_total{field}`: fields a backend could not read (NVML errors);
- `inferops_gpu_xid_errors_total{gpu,UUID,xid}`: XID errors since start, by code.

A field listed in a sample's `errors` is left out (its value is unknown, not 0), as
dcgm-exporter leaves out blank fields.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._gpu_sample import GpuBackend, GpuSample

logger = logging.getLogger("exporters.gpu")

MIB = 1024 * 1024
LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname")


class _ExactCounterName(str):
    """A counter family name the Prometheus text writer must not suffix with `_total`.

    prometheus_client writes a counter family `x` as `x_total`; dcgm-exporter's counters
    (`DCGM_FI_DEV_ECC_DBE_VOL_TOTAL`) carry their upper-case suffix already and are written
    as is. `name + "_total"` is the only concatenation that keeps the name unchanged.
    """

    __slots__ = ()

    def __add__(self, other: str) -> str:
        if other == "_total":
            return str(self)
        return str(self).__add__(other)


def _dcgm_counter(name: str, documentation: str) -> Metric:
    return Metric(_ExactCounterName(name), documentation, "counter")


@dataclass(frozen=True)
class _Field:
    name: str
    documentation: str
    kind: str  # "gauge" | "counter"
    source: str  # the GpuSample field whose error hides this series
    value: Callable[[GpuSample], float]
    also_needs: tuple[str, ...] = ()


FIELDS: tuple[_Field, ...] = (
    _Field("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "gauge",
           "sm_clock_mhz", lambda s: s.sm_clock_mhz),
    _Field("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", "gauge",
           "memory_clock_mhz", lambda s: s.memory_clock_mhz),
    _Field("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "gauge",
           "temperature_celsius", lambda s: s.temperature_celsius),
    _Field("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "gauge",
           "power_watts", lambda s: s.power_watts),
    _Field("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "gauge",
           "utilization_percent", lambda s: s.utilization_percent),
    _Field("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", "gauge",
           "xid_last", lambda s: s.xid_last),
    _Field("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "gauge",
           "memory_used_bytes",
           lambda s: (s.memory_total_bytes - s.memory_used_bytes) // MIB,
           also_needs=("memory_total_bytes",)),
    _Field("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "gauge",
           "memory_used_bytes", lambda s: s.memory_used_bytes // MIB),
    _Field("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Total number of single-bit volatile ECC errors.",
           "counter", "ecc_sbe_volatile_total", lambda s: s.ecc_sbe_volatile_total),
    _Field("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Total number of double-bit volatile ECC errors.",
           "counter", "ecc_dbe_volatile_total", lambda s: s.ecc_dbe_volatile_total),
    _Field("DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
           "Current clock event reasons (bitmask of NVML clocks event reasons).", "gauge",
           "throttle_reasons", lambda s: s.throttle_reasons),
)


@dataclass(frozen=True)
class _Reading:
    samples: list[GpuSample] | None  # None: the backend raised
    error: str = ""


class GpuCollector(Collector):
    """A prometheus_client collector over `backend`; register it on an explicit registry.

    Without `poll_interval_s`, each scrape samples the backend. With it, a daemon thread
    samples every `poll_interval_s` seconds (once before the constructor returns) and a scrape
    only reads the latest sample, so it never waits on NVML. `close()` stops the thread.
    A backend exception is logged and exported (`inferops_gpu_backend_up 0`,
    `inferops_gpu_sample_errors_total`), never raised into the scrape.
    """

    def __init__(
        self, backend: GpuBackend, *, hostname: str, poll_interval_s: float | None = None
    ) -> None:
        if poll_interval_s is not None and not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0 or None, got {poll_interval_s!r}")
        self.backend = backend
        self.hostname = hostname
        self.poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._field_errors: dict[str, int] = {}
        self._sample_errors = 0
        self._last_error = ""
        self._latest: _Reading = _Reading(samples=[])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_interval_s is not None:
            self._latest = self._read()
            self._thread = threading.Thread(
                target=self._poll, args=(poll_interval_s,), name="gpu-collector-poll", daemon=True
            )
            self._thread.start()

    # -- sampling -------------------------------------------------------------------------

    def _read(self) -> _Reading:
        try:
            samples = list(self.backend.sample())
        except Exception as error:  # a scrape must survive any backend failure
            message = f"{type(error).__name__}: {error}"
            with self._lock:
                self._sample_errors += 1
                first = message != self._last_error
                self._last_error = message
            if first:
                logger.exception("GPU backend %r failed to sample", self.backend.name)
            else:
                logger.debug("GPU backend %r failed to sample again: %s",
                             self.backend.name, message)
            return _Reading(samples=None, error=message)
        with self._lock:
            self._last_error = ""
            for sample in samples:
                for name in sample.errors:
                    self._field_errors[name] = self._field_errors.get(name, 0) + 1
        return _Reading(samples=samples)

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            reading = self._read()
            with self._lock:
                self._latest = reading

    def close(self) -> None:
        """Stop the polling thread (if any). Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    # -- Collector ------------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        """The family names, so registering never samples the backend."""
        return list(self._families([]))

    def collect(self) -> Iterable[Metric]:
        if self._thread is None:
            reading = self._read()
        else:
            with self._lock:
                reading = self._latest
        with self._lock:
            field_errors = dict(self._field_errors)
            sample_errors = self._sample_errors
        return list(self._families(reading.samples, field_errors, sample_errors,
                                   up=reading.samples is not None))

    def _families(
        self,
        samples: list[GpuSample] | None,
        field_errors: dict[str, int] | None = None,
        sample_errors: int = 0,
        *,
        up: bool = True,
    ) -> Iterator[Metric]:
        samples = samples or []
        for spec in FIELDS:
            family = (_dcgm_counter(spec.name, spec.documentation) if spec.kind == "counter"
                      else Metric(spec.name, spec.documentation, "gauge"))
            for sample in samples:
                if spec.source in sample.errors or any(n in sample.errors for n in spec.also_needs):
                    continue
                family.add_sample(spec.name, dict(zip(LABELS, self._labels(sample), strict=True)),
                                  float(spec.value(sample)))
            yield family

        xids = CounterMetricFamily(
            "inferops_gpu_xid_errors",
            "XID errors reported by the GPU since the exporter started, by XID code.",
            labels=("gpu", "UUID", "xid"),
        )
        for sample in samples:
            for code, count in sorted(sample.xid_total.items()):
                xids.add_metric([str(sample.index), sample.uuid, str(code)], count)
        yield xids

        info = GaugeMetricFamily(
            "inferops_gpu_backend_info",
            "Where the GPU metrics come from: nvml (real GPUs) or sim (simulated GPUs).",
            labels=("backend",),
        )
        info.add_metric([self.backend.name], 1)
        yield info
        yield GaugeMetricFamily(
            "inferops_gpu_backend_up",
            "1 if the last GPU sample succeeded, 0 if the backend failed.",
            value=1 if up else 0,
        )
        yield CounterMetricFamily(
            "inferops_gpu_sample_errors",
            "GPU samples that failed as a whole (the backend raised).",
            value=sample_errors,
        )
        errors = CounterMetricFamily(
            "inferops_gpu_field_errors",
            "GPU fields that could not be read (NVML errors), by field.",
            labels=("field",),
        )
        for name, count in sorted((field_errors or {}).items()):
            errors.add_metric([name], count)
        yield errors

    def _labels(self, sample: GpuSample) -> tuple[str, ...]:
        return (str(sample.index), sample.uuid, sample.pci_bus_id, f"nvidia{sample.index}",
                sample.model_name, self.hostname)
