"""serve_gpu_exporter: /metrics over real HTTP, read back with prometheus_client's parser."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from exporters_doubles import ScriptedBackend, scrape, value, values

from exporters import SimulatedGpuBackend, serve_gpu_exporter


def test_serves_simulated_gpus_and_stops() -> None:
    backend = SimulatedGpuBackend(gpus=2, gpu_type="L4", hostname="gpu-node-7")
    handle = serve_gpu_exporter(backend, host="127.0.0.1", port=0, hostname="gpu-node-7",
                                poll_interval_s=None)
    try:
        assert handle.port > 0
        assert handle.url == f"http://127.0.0.1:{handle.port}/metrics"
        content_type, families = scrape(handle.url)
        assert content_type.startswith("text/plain")
        assert value(families, "inferops_gpu_backend_info", backend="sim") == 1
        utilisation = values(families, "DCGM_FI_DEV_GPU_UTIL")
        assert sorted(dict(k)["gpu"] for k in utilisation) == ["0", "1"]
        assert {dict(k)["Hostname"] for k in utilisation} == {"gpu-node-7"}
        assert {dict(k)["modelName"] for k in utilisation} == {"NVIDIA L4"}
        assert value(families, "DCGM_FI_DEV_FB_FREE", gpu="1") + value(
            families, "DCGM_FI_DEV_FB_USED", gpu="1") in (23033, 23034)

        backend.inject_fault("xid", code=79, gpu=1)
        _, families = scrape(handle.url)
        assert value(families, "DCGM_FI_DEV_XID_ERRORS", gpu="1") == 79
        assert value(families, "inferops_gpu_xid_errors", gpu="1", xid="79") == 1
    finally:
        handle.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(handle.url, timeout=2)
    handle.stop()  # idempotent


def test_polling_exporter_follows_faults() -> None:
    backend = SimulatedGpuBackend(hostname="h")
    handle = serve_gpu_exporter(backend, host="127.0.0.1", port=0, hostname="h",
                                poll_interval_s=0.05)
    try:
        _, families = scrape(handle.url)
        assert value(families, "DCGM_FI_DEV_XID_ERRORS") == 0
        backend.inject_fault("xid", code=94)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, families = scrape(handle.url)
            if value(families, "DCGM_FI_DEV_XID_ERRORS") == 94:
                break
            time.sleep(0.02)
        assert value(families, "DCGM_FI_DEV_XID_ERRORS") == 94
    finally:
        handle.stop()
    assert not handle.collector._thread or not handle.collector._thread.is_alive()


def test_failing_backend_still_serves() -> None:
    backend = ScriptedBackend(RuntimeError("boom"))
    handle = serve_gpu_exporter(backend, host="127.0.0.1", port=0, hostname="h",
                                poll_interval_s=None)
    try:
        _, families = scrape(handle.url)
        assert value(families, "inferops_gpu_backend_up") == 0
        assert value(families, "inferops_gpu_sample_errors") == 1
    finally:
        handle.stop()
    assert backend.closed  # stop() closes the backend
