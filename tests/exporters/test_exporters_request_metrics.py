"""RequestMetrics: vLLM's names, labels and buckets; the API server's http_requests_total."""

from __future__ import annotations

import pytest
from exporters_doubles import exposition, parse, scrape, value, values
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

from exporters import RequestMetrics, RequestOutcome

MODEL = {"model_name": "inferops-tiny", "engine": "0"}

# vLLM 0.11 vllm/v1/metrics/loggers.py, as text the exposition writes them.
E2E_AND_QUEUE_BUCKETS = ["0.3", "0.5", "0.8", "1.0", "1.5", "2.0", "2.5", "5.0", "10.0", "15.0",
                         "20.0", "30.0", "40.0", "50.0", "60.0", "120.0", "240.0", "480.0",
                         "960.0", "1920.0", "7680.0", "+Inf"]
TTFT_BUCKETS = ["0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5",
                "0.75", "1.0", "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0", "160.0",
                "640.0", "2560.0", "+Inf"]
ITL_BUCKETS = ["0.01", "0.025", "0.05", "0.075", "0.1", "0.15", "0.2", "0.3", "0.4", "0.5",
               "0.75", "1.0", "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0", "+Inf"]

OUTCOMES = [
    RequestOutcome(handler="/v1/completions", method="POST", status_code=200,
                   e2e_latency_s=0.8, time_to_first_token_s=0.1, queue_time_s=0.01,
                   prompt_tokens=12, generation_tokens=16, finished_reason="length",
                   inter_token_latencies_s=(0.04, 0.05)),
    RequestOutcome(handler="/v1/chat/completions", method="POST", status_code=200,
                   e2e_latency_s=2.5, time_to_first_token_s=1.0, queue_time_s=0.3,
                   prompt_tokens=5, generation_tokens=3, finished_reason="stop",
                   inter_token_latencies_s=[0.05, 0.3, 2.5]),
    RequestOutcome(handler="/v1/completions", method="POST", status_code=200,
                   e2e_latency_s=12.0, time_to_first_token_s=2.6, queue_time_s=0.0,
                   prompt_tokens=7, generation_tokens=1, finished_reason="abort"),
    RequestOutcome(handler="/v1/completions", method="POST", status_code=400),
    RequestOutcome(handler="/v1/chat/completions", method="POST", status_code=500),
    RequestOutcome(handler="/v1/chat/completions", method="POST", status_code=503,
                   e2e_latency_s=0.001),
    RequestOutcome(handler="/v1/models", method="GET", status_code=200),
]


Recorded = tuple[CollectorRegistry, RequestMetrics]


@pytest.fixture
def recorded() -> Recorded:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, model_name="inferops-tiny")
    for outcome in OUTCOMES:
        metrics.record(outcome)
    metrics.set_running(2)
    metrics.set_waiting(5)
    metrics.set_kv_cache_usage(0.25)
    return registry, metrics


def buckets(families: dict[str, Metric], family: str) -> dict[str, float]:
    return {s.labels["le"]: s.value for s in families[family].samples
            if s.name == family + "_bucket" and s.labels["model_name"] == "inferops-tiny"
            and s.labels["engine"] == "0"}


def test_e2e_latency_histogram_has_vllms_buckets_and_counts(recorded: Recorded) -> None:
    registry, _ = recorded
    families = parse(exposition(registry))
    e2e = buckets(families, "vllm:e2e_request_latency_seconds")
    assert list(e2e) == E2E_AND_QUEUE_BUCKETS
    # observed: 0.8, 2.5, 12.0 (finished) and 0.001 (the 503 that measured one); le is inclusive
    assert e2e == dict(zip(E2E_AND_QUEUE_BUCKETS,
                           [1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4],
                           strict=True))
    assert value(families, "vllm:e2e_request_latency_seconds",
                 "vllm:e2e_request_latency_seconds_count", **MODEL) == 4
    assert value(families, "vllm:e2e_request_latency_seconds",
                 "vllm:e2e_request_latency_seconds_sum", **MODEL) == pytest.approx(15.301)


def test_ttft_itl_and_queue_histograms(recorded: Recorded) -> None:
    registry, _ = recorded
    families = parse(exposition(registry))
    ttft = buckets(families, "vllm:time_to_first_token_seconds")
    assert list(ttft) == TTFT_BUCKETS
    assert ttft["0.08"] == 0 and ttft["0.1"] == 1 and ttft["0.75"] == 1
    assert ttft["1.0"] == 2 and ttft["2.5"] == 2 and ttft["5.0"] == 3 and ttft["+Inf"] == 3
    itl = buckets(families, "vllm:inter_token_latency_seconds")
    assert list(itl) == ITL_BUCKETS
    assert [itl[le] for le in ("0.025", "0.05", "0.2", "0.3", "1.0", "2.5", "+Inf")] == [
        0, 3, 3, 4, 4, 5, 5]
    assert value(families, "vllm:inter_token_latency_seconds",
                 "vllm:inter_token_latency_seconds_sum", **MODEL) == pytest.approx(2.94)
    queue = buckets(families, "vllm:request_queue_time_seconds")
    assert list(queue) == E2E_AND_QUEUE_BUCKETS
    assert queue["0.3"] == 3 and queue["+Inf"] == 3


def test_exact_exposition_lines(recorded: Recorded) -> None:
    registry, _ = recorded
    lines = exposition(registry).splitlines()
    e, m = 'engine="0"', 'model_name="inferops-tiny"'
    for line in (
        "# TYPE vllm:e2e_request_latency_seconds histogram",
        f'vllm:e2e_request_latency_seconds_bucket{{{e},le="2.5",{m}}} 3.0',
        f'vllm:time_to_first_token_seconds_bucket{{{e},le="1.0",{m}}} 2.0',
        "# TYPE vllm:request_success_total counter",
        f'vllm:request_success_total{{{e},finished_reason="stop",{m}}} 1.0',
        f'vllm:request_success_total{{{e},finished_reason="length",{m}}} 1.0',
        f'vllm:request_success_total{{{e},finished_reason="abort",{m}}} 1.0',
        'vllm:prompt_tokens_total{engine="0",model_name="inferops-tiny"} 24.0',
        'vllm:generation_tokens_total{engine="0",model_name="inferops-tiny"} 20.0',
        'vllm:num_requests_running{engine="0",model_name="inferops-tiny"} 2.0',
        'vllm:num_requests_waiting{engine="0",model_name="inferops-tiny"} 5.0',
        'vllm:kv_cache_usage_perc{engine="0",model_name="inferops-tiny"} 0.25',
        "# HELP http_requests_total Total number of requests by method, status and handler.",
        "# TYPE http_requests_total counter",
        'http_requests_total{handler="/v1/completions",method="POST",status="2xx"} 2.0',
    ):
        assert line in lines, line


def test_http_requests_by_status_class(recorded: Recorded) -> None:
    registry, _ = recorded
    families = parse(exposition(registry))
    assert values(families, "http_requests", "http_requests_total") == {
        (("handler", "/v1/completions"), ("method", "POST"), ("status", "2xx")): 2,
        (("handler", "/v1/chat/completions"), ("method", "POST"), ("status", "2xx")): 1,
        (("handler", "/v1/completions"), ("method", "POST"), ("status", "4xx")): 1,
        (("handler", "/v1/chat/completions"), ("method", "POST"), ("status", "5xx")): 2,
        (("handler", "/v1/models"), ("method", "GET"), ("status", "2xx")): 1,
    }


def test_fresh_metrics_export_zero_series_like_vllm() -> None:
    registry = CollectorRegistry()
    RequestMetrics(registry, model_name="m")
    families = parse(exposition(registry))
    assert values(families, "vllm:request_success", "vllm:request_success_total") == {
        (("engine", "0"), ("finished_reason", r), ("model_name", "m")): 0.0
        for r in ("stop", "length", "abort")
    }
    assert value(families, "vllm:e2e_request_latency_seconds",
                 "vllm:e2e_request_latency_seconds_count", model_name="m") == 0
    assert values(families, "http_requests", "http_requests_total") == {}
    assert set(families) >= {
        "vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds", "vllm:request_queue_time_seconds",
        "vllm:prompt_tokens", "vllm:generation_tokens", "vllm:request_success",
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "http_requests",
    }
    assert families["vllm:num_requests_running"].type == "gauge"
    assert families["vllm:prompt_tokens"].type == "counter"


def test_served_over_http(recorded: Recorded) -> None:
    registry, _ = recorded
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        _, families = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert value(families, "vllm:request_success", "vllm:request_success_total",
                 finished_reason="length") == 1
    assert value(families, "http_requests", "http_requests_total", status="5xx") == 2


def test_registries_stay_apart() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    RequestMetrics(first, model_name="a").record(OUTCOMES[0])
    RequestMetrics(second, model_name="b")
    assert value(parse(exposition(second)), "vllm:request_success",
                 "vllm:request_success_total", finished_reason="length") == 0


@pytest.mark.parametrize(("fields", "message"), [
    ({"status_code": 99}, "status_code"),
    ({"status_code": 600}, "status_code"),
    ({"e2e_latency_s": -0.1}, "e2e_latency_s"),
    ({"time_to_first_token_s": float("nan")}, "time_to_first_token_s"),
    ({"prompt_tokens": -1}, "prompt_tokens"),
    ({"finished_reason": "eos"}, "finished_reason must be one of stop, length, abort"),
    ({"inter_token_latencies_s": (0.1, -1.0)}, "inter_token_latencies_s"),
])
def test_outcome_validation(fields: dict[str, object], message: str) -> None:
    base = {"handler": "/v1/completions", "method": "POST", "status_code": 200}
    with pytest.raises(ValueError, match=message):
        RequestOutcome(**{**base, **fields})  # type: ignore[arg-type]


def test_gauge_validation() -> None:
    metrics = RequestMetrics(CollectorRegistry(), model_name="m")
    with pytest.raises(ValueError, match=r"0\.\.1"):
        metrics.set_kv_cache_usage(1.5)
    with pytest.raises(ValueError, match="running"):
        metrics.set_running(-1)
    with pytest.raises(ValueError, match="waiting"):
        metrics.set_waiting(1.5)  # type: ignore[arg-type]


def test_prefix_cache_and_preemption_counters_under_vllms_names() -> None:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, model_name="m")
    fresh = parse(exposition(registry))
    assert value(fresh, "vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total",
                 model_name="m") == 0
    metrics.count_prefix_cache(64, 48)
    metrics.count_prefix_cache(32, 0)
    metrics.count_preemptions(2)
    families = parse(exposition(registry))
    assert value(families, "vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total",
                 model_name="m", engine="0") == 96
    assert value(families, "vllm:prefix_cache_hits", "vllm:prefix_cache_hits_total",
                 model_name="m", engine="0") == 48
    assert value(families, "vllm:num_preemptions", "vllm:num_preemptions_total",
                 model_name="m", engine="0") == 2
    assert families["vllm:prefix_cache_hits"].type == "counter"
    assert families["vllm:prefix_cache_hits"].documentation == (
        "Prefix cache hits, in terms of number of cached tokens.")


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m.count_prefix_cache(-1, 0), "queries_tokens"),
    (lambda m: m.count_prefix_cache(4, 5), r"hits_tokens \(5\) cannot exceed queries_tokens \(4\)"),
    (lambda m: m.count_preemptions(-2), "preemptions"),
])
def test_cache_counter_validation(call: object, message: str) -> None:
    metrics = RequestMetrics(CollectorRegistry(), model_name="m")
    with pytest.raises(ValueError, match=message):
        call(metrics)  # type: ignore[operator]
