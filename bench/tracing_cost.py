"""What tracing costs per request: the router's hooks (server span, one attempt's client span
with its `traceparent`, the end), the node's (server span from a `traceparent`, then the
queue/prefill/decode spans built from a finished request's timestamps), and an exemplar on
the latency histograms, each against the same work untraced.

Spans go through the real `BatchSpanProcessor` to an exporter that drops them, so the
numbers are the request path's cost (the export thread's work is not on that path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry
from starlette.requests import Request

from exporters import RequestMetrics, RequestOutcome
from reference_server import TracingConfig, build_tracer_provider
from reference_server._node_tracing import NodeTracing
from reference_server._router_tracing import ProxyTracing
from reference_server._sequence import RequestHandle, SamplingParams

from ._common import Options, Result

NAME = "tracing_cost"
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class _Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _request(traceparent: bool) -> Request:
    headers = [(b"content-type", b"application/json")]
    if traceparent:
        headers.append((b"traceparent", TRACEPARENT))
    return Request({"type": "http", "method": "POST", "path": "/v1/completions",
                    "raw_path": b"/v1/completions", "query_string": b"", "headers": headers,
                    "scheme": "http", "server": ("127.0.0.1", 8000), "root_path": ""})


def _finished_handle(tokens: int) -> RequestHandle:
    handle = RequestHandle(32, SamplingParams(max_tokens=tokens), lambda _: None)
    now = time.monotonic()
    handle.admitted_at_s = now + 0.001
    handle.prefill_started_at_s = now + 0.001
    handle.token_times_s = [now + 0.01 + 0.02 * i for i in range(tokens)]
    handle.finish_reason = "length"
    return handle


def _per_call_us(work: Callable[[], None], calls: int, rounds: int) -> float:
    """The best round's mean, in microseconds (a busy machine inflates, never deflates)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def run(options: Options) -> Result:
    calls, rounds = (500, 5) if options.quick else (2000, 15)
    provider = build_tracer_provider(TracingConfig("bench"),
                                     processors=[BatchSpanProcessor(_Dropping())])
    assert provider is not None
    tracer = provider.get_tracer("bench")
    proxy, node = ProxyTracing(tracer), NodeTracing(tracer, node_name="node-0",
                                                    model_name="inferops-tiny")
    client_request, node_request = _request(False), _request(True)
    handle = _finished_handle(16)
    url = "http://127.0.0.1:8001/v1/completions"

    def router_hooks() -> None:
        trace = proxy.start(client_request, "/v1/completions")
        headers = [("content-type", "application/json")]
        trace.attempt("node-0", "POST", url, "inferops-tiny", headers).answered(
            200, streaming=True)
        trace.finish(200)

    def node_hooks() -> None:
        node.start(node_request).finish(200, handle)

    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, model_name="inferops-tiny")
    plain = RequestOutcome("/v1/completions", "POST", 200, e2e_latency_s=0.4,
                           time_to_first_token_s=0.03)
    traced = RequestOutcome("/v1/completions", "POST", 200, e2e_latency_s=0.4,
                            time_to_first_token_s=0.03,
                            trace_id="0af7651916cd43dd8448eb211c80319c")
    try:
        router_us = _per_call_us(router_hooks, calls, rounds)
        node_us = _per_call_us(node_hooks, calls, rounds)
        record_us = _per_call_us(lambda: metrics.record(plain), calls, rounds)
        record_traced_us = _per_call_us(lambda: metrics.record(traced), calls, rounds)
    finally:
        provider.shutdown()
    return Result(
        params={"calls_per_round": calls, "rounds": rounds, "decode_tokens": 16,
                "processor": "BatchSpanProcessor -> dropping exporter"},
        results={
            "router_spans_us_per_request": router_us,
            "node_spans_us_per_request": node_us,
            "metrics_record_us": record_us,
            "metrics_record_with_exemplar_us": record_traced_us,
        },
        table=[
            ("router: server + client span, traceparent", f"{router_us:.1f} us/request"),
            ("node: server + queue/prefill/decode spans", f"{node_us:.1f} us/request"),
            ("RequestMetrics.record, no exemplar", f"{record_us:.1f} us"),
            ("RequestMetrics.record, trace_id exemplar", f"{record_traced_us:.1f} us"),
        ],
    )
