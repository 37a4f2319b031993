"""Tracing across processes: `inferops fleet up --otlp-endpoint` exports the router's and the
node's spans over OTLP/HTTP to a receiver in this test (decoding the protobuf with
opentelemetry-proto), and one request's spans from both processes share one trace id with the
right parents; the node's OpenMetrics /metrics carries that trace id as an exemplar."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from _router_support import CLIENT, free_port, free_port_block, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

pytestmark = pytest.mark.integration

TOKEN = "tracing-fleet-admin-token-91b3"
API_KEY = "sk-tracing-test-key-0123"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]


@dataclass
class OtlpReceiver:
    """A minimal OTLP/HTTP traces endpoint (protobuf bodies), recording every span."""

    port: int
    spans: list[ReceivedSpan] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: bytes, path: str) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.paths.append(path)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value
                            for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(ReceivedSpan(
                            resource["service.name"], span.name, span.trace_id.hex(),
                            span.span_id.hex(), span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes}))

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def _value(value: object) -> object:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind != "array_value" else tuple(
        getattr(v, v.WhichOneof("value")) for v in value.array_value.values)  # type: ignore[attr-defined]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    state = OtlpReceiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.take(body, self.path)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fleet(tmp_path: Path, receiver: OtlpReceiver) -> Iterator[tuple[int, Path]]:
    port = free_port_block(2)
    log_path = tmp_path / "fleet.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"INFEROPS_ADMIN_TOKEN": TOKEN, "INFEROPS_API_KEYS": API_KEY,
            "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inferops", "fleet", "up", "--nodes", "1", "--port", str(port),
             "--gpu-backend", "sim", "--device", "cpu",
             "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            def healthy() -> bool:
                assert process.poll() is None, log_path.read_text(errors="replace")
                try:
                    return CLIENT.get(f"http://127.0.0.1:{port}/health",
                                      timeout=2.0).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(healthy, 150.0, "the fleet to serve", interval_s=0.5)
            yield port, log_path
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def test_one_request_is_one_trace_across_the_router_and_node_processes(
    fleet: tuple[int, Path], receiver: OtlpReceiver,
) -> None:
    port, log_path = fleet
    url = f"http://127.0.0.1:{port}"
    answer = CLIENT.post(f"{url}/v1/completions", timeout=60.0, headers={
        "Authorization": f"Bearer {API_KEY}"}, json={
        "model": "inferops-tiny", "prompt": "trace me", "max_tokens": 3, "temperature": 0})
    assert answer.status_code == 200, answer.text

    def router_span() -> ReceivedSpan | None:
        with receiver.lock:
            return next((s for s in receiver.spans
                         if s.service == "router" and s.name == "POST /v1/completions"), None)

    wait_until(lambda: router_span() is not None, 20.0, "the router's span to be exported")
    server = router_span()
    assert server is not None
    wait_until(lambda: len(receiver.of_trace(server.trace_id)) == 6, 20.0,
               "all six spans of the trace to be exported")
    spans = {f"{s.service}:{s.name}": s for s in receiver.of_trace(server.trace_id)}
    assert sorted(spans) == ["node-0:POST /v1/completions", "node-0:decode", "node-0:prefill",
                             "node-0:queue", "router:POST", "router:POST /v1/completions"]
    client, node = spans["router:POST"], spans["node-0:POST /v1/completions"]
    assert server.parent_span_id == ""
    assert client.parent_span_id == server.span_id
    assert node.parent_span_id == client.span_id
    assert {spans[f"node-0:{name}"].parent_span_id for name in ("queue", "prefill", "decode")
            } == {node.span_id}
    assert server.attributes["inferops.node"] == "node-0"
    assert "Authorization" not in str(server.attributes) and API_KEY not in str(spans)
    assert node.attributes["gen_ai.usage.output_tokens"] == 3
    assert set(receiver.paths) == {"/v1/traces"}

    metrics = CLIENT.get(f"http://127.0.0.1:{port + 1}/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0"}).text
    exemplars = re.findall(r'^vllm:e2e_request_latency_seconds_bucket\{.*\} \S+ '
                           r'# \{trace_id="([0-9a-f]{32})"\}', metrics, re.MULTILINE)
    assert exemplars == [server.trace_id], log_path.read_text(errors="replace")[-2000:]
