"""A retried request is one trace with two client spans: the failed attempt (its error type and
the node's 5xx) and the one that answered, whose `traceparent` is what the second node got."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _router_support import (
    AUTH,
    CLIENT,
    RouterServer,
    StandinNode,
    router_for,
    standin_nodes,
    wait_until,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from reference_server import TracingConfig, build_tracer_provider


@pytest.fixture
def traced() -> Iterator[tuple[RouterServer, list[StandinNode], InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    provider = build_tracer_provider(TracingConfig("router"),
                                     processors=[SimpleSpanProcessor(spans)])
    with standin_nodes(2) as nodes:
        router = router_for(nodes, routing_policy="round-robin", tracer_provider=provider)
        with RouterServer(router) as server:
            wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10.0,
                       "both nodes healthy")
            yield server, nodes, spans


def test_a_retried_request_has_one_client_span_per_attempt(
    traced: tuple[RouterServer, list[StandinNode], InMemorySpanExporter],
) -> None:
    server, nodes, spans = traced
    failing = CLIENT.post(f"{server.url}/admin/nodes/node-0/faults", headers=AUTH,
                          json={"kind": "error-burst", "ratio": 1.0})
    assert failing.status_code == 200, failing.text
    retried = None
    for _ in range(2):  # round robin: one of two requests tries node-0 first
        spans.clear()
        answer = CLIENT.post(f"{server.url}/v1/completions", timeout=10.0,
                             json={"model": "inferops-tiny", "prompt": "x", "max_tokens": 2})
        assert answer.status_code == 200, answer.text
        finished = spans.get_finished_spans()
        root = next(s for s in finished if s.name == "POST /v1/completions")
        if (root.attributes or {})["inferops.retried"]:
            retried = (root, [s for s in finished if s.name == "POST"])
            break
    assert retried is not None, "no request tried node-0 first"
    root, attempts = retried
    assert [(s.attributes or {})["inferops.node"] for s in attempts] == ["node-0", "node-1"]
    assert [(s.attributes or {})["inferops.retry"] for s in attempts] == [False, True]
    assert {s.parent.span_id for s in attempts if s.parent} == {root.context.span_id}
    first, second = attempts
    assert (first.attributes or {})["error.type"] == "5xx"
    assert (first.attributes or {})["http.response.status_code"] == 500
    assert first.status.status_code == StatusCode.ERROR
    assert (second.attributes or {})["http.response.status_code"] == 200
    assert (root.attributes or {})["inferops.node"] == "node-1"
    assert (root.attributes or {})["http.response.status_code"] == 200

    received = nodes[1].stats()["last_headers"]
    trace_id = format(second.context.trace_id, "032x")
    span_id = format(second.context.span_id, "016x")
    version, got_trace, got_parent, flags = received["traceparent"].split("-")
    assert (version, got_trace, got_parent) == ("00", trace_id, span_id)
    assert int(flags, 16) & 0x01  # sampled
