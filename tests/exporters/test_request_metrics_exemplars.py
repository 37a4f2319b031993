"""Exemplars on the request-latency histograms: the trace id of a request rides along with its
e2e latency and time-to-first-token observations in OpenMetrics, and changes nothing in the
Prometheus text format."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import ALLOWUTF8
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from exporters import RequestMetrics, RequestOutcome

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def registry_with(trace_id: str | None) -> CollectorRegistry:
    registry = CollectorRegistry()
    RequestMetrics(registry, model_name="inferops-tiny").record(RequestOutcome(
        "/v1/completions", "POST", 200, e2e_latency_s=0.42, time_to_first_token_s=0.03,
        queue_time_s=0.01, inter_token_latencies_s=(0.02,), finished_reason="length",
        trace_id=trace_id))
    return registry


def without_created(text: bytes) -> list[bytes]:
    """The exposition minus its `_created` samples (the two registries were made at
    different instants)."""
    return [line for line in text.splitlines() if b"_created{" not in line]


def test_prometheus_text_is_byte_for_byte_the_same_with_a_trace_id() -> None:
    with_trace = without_created(generate_latest(registry_with(TRACE)))
    assert with_trace == without_created(generate_latest(registry_with(None)))
    assert len(with_trace) > 100


def test_openmetrics_carries_the_trace_id_on_the_bucket_the_observation_fell_in() -> None:
    text = openmetrics_latest(registry_with(TRACE), escaping=ALLOWUTF8).decode()
    with_exemplar = [line.split(" # ")[0] for line in text.splitlines() if TRACE in line]
    assert with_exemplar == [
        'vllm:time_to_first_token_seconds_bucket{engine="0",le="0.04",model_name="inferops-tiny"}'
        " 1.0",
        'vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.5",model_name="inferops-tiny"}'
        " 1.0",
    ]
    e2e = next(line for line in text.splitlines() if TRACE in line and "e2e" in line)
    assert e2e.split(" # ")[1].startswith(f'{{trace_id="{TRACE}"}} 0.42 ')


def test_no_trace_id_means_no_exemplar() -> None:
    text = openmetrics_latest(registry_with(None), escaping=ALLOWUTF8).decode()
    assert "trace_id" not in text


@pytest.mark.parametrize("bad", ["", "4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f35", "x" * 32])
def test_a_malformed_trace_id_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^trace_id must be 32 lowercase hex digits, got "):
        RequestOutcome("/v1/completions", "POST", 200, trace_id=bad)
