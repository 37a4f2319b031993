"""`/metrics` content negotiation: OpenMetrics (with exemplars, colons kept in vLLM's names)
only for a scraper that asks for it; the Prometheus text format, unchanged, for everyone else."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters import RequestMetrics, RequestOutcome
from reference_server._metrics_exposition import metrics_response, wants_openmetrics

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    RequestMetrics(registry, model_name="inferops-tiny").record(RequestOutcome(
        "/v1/completions", "POST", 200, e2e_latency_s=1.2, trace_id=TRACE))
    return registry


@pytest.mark.parametrize(("accept", "expected"), [
    (None, False),
    ("", False),
    ("*/*", False),
    ("text/plain;version=0.0.4", False),
    ("application/openmetrics-text", True),
    ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,*/*;q=0.1", True),  # Prometheus 3
    ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", True),  # Prometheus 2
    ("application/openmetrics-text;q=0", False),
])
def test_openmetrics_is_served_only_when_asked_for(accept: str | None, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


def test_without_openmetrics_the_body_is_prometheus_text_unchanged(
    registry: CollectorRegistry,
) -> None:
    response = metrics_response(registry, "*/*")
    assert response.body == generate_latest(registry)
    assert response.media_type == "text/plain; version=1.0.0; charset=utf-8"


def test_openmetrics_keeps_the_colons_of_vllm_names_and_carries_the_exemplar(
    registry: CollectorRegistry,
) -> None:
    response = metrics_response(registry, "application/openmetrics-text; version=1.0.0")
    text = bytes(response.body).decode()
    assert response.media_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert text.endswith("# EOF\n")
    assert "# TYPE vllm:e2e_request_latency_seconds histogram" in text
    assert "vllm_" not in text
    bucket = next(line for line in text.splitlines() if TRACE in line)
    assert bucket.startswith('vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.5",'
                             f'model_name="inferops-tiny"}} 1.0 # {{trace_id="{TRACE}"}} 1.2 ')
