"""GPU samples as dcgm-exporter-named Prometheus metric families, built at scrape time.

The families (names, help texts, types, labels, skip rules) are the table in
`_exposition_gpu_fields`; see there. Beside the DCGM ones, InferOps' own families:

- `inferops_gpu_xid_errors_total{gpu,UUID,xid}`: XID errors since start, by code;
- `inferops_gpu_health{gpu,UUID,reason}`: 1 healthy (`reason="none"`), 0 with the reason
  (`xid`, `ecc_dbe`, `thermal`), one series per GPU;
- `inferops_gpu_process_memory_used_bytes{gpu,UUID,Hostname,pid,node,model_name}`: memory each
  process holds on each GPU, attributed to its serving node and model by a
  `ProcessAttribution` (empty labels for a pid it does not know);
- `inferops_gpu_backend_info{backend="sim"|"nvml"} 1`: simulated GPUs never pass for real ones;
- `inferops_gpu_backend_up` 1 when the last sample succeeded, 0 when the backend raised;
- `inferops_gpu_sample_errors_total`: samples that raised (the scrape still answers);
- `inferops_gpu_field_errors_total{field}`: fields a backend could not read (NVML errors).

Two ways to write them out: register the collector on a `CollectorRegistry` (prometheus_client's
generic path), or call `exposition()` for the same text written directly (several times faster;
what `serve_gpu_exporter` serves).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._exposition_gpu import GpuExposition
from ._exposition_gpu_fields import (
    BACKEND_INFO_HELP,
    BACKEND_INFO_NAME,
    BACKEND_UP_HELP,
    BACKEND_UP_NAME,
    FIELD_ERRORS_HELP,
    FIELD_ERRORS_NAME,
    FIELDS,
    HEALTH_HELP,
    HEALTH_NAME,
    LABELS,
    PROCESS_LABELS,
    PROCESS_MEMORY_HELP,
    PROCESS_MEMORY_NAME,
    SAMPLE_ERRORS_HELP,
    SAMPLE_ERRORS_NAME,
    XID_TOTAL_HELP,
    XID_TOTAL_NAME,
    field_value,
    gpu_health,
)
from ._gpu_attribution import ProcessAttribution, ProcessOwner
from ._gpu_sample import GpuBackend, GpuSample

logger = logging.getLogger("exporters.gpu")


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


def _dcgm_family(name: str, documentation: str, kind: str) -> Metric:
    return Metric(_ExactCounterName(name) if kind == "counter" else name, documentation, kind)


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
    `inferops_gpu_sample_errors_total`), never raised into the scrape. `attribution` names the
    node and model of each GPU process (see `_gpu_attribution`); the collector does not close it.
    """

    def __init__(
        self,
        backend: GpuBackend,
        *,
        hostname: str,
        poll_interval_s: float | None = None,
        attribution: ProcessAttribution | None = None,
    ) -> None:
        if poll_interval_s is not None and not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0 or None, got {poll_interval_s!r}")
        self.backend = backend
        self.hostname = hostname
        self.poll_interval_s = poll_interval_s
        self.attribution = attribution
        self._lock = threading.Lock()
        self._field_errors: dict[str, int] = {}
        self._sample_errors = 0
        self._last_error = ""
        self._latest: _Reading = _Reading(samples=[])
        self._exposition = GpuExposition(hostname)
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
        reading, field_errors, sample_errors = self._snapshot()
        return list(self._families(reading.samples, field_errors, sample_errors,
                                   up=reading.samples is not None, owners=self._owners()))

    def exposition(self) -> bytes:
        """The text `generate_latest` writes for a registry holding only this collector, written
        directly (see `_exposition_gpu`): what a scrape of this collector answers, fast.
        Samples the backend first when there is no poller, as `collect()` does."""
        reading, field_errors, sample_errors = self._snapshot()
        return self._exposition.render(reading.samples, backend_name=self.backend.name,
                                       sample_errors=sample_errors, field_errors=field_errors,
                                       owners=self._owners())

    def _owners(self) -> Mapping[int, ProcessOwner]:
        if self.attribution is None:
            return {}
        try:
            return self.attribution.owners()
        except Exception:  # an attribution must never cost a scrape
            logger.exception("GPU process attribution failed; processes are left unattributed")
            return {}

    def _snapshot(self) -> tuple[_Reading, dict[str, int], int]:
        if self._thread is None:
            reading = self._read()
        else:
            with self._lock:
                reading = self._latest
        with self._lock:
            return reading, dict(self._field_errors), self._sample_errors

    def _families(
        self,
        samples: list[GpuSample] | None,
        field_errors: dict[str, int] | None = None,
        sample_errors: int = 0,
        *,
        up: bool = True,
        owners: Mapping[int, ProcessOwner] | None = None,
    ) -> Iterator[Metric]:
        samples = samples or []
        labelled = [(sample, dict(zip(LABELS, self._labels(sample), strict=True)))
                    for sample in samples]
        for spec in FIELDS:
            family = _dcgm_family(spec.name, spec.documentation, spec.kind)
            for sample, labels in labelled:
                value = field_value(spec, sample)
                if value is not None:
                    family.add_sample(spec.name, labels, float(value))
            yield family

        xids = CounterMetricFamily(XID_TOTAL_NAME, XID_TOTAL_HELP, labels=("gpu", "UUID", "xid"))
        for sample in samples:
            for code, count in sorted(sample.xid_total.items()):
                xids.add_metric([str(sample.index), sample.uuid, str(code)], count)
        yield xids

        health = GaugeMetricFamily(HEALTH_NAME, HEALTH_HELP, labels=("gpu", "UUID", "reason"))
        for sample in samples:
            healthy, reason = gpu_health(sample)
            health.add_metric([str(sample.index), sample.uuid, reason], healthy)
        yield health

        processes = GaugeMetricFamily(PROCESS_MEMORY_NAME, PROCESS_MEMORY_HELP,
                                      labels=PROCESS_LABELS)
        unknown = ProcessOwner("", "")
        for sample in samples:
            for process in sorted(sample.processes, key=lambda p: p.pid):
                owner = (owners or {}).get(process.pid, unknown)
                processes.add_metric([str(sample.index), sample.uuid, self.hostname,
                                      str(process.pid), owner.node, owner.model_name],
                                     process.memory_used_bytes)
        yield processes

        info = GaugeMetricFamily(BACKEND_INFO_NAME, BACKEND_INFO_HELP, labels=("backend",))
        info.add_metric([self.backend.name], 1)
        yield info
        yield GaugeMetricFamily(BACKEND_UP_NAME, BACKEND_UP_HELP, value=1 if up else 0)
        yield CounterMetricFamily(SAMPLE_ERRORS_NAME, SAMPLE_ERRORS_HELP, value=sample_errors)
        errors = CounterMetricFamily(FIELD_ERRORS_NAME, FIELD_ERRORS_HELP, labels=("field",))
        for name, count in sorted((field_errors or {}).items()):
            errors.add_metric([name], count)
        yield errors

    def _labels(self, sample: GpuSample) -> tuple[str, ...]:
        return (str(sample.index), sample.uuid, sample.pci_bus_id, f"nvidia{sample.index}",
                sample.model_name, self.hostname)
