"""Per-process GPU memory, attributed to the serving node and model: NVML's compute processes,
the simulated node's own process, both renderers byte for byte, and the attribution sources."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pynvml
import pytest
from exporters_doubles import ScriptedBackend, gpu_sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from test_exporters_nvml import FakeNvml

from exporters import (
    ExporterConfigError,
    FileAttribution,
    GpuCollector,
    GpuProcess,
    NvmlGpuBackend,
    ProcessOwner,
    RegistryAttribution,
    SimulatedGpuBackend,
    StaticAttribution,
    serve_gpu_exporter,
)

MIB = 2**20
HELP = (
    "# HELP inferops_gpu_process_memory_used_bytes GPU memory used by one process (NVML compute "
    "processes), by pid and the serving node and model it belongs to (empty when unattributed).\n"
    "# TYPE inferops_gpu_process_memory_used_bytes gauge\n"
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    nvml = FakeNvml()
    nvml.install(monkeypatch)
    return nvml


def test_nvml_compute_processes_are_summed_per_pid(fake: FakeNvml) -> None:
    backend = NvmlGpuBackend("gpu-host")
    gpu0, gpu1 = backend.sample()
    assert gpu0.processes == (GpuProcess(777, 0), GpuProcess(4242, 59000 * MIB))
    assert gpu1.processes == ()
    assert "processes" not in gpu0.errors + gpu1.errors
    backend.close()


@pytest.mark.parametrize(
    ("code", "errors"),
    [(pynvml.NVML_ERROR_NO_PERMISSION, ("processes",)), (pynvml.NVML_ERROR_NOT_SUPPORTED, ())],
)
def test_unreadable_processes_are_a_field_error_and_unsupported_is_none(
    fake: FakeNvml, code: int, errors: tuple[str, ...]
) -> None:
    fake.failing[(0, "processes")] = code
    backend = NvmlGpuBackend("gpu-host")
    gpu0, _ = backend.sample()
    assert gpu0.processes == ()
    assert tuple(e for e in gpu0.errors if e == "processes") == errors
    backend.close()


def test_the_simulated_gpu_reports_the_node_process_with_the_engine_memory() -> None:
    backend = SimulatedGpuBackend(hostname="node-0", pid=4242)
    backend.record_work(0.5, 0.25)
    [sample] = backend.sample()
    # H100: 81559 MiB; 0.6 % is the driver's, the engine holds a quarter of the rest
    assert sample.processes == (GpuProcess(4242, 21_251_921_281),)
    assert sample.memory_used_bytes == 21_765_046_140
    [default] = SimulatedGpuBackend(hostname="node-0").sample()
    assert default.processes == (GpuProcess(os.getpid(), 0),)
    assert SimulatedGpuBackend(hostname="node-0", pid=None).sample()[0].processes == ()


def both_ways(samples: list[object], owners: dict[int, ProcessOwner],
              hostname: str = "h") -> tuple[bytes, bytes]:
    def collector() -> GpuCollector:
        return GpuCollector(ScriptedBackend(samples),  # type: ignore[arg-type]
                            hostname=hostname, attribution=StaticAttribution(owners))

    registry = CollectorRegistry()
    registry.register(collector())
    return generate_latest(registry), collector().exposition()


def test_processes_are_exported_with_their_owner_the_same_both_ways() -> None:
    samples = [
        gpu_sample(0, processes=(GpuProcess(4242, 59000 * MIB), GpuProcess(17, 5))),
        gpu_sample(1, uuid='GPU-"1"', processes=(GpuProcess(4243, 2**40),)),
        gpu_sample(2),
    ]
    owners = {
        4242: ProcessOwner("node-0", "inferops-tiny"),
        4243: ProcessOwner('node-"1"\\', "llama\nx"),
    }
    generic, fast = both_ways(samples, owners)  # type: ignore[arg-type]
    assert fast == generic
    text = fast.decode()
    start = text.index(HELP)
    end = text.index("# HELP inferops_gpu_backend_info")
    uuid0 = "GPU-00000000-0000-0000-0000-000000000000"
    assert text[start:end] == HELP + (
        f'inferops_gpu_process_memory_used_bytes{{Hostname="h",UUID="{uuid0}",gpu="0",'
        'model_name="",node="",pid="17"} 5.0\n'
        f'inferops_gpu_process_memory_used_bytes{{Hostname="h",UUID="{uuid0}",gpu="0",'
        'model_name="inferops-tiny",node="node-0",pid="4242"} 6.1865984e+10\n'
        'inferops_gpu_process_memory_used_bytes{Hostname="h",UUID="GPU-\\"1\\"",gpu="1",'
        'model_name="llama\\nx",node="node-\\"1\\"\\\\",pid="4243"} 1.099511627776e+12\n'
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    processes=st.lists(
        st.lists(st.tuples(st.integers(1, 2**22), st.integers(0, 2**50)), max_size=3,
                 unique_by=lambda p: p[0]),
        max_size=3,
    ),
    owners=st.dictionaries(
        st.integers(1, 2**22),
        st.tuples(st.text(max_size=6), st.text(max_size=6)),
        max_size=4,
    ),
    hostname=st.text(min_size=1, max_size=8),
)
def test_random_processes_render_identically_both_ways(
    processes: list[list[tuple[int, int]]],
    owners: dict[int, tuple[str, str]],
    hostname: str,
) -> None:
    samples = [
        gpu_sample(i, processes=tuple(GpuProcess(pid, used) for pid, used in gpu))
        for i, gpu in enumerate(processes)
    ]
    generic, fast = both_ways(
        samples,  # type: ignore[arg-type]
        {pid: ProcessOwner(*owner) for pid, owner in owners.items()},
        hostname,
    )
    assert fast == generic


def test_an_attribution_that_raises_leaves_processes_unattributed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def owners(self) -> dict[int, ProcessOwner]:
            raise RuntimeError("registry on fire")

        def close(self) -> None:
            pass

    collector = GpuCollector(ScriptedBackend([gpu_sample(0, processes=(GpuProcess(9, 1),))]),
                             hostname="h", attribution=Broken())
    with caplog.at_level(logging.ERROR, "exporters.gpu"):
        text = collector.exposition().decode()
    assert 'model_name="",node="",pid="9"} 1.0\n' in text
    assert "GPU process attribution failed" in caplog.text


# --- attribution sources ------------------------------------------------------------------


def test_an_attribution_file_is_read_again_when_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "owners.json"
    path.write_text(json.dumps({"4242": {"node": "node-0", "model_name": "tiny"}}))
    attribution = FileAttribution(path)
    assert attribution.owners() == {4242: ProcessOwner("node-0", "tiny")}
    path.write_text(json.dumps({"77": {"node": "node-1", "model_name": "big"},
                                "4242": {"node": "node-0", "model_name": "tiny"}}))
    os.utime(path, ns=(10**18, 10**18))
    assert attribution.owners() == {
        77: ProcessOwner("node-1", "big"),
        4242: ProcessOwner("node-0", "tiny"),
    }
    path.write_text('{"x": {}}')
    os.utime(path, ns=(10**18 + 1, 10**18 + 1))
    with caplog.at_level(logging.ERROR, "exporters.attribution"):
        assert len(attribution.owners()) == 2  # the last good mapping
    assert caplog.messages == [
        f"attribution file {path}: {path}: pid must be a positive integer, got 'x'; "
        "keeping the last good mapping (2 pids)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read the attribution file: No such file or directory"),
        ("[1]", "expected an object of pid -> {node, model_name}, got list"),
        ('{"5": {"node": "n"}}', "5: model_name must be a string, got None"),
        ('{"5": ', ":1: not valid JSON: Expecting value"),
    ],
)
def test_a_bad_attribution_file_is_refused_at_start(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "owners.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ExporterConfigError) as raised:
        FileAttribution(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


class Registry:
    """A real HTTP server answering /sd/targets as the router does (the test sets the body)."""

    def __init__(self) -> None:
        self.body = b"[]"
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(registry.body)))
                self.end_headers()
                self.wfile.write(registry.body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sd/targets"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def registry() -> Iterator[Registry]:
    server = Registry()
    yield server
    server.stop()


def group(port: int, node: str, pid: str | None) -> dict[str, object]:
    labels = {"node": node, "model_name": "inferops-tiny", "__meta_inferops_status": "serving"}
    if pid is not None:
        labels["__meta_inferops_pid"] = pid
    return {"targets": [f"127.0.0.1:{port}"], "labels": labels}


def test_the_standalone_exporter_attributes_processes_from_the_node_registry(
    registry: Registry,
) -> None:
    registry.body = json.dumps(
        [group(18001, "node-0", "4242"), group(18002, "node-1", None)]
    ).encode()
    attribution = RegistryAttribution(registry.url, refresh_interval_s=3600)
    assert attribution.owners() == {4242: ProcessOwner("node-0", "inferops-tiny")}
    backend = SimulatedGpuBackend(gpus=2, hostname="gpu-box", pid=4242)
    handle = serve_gpu_exporter(backend, host="127.0.0.1", port=0, hostname="gpu-box",
                                poll_interval_s=None, attribution=attribution)
    try:
        text = httpx.get(handle.url, timeout=5).text
        lines = [line for line in text.splitlines()
                 if line.startswith("inferops_gpu_process_memory_used_bytes{")]
        assert [line.rsplit(" ", 1)[0] for line in lines] == [
            f'inferops_gpu_process_memory_used_bytes{{Hostname="gpu-box",UUID="{uuid}",'
            f'gpu="{gpu}",model_name="inferops-tiny",node="node-0",pid="4242"}}'
            for gpu, uuid in enumerate(s.uuid for s in backend.sample())
        ]
        registry.body = b"not json"
        attribution.refresh()
        assert attribution.error == f"{registry.url}: answer is not JSON"
        assert attribution.owners() == {4242: ProcessOwner("node-0", "inferops-tiny")}
    finally:
        handle.stop()
