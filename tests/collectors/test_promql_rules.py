"""The PromQL the rest of InferOps sends, on a small fleet written to a real SQLite store.

The node alert rules are read from inferops/defaults/node-alerts.yaml and the SLO
expressions are built by the slo package, so these tests break if either changes in a way
the embedded engine cannot answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors import SampleStore, ScrapedSample, StoreSource, open_database
from slo import (
    LatencySli,
    RatioSli,
    SloEvaluator,
    SloSpec,
    burn_rate_alert_rules,
    load_alerting_rules,
    load_burn_rate_windows,
    load_slo_specs,
)
from slo._sli_queries import error_ratio_expr

ROOT = Path(__file__).parents[2]
NODE_ALERTS = ROOT / "inferops" / "defaults" / "node-alerts.yaml"
FLEET_SLOS = ROOT / "inferops" / "defaults" / "fleet-slos.yaml"
NOW = 600.0  # ten minutes of 1-second scrapes, t = 0..600


def counter(name: str, labels: dict[str, str], per_s: float) -> list[ScrapedSample]:
    return [ScrapedSample(name, labels, per_s * t, float(t)) for t in range(0, 601)]


def gauge(name: str, labels: dict[str, str], value: float) -> list[ScrapedSample]:
    return [ScrapedSample(name, labels, value, float(t)) for t in range(590, 601)]


def fleet_samples() -> list[ScrapedSample]:
    samples: list[ScrapedSample] = []
    node = {"job": "nodes", "instance": "127.0.0.1:18001", "node": "node-0"}
    node1 = {"job": "nodes", "instance": "127.0.0.1:18002", "node": "node-1"}
    router = {"job": "router", "instance": "127.0.0.1:18000"}
    request = {"handler": "/v1/completions", "method": "POST"}
    # up: node-1 is down; the router is down too, but it is not a node.
    samples += gauge("up", node, 1.0) + gauge("up", node1, 0.0) + gauge("up", router, 0.0)
    # Requests: node-0 fails 3 in 10, node-1 never fails (it has no 5xx series at all).
    samples += counter("http_requests_total", {**node, **request, "status": "2xx"}, 7.0)
    samples += counter("http_requests_total", {**node, **request, "status": "5xx"}, 3.0)
    samples += counter("http_requests_total", {**node1, **request, "status": "2xx"}, 10.0)
    # The gateway: 9 good and 1 failing request per second, 8 in 10 within 2.5 s.
    samples += counter("http_requests_total", {**router, **request, "status": "2xx"}, 9.0)
    samples += counter("http_requests_total", {**router, **request, "status": "5xx"}, 1.0)
    e2e = "vllm:e2e_request_latency_seconds"
    model = {"model_name": "inferops-tiny"}
    for le, per_s in (("1.0", 5.0), ("2.5", 8.0), ("+Inf", 10.0)):
        samples += counter(f"{e2e}_bucket", {**router, **model, "le": le}, per_s)
    samples += counter(f"{e2e}_count", {**router, **model}, 10.0)
    # Time to first token: node-0 is slow (p90 in the 1..2.5 s bucket), node-1 fast. node-0
    # reports two series per bucket (two model names) that `sum by (node, le)` adds up.
    ttft = "vllm:time_to_first_token_seconds_bucket"
    for le, slow, fast in (
        ("0.5", 0.0, 8.0),
        ("1.0", 1.0, 10.0),
        ("2.5", 10.0, 10.0),
        ("+Inf", 10.0, 10.0),
    ):
        for name in ("a", "b"):
            samples += counter(ttft, {**node, "model_name": name, "le": le}, slow / 2)
        samples += counter(ttft, {**node1, "model_name": "a", "le": le}, fast)
    # GPUs: node-0's GPU 0 reported XID 79.
    gpu = {"Hostname": "h", "modelName": "NVIDIA H100 80GB HBM3", "device": "nvidia0"}
    samples += gauge("DCGM_FI_DEV_XID_ERRORS", {**node, **gpu, "gpu": "0", "UUID": "GPU-a"}, 79)
    samples += gauge("DCGM_FI_DEV_XID_ERRORS", {**node, **gpu, "gpu": "1", "UUID": "GPU-b"}, 0)
    samples += gauge("DCGM_FI_DEV_XID_ERRORS", {**node1, **gpu, "gpu": "0", "UUID": "GPU-c"}, 0)
    # node-1's GPU throttles for heat 250 ms of every second; node-0's GPUs never do.
    samples += counter(
        "DCGM_FI_DEV_THERMAL_VIOLATION", {**node1, **gpu, "gpu": "0", "UUID": "GPU-c"}, 250_000.0
    )
    samples += counter(
        "DCGM_FI_DEV_THERMAL_VIOLATION", {**node, **gpu, "gpu": "0", "UUID": "GPU-a"}, 0.0
    )
    # The router's view: node-0 fails its health check, node-2 too but it is being drained.
    # node-3 passes its health checks but the router ejected it after consecutive failures.
    for name, healthy, draining, ejected in (
        ("node-0", 0, 0, 0), ("node-1", 1, 0, 0), ("node-2", 0, 1, 0), ("node-3", 1, 0, 1),
    ):
        samples += gauge("inferops_router_node_healthy", {**router, "node": name}, healthy)
        samples += gauge("inferops_router_node_draining", {**router, "node": name}, draining)
        samples += gauge("inferops_router_node_ejected", {**router, "node": name}, ejected)
    # KV cache: node-0 is full while nothing runs and 4 wait (a leak); node-1 is full too,
    # but runs 12 requests (busy, not leaking).
    for labels, usage, running, waiting in ((node, 0.97, 0, 4), (node1, 0.98, 12, 3)):
        samples += gauge("vllm:kv_cache_usage_perc", {**labels, **model}, usage)
        samples += gauge("vllm:num_requests_running", {**labels, **model}, running)
        samples += gauge("vllm:num_requests_waiting", {**labels, **model}, waiting)
    return samples


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSource]:
    engine = open_database(f"sqlite:///{tmp_path_factory.mktemp('fleet')}/store.db")
    store = SampleStore(engine)
    store.append(fleet_samples())
    yield StoreSource(store)
    engine.dispose()


def evaluate(source: StoreSource, expr: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(s.labels), s.value) for s in source.query(expr, NOW)]


def test_the_default_node_rules(source: StoreSource) -> None:
    rules = {rule.alert: rule.expr for rule in load_alerting_rules(NODE_ALERTS)}
    assert set(rules) == {
        "NodeDown", "NodeUnhealthy", "NodeHighErrorRate", "NodeHighLatency", "GpuXidError",
        "GpuThermalSlowdown", "KvCacheExhausted",
    }

    [(labels, value)] = evaluate(source, rules["NodeDown"])
    assert labels == {
        "__name__": "up",
        "job": "nodes",
        "instance": "127.0.0.1:18002",
        "node": "node-1",
    }
    assert value == 0.0

    [(labels, value)] = evaluate(source, rules["NodeHighErrorRate"])
    assert labels == {"node": "node-0"}
    assert value == pytest.approx(0.3, rel=1e-12)

    # node-0: per second 0, 1, 10, 10 observations in the 0.5 / 1 / 2.5 / +Inf buckets;
    # rank 0.9 * 10 = 9 lies in (1, 2.5], which holds 9: 1 + 1.5 * (9 - 1) / 9.
    [(labels, value)] = evaluate(source, rules["NodeHighLatency"])
    assert labels == {"node": "node-0"}
    assert value == pytest.approx(1.0 + 1.5 * 8 / 9, rel=1e-12)

    [(labels, value)] = evaluate(source, rules["GpuXidError"])
    assert labels == {"node": "node-0", "gpu": "0", "UUID": "GPU-a"}
    assert value == 79.0

    router = {"job": "router", "instance": "127.0.0.1:18000"}
    assert sorted(evaluate(source, rules["NodeUnhealthy"]), key=lambda s: s[0]["node"]) == [
        ({"__name__": "inferops_router_node_healthy", **router, "node": "node-0"}, 0.0),
        ({"__name__": "inferops_router_node_ejected", **router, "node": "node-3"}, 1.0),
    ]

    # 250,000 us of throttling per second; node-0's counter never moves.
    assert evaluate(source, rules["GpuThermalSlowdown"]) == [
        ({"node": "node-1", "gpu": "0", "UUID": "GPU-c"}, pytest.approx(250_000.0, rel=1e-12))
    ]

    assert evaluate(source, rules["KvCacheExhausted"]) == [({"node": "node-0"}, 0.97)]


def test_the_p90_of_the_healthy_node(source: StoreSource) -> None:
    expr = (
        "histogram_quantile(0.9, sum by (node, le) "
        '(rate(vllm:time_to_first_token_seconds_bucket{job="nodes"}[10s])))'
    )
    # node-1: 8 of 10 within 0.5 s, all within 1 s: rank 9 in (0.5, 1]: 0.5 + 0.5 * 1/2.
    assert evaluate(source, expr) == [
        ({"node": "node-0"}, pytest.approx(1.0 + 1.5 * 8 / 9)),
        ({"node": "node-1"}, pytest.approx(0.75)),
    ]


@pytest.mark.parametrize("window_s", [5.0, 10.0, 60.0, 360.0, 30 * 86400.0])
def test_slo_error_ratio_queries(source: StoreSource, window_s: float) -> None:
    availability, latency = load_slo_specs(FLEET_SLOS)
    assert isinstance(availability.sli, RatioSli) and isinstance(latency.sli, LatencySli)
    for zero in (False, True):
        expr = error_ratio_expr(availability.sli, window_s, zero_without_errors=zero)
        assert evaluate(source, expr) == [({}, pytest.approx(0.1, rel=1e-9))]
    expr = error_ratio_expr(latency.sli, window_s, block=True)
    assert evaluate(source, expr) == [({}, pytest.approx(0.2, rel=1e-9))]


def test_a_service_that_never_failed_reads_zero_with_or_vector(source: StoreSource) -> None:
    sli = RatioSli(
        bad='http_requests_total{job="nodes",node="node-1",status="5xx"}',
        total='http_requests_total{job="nodes",node="node-1"}',
    )
    assert evaluate(source, error_ratio_expr(sli, 60.0)) == []
    assert evaluate(source, error_ratio_expr(sli, 60.0, zero_without_errors=True)) == [({}, 0.0)]


def test_burn_rate_alert_rules_fire_on_the_embedded_engine(source: StoreSource) -> None:
    """1 in 10 failing is 10x the 1% budget: the 6x page and both tickets fire, 14.4x not."""
    availability, latency = load_slo_specs(FLEET_SLOS)
    windows = load_burn_rate_windows("demo-v1")
    page, ticket = burn_rate_alert_rules(availability, windows)
    assert evaluate(source, page.expr) == [({}, pytest.approx(0.1, rel=1e-9))]
    assert evaluate(source, ticket.expr) == [({}, pytest.approx(0.1, rel=1e-9))]
    # Latency: 2 in 10 too slow against a 5% budget = 4x: only the tickets (3x, 1x) fire.
    page, ticket = burn_rate_alert_rules(latency, windows)
    assert evaluate(source, page.expr) == []
    assert evaluate(source, ticket.expr) == [({}, pytest.approx(0.2, rel=1e-9))]


def test_slo_evaluator_over_the_store(source: StoreSource) -> None:
    availability, latency = load_slo_specs(FLEET_SLOS)
    windows = load_burn_rate_windows("demo-v1")
    evaluator = SloEvaluator(source)
    status = evaluator.evaluate(availability, NOW, windows)
    assert status.sli_value == pytest.approx(0.9, rel=1e-9)
    assert status.error_budget_remaining == pytest.approx(-9.0, rel=1e-9)
    assert set(status.burn_rates) == {5.0, 10.0, 30.0, 120.0, 360.0}
    assert all(rate == pytest.approx(10.0, rel=1e-9) for rate in status.burn_rates.values())
    status = evaluator.evaluate(
        SloSpec(name="lat", objective=0.95, sli=latency.sli, window_s=3600.0), NOW
    )
    assert status.sli_value == pytest.approx(0.8, rel=1e-9)


def test_dashboard_queries(source: StoreSource) -> None:
    from dashboards import _queries

    by_status = evaluate(source, _queries.request_rate_by_status(30.0))
    assert by_status == [
        ({"node": "node-0", "status": "2xx"}, pytest.approx(7.0)),
        ({"node": "node-0", "status": "5xx"}, pytest.approx(3.0)),
        ({"node": "node-1", "status": "2xx"}, pytest.approx(10.0)),
    ]
    assert evaluate(source, _queries.NODE_UP) == [
        ({"node": "node-0"}, 1.0),
        ({"node": "node-1"}, 0.0),
    ]
    lines = source.query_range(_queries.request_rate(30.0), NOW - 3600, NOW, 10.0)
    assert [line.labels for line in lines] == [{"node": "node-0"}, {"node": "node-1"}]
    # The data begins at t=0: the first point with a rate is the first step after t=0.
    assert lines[0].timestamps_s[0] == 10.0 and lines[0].timestamps_s[-1] == NOW
    assert lines[1].values[-1] == pytest.approx(10.0)
