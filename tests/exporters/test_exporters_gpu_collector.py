"""GpuCollector: dcgm-exporter names and labels at scrape time, faults, failures, polling."""

from __future__ import annotations

import logging
import time

import pytest
from exporters_doubles import (
    BlockingBackend,
    ManualClock,
    ScriptedBackend,
    exposition,
    gpu_sample,
    parse,
    value,
    values,
)
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from exporters import GpuCollector, SimulatedGpuBackend

DCGM = ["DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"]


def registry_with(collector: GpuCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def dcgm(families: dict[str, Metric], name: str, gpu: str = "0") -> float:
    return value(families, name, gpu=gpu)


def test_exact_dcgm_exposition(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(hostname="node-a", clock=clock)
    text = exposition(registry_with(GpuCollector(backend, hostname="node-a")))
    uuid = backend.sample()[0].uuid
    labels = (f'Hostname="node-a",UUID="{uuid}",device="nvidia0",gpu="0",'
              'modelName="NVIDIA H100 80GB HBM3",pci_bus_id="00000000:18:00.0"')
    lines = text.splitlines()
    for line in (
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
        f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} 0.0",
        f"DCGM_FI_DEV_SM_CLOCK{{{labels}}} 390.0",
        f"DCGM_FI_DEV_MEM_CLOCK{{{labels}}} 2619.0",
        f"DCGM_FI_DEV_GPU_TEMP{{{labels}}} 33.0",
        "# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.",
        "# TYPE DCGM_FI_DEV_XID_ERRORS gauge",
        f"DCGM_FI_DEV_XID_ERRORS{{{labels}}} 0.0",
        f"DCGM_FI_DEV_FB_USED{{{labels}}} 489.0",  # int(0.006 * 81559 MiB) in MiB
        f"DCGM_FI_DEV_FB_FREE{{{labels}}} 81069.0",  # each floored to MiB, as DCGM does
        "# HELP DCGM_FI_DEV_ECC_DBE_VOL_TOTAL Total number of double-bit volatile ECC errors.",
        "# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter",  # as dcgm-exporter: no extra _total
        f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{labels}}} 0.0",
        "# TYPE DCGM_FI_DEV_ECC_SBE_VOL_TOTAL counter",
        f"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{{{labels}}} 0.0",
        f"DCGM_FI_DEV_CLOCKS_EVENT_REASONS{{{labels}}} 1.0",
        'inferops_gpu_backend_info{backend="sim"} 1.0',
        "inferops_gpu_backend_up 1.0",
        "inferops_gpu_sample_errors_total 0.0",
        "# TYPE inferops_gpu_field_errors_total counter",
    ):
        assert line in lines, line
    assert "_TOTAL_total" not in text
    power = next(line for line in lines if line.startswith("DCGM_FI_DEV_POWER_USAGE{"))
    assert power.startswith(f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} ")


def test_every_gpu_every_family(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(gpus=4, gpu_type="A100-SXM4-80GB", hostname="h", clock=clock)
    families = parse(exposition(registry_with(GpuCollector(backend, hostname="h"))))
    for name in DCGM:
        assert sorted(label[1] for key in values(families, name)
                      for label in key if label[0] == "gpu") == ["0", "1", "2", "3"], name
        assert {dict(key)["device"] for key in values(families, name)} == {
            "nvidia0", "nvidia1", "nvidia2", "nvidia3"}
        assert {dict(key)["modelName"] for key in values(families, name)} == {
            "NVIDIA A100-SXM4-80GB"}
    assert families["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"].type == "counter"
    assert families["DCGM_FI_DEV_XID_ERRORS"].type == "gauge"


def test_work_shows_in_the_metrics(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(hostname="h", clock=clock)
    registry = registry_with(GpuCollector(backend, hostname="h"))
    backend.record_work(1.0, 0.9)
    clock.advance(600)
    families = parse(exposition(registry))
    assert dcgm(families, "DCGM_FI_DEV_GPU_UTIL") == 100
    assert dcgm(families, "DCGM_FI_DEV_GPU_TEMP") == 68
    assert dcgm(families, "DCGM_FI_DEV_POWER_USAGE") == pytest.approx(595, abs=12)
    used = dcgm(families, "DCGM_FI_DEV_FB_USED")
    assert used + dcgm(families, "DCGM_FI_DEV_FB_FREE") in (81558, 81559)
    assert used == pytest.approx(0.9 * 81559, abs=60)


def test_xid_fault_exported_and_cleared(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(gpus=2, hostname="h", clock=clock)
    registry = registry_with(GpuCollector(backend, hostname="h"))
    backend.inject_fault("xid", code=79)
    families = parse(exposition(registry))
    assert dcgm(families, "DCGM_FI_DEV_XID_ERRORS") == 79
    assert dcgm(families, "DCGM_FI_DEV_XID_ERRORS", gpu="1") == 0
    uuid = backend.sample()[0].uuid
    assert values(families, "inferops_gpu_xid_errors", "inferops_gpu_xid_errors_total") == {
        (("UUID", uuid), ("gpu", "0"), ("xid", "79")): 1.0}
    backend.clear_faults()
    families = parse(exposition(registry))
    assert dcgm(families, "DCGM_FI_DEV_XID_ERRORS") == 0
    assert value(families, "inferops_gpu_xid_errors", "inferops_gpu_xid_errors_total",
                 xid="79") == 1


def test_ecc_dbe_fault_exported(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(hostname="h", clock=clock)
    registry = registry_with(GpuCollector(backend, hostname="h"))
    backend.inject_fault("ecc-dbe")
    backend.inject_fault("ecc-dbe")
    text = exposition(registry)
    families = parse(text)
    # prometheus_client's parser appends _total to counter samples; the text has the dcgm name
    assert dcgm(families, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL") == 2
    assert any(line.startswith("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{") and line.endswith(" 2.0")
               for line in text.splitlines())
    assert dcgm(families, "DCGM_FI_DEV_XID_ERRORS") == 48
    backend.clear_faults()
    families = parse(exposition(registry))
    assert dcgm(families, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL") == 2  # volatile totals stay
    assert dcgm(families, "DCGM_FI_DEV_XID_ERRORS") == 0


def test_thermal_fault_exported(clock: ManualClock) -> None:
    backend = SimulatedGpuBackend(hostname="h", clock=clock)
    registry = registry_with(GpuCollector(backend, hostname="h"))
    backend.record_work(0.8, 0.5)
    clock.advance(120)
    backend.inject_fault("thermal")
    clock.advance(60)
    families = parse(exposition(registry))
    assert dcgm(families, "DCGM_FI_DEV_GPU_TEMP") >= 87
    assert dcgm(families, "DCGM_FI_DEV_SM_CLOCK") == 990
    assert int(dcgm(families, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS")) & 0x40
    backend.clear_faults()
    clock.advance(180)
    families = parse(exposition(registry))
    assert dcgm(families, "DCGM_FI_DEV_GPU_TEMP") < 84
    assert dcgm(families, "DCGM_FI_DEV_SM_CLOCK") == 1980
    assert dcgm(families, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS") == 0


def test_backend_exception_never_breaks_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    good = [gpu_sample()]
    backend = ScriptedBackend(RuntimeError("NVML_ERROR_GPU_IS_LOST"),
                              RuntimeError("NVML_ERROR_GPU_IS_LOST"), good)
    registry = registry_with(GpuCollector(backend, hostname="h"))
    with caplog.at_level(logging.DEBUG, logger="exporters"):
        families = parse(exposition(registry))
    assert [r for r in caplog.records if r.levelno == logging.ERROR
            and "failed to sample" in r.getMessage() and r.exc_info]
    assert value(families, "inferops_gpu_backend_up") == 0
    assert value(families, "inferops_gpu_sample_errors", "inferops_gpu_sample_errors_total") == 1
    assert value(families, "inferops_gpu_backend_info", backend="sim") == 1
    assert all(values(families, name) == {} for name in DCGM)  # unknown, not zero

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="exporters"):
        families = parse(exposition(registry))  # the same failure again: not logged again
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]
    assert value(families, "inferops_gpu_sample_errors", "inferops_gpu_sample_errors_total") == 2

    families = parse(exposition(registry))  # recovered
    assert value(families, "inferops_gpu_backend_up") == 1
    assert dcgm(families, "DCGM_FI_DEV_GPU_UTIL") == 50
    assert value(families, "inferops_gpu_sample_errors", "inferops_gpu_sample_errors_total") == 2


def test_field_errors_hide_the_series_and_are_counted() -> None:
    broken = gpu_sample(0, errors=("power_watts", "xid_last"))
    fine = gpu_sample(1)
    registry = registry_with(GpuCollector(ScriptedBackend([broken, fine]), hostname="h"))
    exposition(registry)
    families = parse(exposition(registry))
    assert [dict(k)["gpu"] for k in values(families, "DCGM_FI_DEV_POWER_USAGE")] == ["1"]
    assert [dict(k)["gpu"] for k in values(families, "DCGM_FI_DEV_XID_ERRORS")] == ["1"]
    assert len(values(families, "DCGM_FI_DEV_GPU_UTIL")) == 2
    assert values(families, "inferops_gpu_field_errors", "inferops_gpu_field_errors_total") == {
        (("field", "power_watts"),): 2.0, (("field", "xid_last"),): 2.0}


def test_registering_does_not_sample() -> None:
    backend = ScriptedBackend([gpu_sample()])
    registry_with(GpuCollector(backend, hostname="h"))
    assert backend.calls == 0


def test_polling_scrapes_read_the_latest_sample() -> None:
    backend = ScriptedBackend([gpu_sample(utilization_percent=10.0)],
                              [gpu_sample(utilization_percent=20.0)],
                              [gpu_sample(utilization_percent=30.0)])
    collector = GpuCollector(backend, hostname="h", poll_interval_s=0.05)
    try:
        assert backend.calls == 1  # sampled once before the constructor returned
        registry = registry_with(collector)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if dcgm(parse(exposition(registry)), "DCGM_FI_DEV_GPU_UTIL") == 30:
                break
            time.sleep(0.01)
        assert dcgm(parse(exposition(registry)), "DCGM_FI_DEV_GPU_UTIL") == 30
    finally:
        collector.close()
    calls = backend.calls
    time.sleep(0.2)
    assert backend.calls == calls  # the poller stopped
    collector.close()  # idempotent


def test_a_scrape_never_waits_on_a_hung_backend() -> None:
    backend = BlockingBackend([gpu_sample(utilization_percent=10.0)],
                              [gpu_sample(utilization_percent=99.0)])
    collector = GpuCollector(backend, hostname="h", poll_interval_s=0.01)
    try:
        registry = registry_with(collector)
        assert backend.entered.wait(5)  # the poller is stuck inside sample()
        families = parse(exposition(registry))
        # The scrape answered the last good sample (10; the stuck call would give 99) and
        # did not call sample() itself: the poller's call is the only one since the first.
        assert backend.calls == 2
        assert dcgm(families, "DCGM_FI_DEV_GPU_UTIL") == 10
        assert value(families, "inferops_gpu_backend_info", backend="nvml") == 1
    finally:
        backend.release.set()
        collector.close()


def test_poll_interval_validation() -> None:
    with pytest.raises(ValueError, match="poll_interval_s"):
        GpuCollector(ScriptedBackend([]), hostname="h", poll_interval_s=0)
