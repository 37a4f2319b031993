"""serve_gpu_exporter: /metrics over real HTTP, read back with prometheus_client's parser."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

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


def _get(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_serves_the_directly_written_text_as_plain_gzip_and_head() -> None:
    backend = SimulatedGpuBackend(gpus=8, hostname="h")
    handle = serve_gpu_exporter(backend, host="127.0.0.1", port=0, hostname="h",
                                poll_interval_s=3600)  # one sample: every answer is the same
    try:
        expected = handle.collector.exposition()
        status, headers, body = _get(handle.url)
        assert (status, body) == (200, expected)
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        status, headers, body = _get(handle.url, headers={"Accept-Encoding": "gzip"})
        assert (status, headers["Content-Encoding"]) == (200, "gzip")
        assert gzip.decompress(body) == expected
        status, headers, body = _get(handle.url, method="HEAD")
        assert (status, body, headers["Content-Length"]) == (200, b"", str(len(expected)))
        status, _, body = _get(handle.url.replace("/metrics", "/nope"))
        assert (status, body) == (404, b"not found: /nope; the metrics are at /metrics\n")
    finally:
        handle.stop()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_a_real_prometheus_scrapes_the_exporter(tmp_path: Path) -> None:
    backend = SimulatedGpuBackend(gpus=8, hostname="gpu-node-9")
    backend.inject_fault("xid", code=79, gpu=6)
    handle = serve_gpu_exporter(backend, host="127.0.0.1", port=0, hostname="gpu-node-9",
                                poll_interval_s=0.2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: gpu\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{handle.port}']\n"
    )
    log = (tmp_path / "log.txt").open("wb")
    prometheus = subprocess.Popen(
        [str(shutil.which("prometheus")), "--config.file=prometheus.yml",
         "--storage.tsdb.path=tsdb", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api/v1/query?query="

    def query(expr: str) -> list[dict[str, Any]]:
        try:
            with urllib.request.urlopen(api + urllib.parse.quote(expr), timeout=2) as answer:
                result: list[dict[str, Any]] = json.load(answer)["data"]["result"]
                return result
        except (urllib.error.URLError, ConnectionError):
            return []

    try:
        deadline = time.monotonic() + 60
        while not query('up{job="gpu"} == 1') or not query("inferops_gpu_health"):
            assert prometheus.poll() is None, (tmp_path / "log.txt").read_text()[-2000:]
            assert time.monotonic() < deadline, (tmp_path / "log.txt").read_text()[-2000:]
            time.sleep(0.3)
        [up] = query('up{job="gpu"}')
        assert up["value"][1] == "1"
        [count] = query('count(DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-node-9"})')
        assert count["value"][1] == "8"
        [samples] = query('scrape_samples_scraped{job="gpu"}')
        assert int(samples["value"][1]) >= 8 * 44
        [unhealthy] = query("inferops_gpu_health == 0")
        assert (unhealthy["metric"]["gpu"], unhealthy["metric"]["reason"]) == ("6", "xid")
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        log.close()
        handle.stop()
