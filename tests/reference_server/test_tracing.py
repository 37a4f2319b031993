"""Tracing in one process: a real router in front of a real tiny node (both served by uvicorn on
127.0.0.1), each with its own TracerProvider writing to the SDK's in-memory exporter. One
request must produce one trace: router server span -> client span -> node server span ->
queue / prefill / decode, with exact attributes, and its trace id as the exemplar of the
latency histograms in OpenMetrics /metrics."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from _router_support import TOKEN, RouterServer, wait_until
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from exporters import SimulatedGpuBackend
from reference_server import NodeSpec, Router, TracingConfig, build_tracer_provider
from reference_server._engine import EngineConfig
from reference_server._model import ModelConfig
from reference_server._node_app import create_node_app
from reference_server._node_runtime import Node, NodeConfig

ADMIN_TOKEN = "tracing-test-admin-token-7c1e"
TINY_MODEL = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=256)
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}


@dataclass
class TracedFleet:
    router_url: str
    node_url: str
    node_port: int
    node_spans: InMemorySpanExporter
    router_spans: InMemorySpanExporter
    client: httpx.Client

    def clear(self) -> None:
        self.node_spans.clear()
        self.router_spans.clear()

    def spans(self) -> list[ReadableSpan]:
        return [*self.router_spans.get_finished_spans(), *self.node_spans.get_finished_spans()]


def provider(name: str, exporter: InMemorySpanExporter) -> TracerProvider:
    built = build_tracer_provider(TracingConfig(name), processors=[SimpleSpanProcessor(exporter)])
    assert built is not None
    return built


@pytest.fixture(scope="module")
def fleet() -> Iterator[TracedFleet]:
    node_spans, router_spans = InMemorySpanExporter(), InMemorySpanExporter()
    node = Node(NodeConfig(name="node-0", model=TINY_MODEL,
                           engine=EngineConfig(kv_cache_tokens=2048, block_size=16),
                           device="cpu", gpu_backend="sim"),
                admin_token=ADMIN_TOKEN, gpu_backend=SimulatedGpuBackend(hostname="node-0"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        create_node_app(node, exit_process=False,
                        tracer_provider=provider("node-0", node_spans)),
        log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30.0, "the node to start")
    router = Router([NodeSpec("node-0", "127.0.0.1", port)], admin_token=TOKEN,
                    health_interval_s=0.25, tracer_provider=provider("router", router_spans))
    try:
        with RouterServer(router) as served, httpx.Client(timeout=30.0, trust_env=False) as client:
            wait_until(lambda: served.nodes()["node-0"]["healthy"], 20.0, "node-0 healthy")
            yield TracedFleet(served.url, f"http://127.0.0.1:{port}", port, node_spans,
                              router_spans, client)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {f"{s.resource.attributes['service.name']}:{s.name}": s for s in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def test_one_request_is_one_trace_from_the_router_to_the_engine(fleet: TracedFleet) -> None:
    fleet.clear()
    answer = fleet.client.post(f"{fleet.router_url}/v1/completions", json={
        "model": "inferops-tiny", "prompt": "hello", "max_tokens": 4, "temperature": 0})
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"] == {"prompt_tokens": 6, "completion_tokens": 4,
                                      "total_tokens": 10}
    spans = by_name(fleet.spans())
    assert sorted(spans) == ["node-0:POST /v1/completions", "node-0:decode", "node-0:prefill",
                             "node-0:queue", "router:POST", "router:POST /v1/completions"]
    server, client = spans["router:POST /v1/completions"], spans["router:POST"]
    node = spans["node-0:POST /v1/completions"]
    queue, prefill, decode = spans["node-0:queue"], spans["node-0:prefill"], spans["node-0:decode"]

    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert server.parent is None
    assert parent_of(client) == server.context.span_id
    assert parent_of(node) == client.context.span_id
    assert node.parent is not None and node.parent.is_remote
    for engine_span in (queue, prefill, decode):
        assert parent_of(engine_span) == node.context.span_id
    assert [server.kind, client.kind, node.kind, queue.kind] == [
        SpanKind.SERVER, SpanKind.CLIENT, SpanKind.SERVER, SpanKind.INTERNAL]

    assert dict(server.attributes or {}) == {
        "http.request.method": "POST", "http.route": "/v1/completions",
        "gen_ai.request.model": "inferops-tiny", "inferops.node": "node-0",
        "inferops.retried": False, "http.response.status_code": 200,
    }
    assert dict(client.attributes or {}) == {
        "http.request.method": "POST", "url.full": f"{fleet.node_url}/v1/completions",
        "server.address": "127.0.0.1", "server.port": fleet.node_port,
        "inferops.node": "node-0", "inferops.retry": False, "http.response.status_code": 200,
    }
    assert dict(node.attributes or {}) == {
        "http.request.method": "POST", "http.route": "/v1/completions",
        "inferops.node": "node-0", "gen_ai.request.model": "inferops-tiny",
        "gen_ai.usage.input_tokens": 6, "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.finish_reasons": ("length",), "http.response.status_code": 200,
    }
    assert dict(queue.attributes or {}) == {}
    assert dict(prefill.attributes or {}) == {
        "gen_ai.usage.input_tokens": 6, "inferops.prefix_cache.hit_blocks": 0}
    assert dict(decode.attributes or {}) == {
        "gen_ai.usage.output_tokens": 4, "inferops.preempted": False,
        "inferops.preemptions": 0, "inferops.finish_reason": "length"}

    def times(span: ReadableSpan) -> tuple[int, int]:
        assert span.start_time is not None and span.end_time is not None
        return span.start_time, span.end_time

    # The engine spans follow each other, inside the node's span, inside the router's.
    assert times(server)[0] <= times(client)[0] <= times(client)[1] <= times(server)[1]
    assert times(queue)[1] <= times(prefill)[0] <= times(prefill)[1] <= times(decode)[0]
    assert times(node)[0] <= times(queue)[0] and times(decode)[1] <= times(node)[1]


def test_a_streamed_request_keeps_its_client_span_open_until_the_relay_ends(
    fleet: TracedFleet,
) -> None:
    fleet.clear()
    with fleet.client.stream("POST", f"{fleet.router_url}/v1/chat/completions", json={
        "model": "inferops-tiny", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3, "temperature": 0, "stream": True,
    }) as stream:
        assert stream.status_code == 200
        assert [line for line in stream.iter_lines() if line][-1] == "data: [DONE]"
    wait_until(lambda: len(fleet.router_spans.get_finished_spans()) == 2, 10.0,
               "the router's spans to end")
    spans = by_name(fleet.spans())
    server, client = spans["router:POST /v1/chat/completions"], spans["router:POST"]
    node = spans["node-0:POST /v1/chat/completions"]
    assert parent_of(node) == client.context.span_id
    assert client.end_time is not None and node.end_time is not None
    assert client.end_time >= node.end_time  # the relay outlived the node's answer
    assert (server.attributes or {})["http.response.status_code"] == 200
    assert (node.attributes or {})["gen_ai.usage.output_tokens"] == 3


def test_a_shared_prompt_prefix_shows_its_reused_blocks_on_the_prefill_span(
    fleet: TracedFleet,
) -> None:
    prompt = "You are the on-call assistant of the fleet. " * 2  # 88 bytes + BOS: 5 full blocks
    for _ in range(2):
        fleet.clear()
        answer = fleet.client.post(f"{fleet.router_url}/v1/completions", json={
            "prompt": prompt, "max_tokens": 2, "temperature": 0})
        assert answer.status_code == 200, answer.text
    prefill = by_name(fleet.spans())["node-0:prefill"]
    assert (prefill.attributes or {})["inferops.prefix_cache.hit_blocks"] == 5


def exemplar_trace_ids(text: str, metric: str) -> set[str]:
    pattern = rf'^{re.escape(metric)}_bucket{{.*}} \S+ # {{trace_id="([0-9a-f]{{32}})"}}'
    return set(re.findall(pattern, text, re.MULTILINE))


def test_latency_histograms_carry_the_trace_id_as_an_exemplar(fleet: TracedFleet) -> None:
    fleet.clear()
    answer = fleet.client.post(f"{fleet.router_url}/v1/completions", json={
        "prompt": "exemplar", "max_tokens": 2, "temperature": 0})
    assert answer.status_code == 200
    trace_id = format(fleet.spans()[0].context.trace_id, "032x")

    node_metrics = fleet.client.get(f"{fleet.node_url}/metrics", headers=OPENMETRICS)
    assert node_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert node_metrics.text.endswith("# EOF\n")
    assert trace_id in exemplar_trace_ids(node_metrics.text, "vllm:e2e_request_latency_seconds")
    assert trace_id in exemplar_trace_ids(node_metrics.text, "vllm:time_to_first_token_seconds")
    router_metrics = fleet.client.get(f"{fleet.router_url}/metrics", headers=OPENMETRICS)
    assert trace_id in exemplar_trace_ids(router_metrics.text,
                                          "vllm:e2e_request_latency_seconds")


def test_prometheus_text_metrics_carry_no_exemplars(fleet: TracedFleet) -> None:
    for url in (fleet.node_url, fleet.router_url):
        plain = fleet.client.get(f"{url}/metrics")
        assert plain.headers["content-type"] == "text/plain; version=1.0.0; charset=utf-8"
        assert "trace_id" not in plain.text
        assert "# EOF" not in plain.text


def test_a_client_traceparent_continues_its_trace_through_the_router(
    fleet: TracedFleet,
) -> None:
    """The router continues a client's trace (as a gateway does); the node sees the router's
    client span as its parent, never the client's span beside it."""
    fleet.clear()
    foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    answer = fleet.client.post(f"{fleet.router_url}/v1/completions", headers={
        "traceparent": foreign}, json={"prompt": "x", "max_tokens": 1, "temperature": 0})
    assert answer.status_code == 200
    spans = by_name(fleet.spans())
    server, node = spans["router:POST /v1/completions"], spans["node-0:POST /v1/completions"]
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {
        "0af7651916cd43dd8448eb211c80319c"}
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    assert parent_of(node) == spans["router:POST"].context.span_id


def test_the_engine_spans_are_built_after_the_request_from_its_timestamps() -> None:
    """Sanity of the clock conversion the spans rely on: later monotonic times map to later
    epoch nanoseconds, 1 s apart maps to 1e9 ns apart."""
    from reference_server._tracing import MonotonicClock

    clock = MonotonicClock()
    now = time.monotonic()
    assert clock.epoch_ns(now + 1.0) - clock.epoch_ns(now) == 1_000_000_000
