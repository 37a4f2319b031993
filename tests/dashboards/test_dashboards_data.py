"""`DashboardData`: PromQL and the stores in, exact frozen rows out, no Dash involved."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa
from dashboards_doubles import (
    Alert,
    AlertBook,
    Decision,
    DecisionBook,
    ScriptedSource,
    SetClock,
    sample,
    series,
)

from collectors import InstantSample, MetricSource, RangeSeries
from dashboards import (
    AlertRow,
    BurnRate,
    ChartKind,
    ChartSeries,
    DashboardArgumentError,
    DashboardData,
    FleetRow,
    Incident,
    IncidentEvent,
    NodeStatus,
    RemediationRow,
    SloAlert,
    SloRow,
    TimeRangeError,
)
from dashboards import _queries as q
from dashboards._data import series_name
from dashboards._fleet_rows import node_status
from dashboards._node_order import natural_sort_key
from remediation import DecisionLog, Outcome

NOW_S = 1_700_000_000.0

FLEET_QUERIES = (
    q.NODE_UP, q.request_rate_by_status(30.0), q.latency_quantile(0.5, 30.0),
    q.latency_quantile(0.99, 30.0), q.GPU_UTIL_PERCENT, q.QUEUED_REQUESTS, q.KV_CACHE_USAGE,
    q.ttft_quantile(0.5, 30.0), q.ttft_quantile(0.99, 30.0), q.GPU_TEMPERATURE_CELSIUS,
    q.GPU_POWER_WATTS, q.GPU_MEMORY_USED_MIB, q.GPU_MEMORY_FREE_MIB, q.ROUTER_NODE_DRAINING,
    q.ROUTER_NODE_HEALTHY, q.ROUTER_IN_FLIGHT,
)
FLEET_ANSWER_NAMES = (
    "up", "requests", "p50", "p99", "gpu", "queue", "kv", "ttft_p50", "ttft_p99", "temp",
    "power", "mem_used", "mem_free", "draining", "healthy", "in_flight",
)
MIB = 1024 * 1024
SLO_QUERIES = (q.SLO_SLI, q.SLO_OBJECTIVE, q.SLO_BUDGET_REMAINING, q.SLO_BURN_RATE)


def data_over(
    source: MetricSource, alerts: AlertBook | None = None, decisions: DecisionBook | None = None,
) -> DashboardData:
    return DashboardData(
        source, alerts or AlertBook(), decisions or DecisionBook(), clock=SetClock(NOW_S)
    )


def fleet_source(**answers: list[InstantSample]) -> ScriptedSource:
    """Every fleet query answered (empty unless given by its position name)."""
    return ScriptedSource({
        expr: answers.get(name, [])
        for name, expr in zip(FLEET_ANSWER_NAMES, FLEET_QUERIES, strict=True)
    })


@pytest.mark.parametrize(
    ("expr", "promql"),
    [
        (q.request_rate_by_status(30.0),
         'sum by (node, status) (rate(http_requests_total{job="nodes"}[30s]))'),
        (q.request_rate_by_status(90.0),
         'sum by (node, status) (rate(http_requests_total{job="nodes"}[1m30s]))'),
        (q.request_rate(30.0), 'sum by (node) (rate(http_requests_total{job="nodes"}[30s]))'),
        (q.latency_quantile(0.99, 30.0),
         'histogram_quantile(0.99, sum by (node, le) '
         '(rate(vllm:e2e_request_latency_seconds_bucket{job="nodes"}[30s])))'),
        (q.latency_quantile(0.5, 3600.0),
         'histogram_quantile(0.5, sum by (node, le) '
         '(rate(vllm:e2e_request_latency_seconds_bucket{job="nodes"}[1h])))'),
        (q.NODE_UP, 'max by (node) (up{job="nodes"})'),
        (q.GPU_UTIL_PERCENT, 'avg by (node) (DCGM_FI_DEV_GPU_UTIL{job="nodes"})'),
        (q.QUEUED_REQUESTS, 'sum by (node) (vllm:num_requests_waiting{job="nodes"})'),
        (q.KV_CACHE_USAGE, 'max by (node) (vllm:kv_cache_usage_perc{job="nodes"})'),
        (q.SLO_BURN_RATE, "slo:burn_rate:ratio"),
        (q.ttft_quantile(0.5, 30.0),
         'histogram_quantile(0.5, sum by (node, le) '
         '(rate(vllm:time_to_first_token_seconds_bucket{job="nodes"}[30s])))'),
        (q.GPU_TEMPERATURE_CELSIUS, 'max by (node) (DCGM_FI_DEV_GPU_TEMP{job="nodes"})'),
        (q.GPU_POWER_WATTS, 'sum by (node) (DCGM_FI_DEV_POWER_USAGE{job="nodes"})'),
        (q.GPU_MEMORY_USED_MIB, 'sum by (node) (DCGM_FI_DEV_FB_USED{job="nodes"})'),
        (q.GPU_MEMORY_FREE_MIB, 'sum by (node) (DCGM_FI_DEV_FB_FREE{job="nodes"})'),
        (q.ROUTER_NODE_DRAINING,
         'max by (node) (inferops_router_node_draining{job="router"})'),
        (q.ROUTER_NODE_HEALTHY, 'max by (node) (inferops_router_node_healthy{job="router"})'),
        (q.ROUTER_IN_FLIGHT, 'sum by (node) (inferops_router_in_flight{job="router"})'),
    ],
    ids=[
        "requests by node and status", "a window in Prometheus duration syntax",
        "requests by node", "p99 latency", "p50 latency over an hour", "node up",
        "GPU utilization", "queued requests", "KV-cache usage", "SLO burn rates",
        "time to first token", "hottest GPU", "power of all GPUs", "memory used",
        "memory free", "router drain", "router health", "router in flight",
    ],
)
def test_the_dashboard_asks_prometheus_compatible_promql_of_the_nodes_job(
    expr: str, promql: str
) -> None:
    assert expr == promql


def test_the_fleet_table_has_one_exact_row_per_node_in_natural_order() -> None:
    source = fleet_source(
        up=[sample(1, node="node-0"), sample(0, node="node-1"), sample(1, node="node-2"),
            sample(1, node="node-10")],
        requests=[
            sample(9.0, node="node-0", status="2xx"), sample(1.0, node="node-0", status="5xx"),
            sample(0.0, node="node-2", status="2xx"),
            sample(4.0, node="node-10", status="2xx"), sample(1.0, node="node-10", status="4xx"),
            sample(math.nan, node="node-10", status="5xx"), sample(3.0, status="2xx"),
        ],
        p50=[sample(0.25, node="node-0"), sample(math.nan, node="node-2")],
        p99=[sample(1.5, node="node-0"), sample(math.inf, node="node-10")],
        gpu=[sample(87.4, node="node-0"), sample(12.0, node="node-3")],
        queue=[sample(2.0, node="node-0")],
        kv=[sample(0.42, node="node-0")],
        ttft_p50=[sample(0.04, node="node-0")],
        ttft_p99=[sample(0.12, node="node-0"), sample(math.nan, node="node-1")],
        temp=[sample(67.0, node="node-0")],
        power=[sample(512.5, node="node-0")],
        mem_used=[sample(40_960.0, node="node-0"), sample(1_024.0, node="node-3")],
        mem_free=[sample(40_960.0, node="node-0")],
        draining=[sample(0, node="node-0"), sample(0, node="node-1"), sample(1, node="node-2"),
                  sample(0, node="node-10")],
        healthy=[sample(1, node="node-0"), sample(1, node="node-1"), sample(1, node="node-2"),
                 sample(1, node="node-10")],
        in_flight=[sample(0, node="node-0"), sample(0, node="node-2"),
                   sample(0, node="node-10")],
    )

    rows = data_over(source).fleet(NOW_S)

    assert rows == [
        FleetRow(node="node-0", up=True, requests_per_s=10.0, p50_s=0.25, p99_s=1.5,
                 error_ratio=0.1, gpu_util_percent=87.4, queue=2.0, kv_usage=0.42,
                 status=NodeStatus.SERVING, ttft_p50_s=0.04, ttft_p99_s=0.12,
                 gpu_temperature_celsius=67.0, gpu_power_watts=512.5,
                 gpu_memory_used_bytes=40_960 * MIB, gpu_memory_total_bytes=81_920 * MIB,
                 in_flight=0.0),
        FleetRow(node="node-1", up=False, requests_per_s=None, p50_s=None, p99_s=None,
                 error_ratio=None, gpu_util_percent=None, queue=None, kv_usage=None,
                 status=NodeStatus.DOWN),
        FleetRow(node="node-2", up=True, requests_per_s=0.0, p50_s=None, p99_s=None,
                 error_ratio=None, gpu_util_percent=None, queue=None, kv_usage=None,
                 status=NodeStatus.DRAINED, in_flight=0.0),
        FleetRow(node="node-3", up=None, requests_per_s=None, p50_s=None, p99_s=None,
                 error_ratio=None, gpu_util_percent=12.0, queue=None, kv_usage=None,
                 gpu_memory_used_bytes=1_024 * MIB),
        FleetRow(node="node-10", up=True, requests_per_s=5.0, p50_s=None, p99_s=math.inf,
                 error_ratio=0.0, gpu_util_percent=None, queue=None, kv_usage=None,
                 status=NodeStatus.SERVING, in_flight=0.0),
    ]
    assert [(kind, expr, at) for kind, expr, at in source.asked] == [
        ("query", expr, NOW_S) for expr in FLEET_QUERIES
    ]


def test_an_empty_store_gives_an_empty_fleet() -> None:
    assert data_over(fleet_source()).fleet(NOW_S) == []


def test_the_rate_window_is_the_one_configured() -> None:
    windowed = {q.request_rate_by_status(30.0): q.request_rate_by_status(60.0),
                q.latency_quantile(0.5, 30.0): q.latency_quantile(0.5, 60.0),
                q.latency_quantile(0.99, 30.0): q.latency_quantile(0.99, 60.0),
                q.ttft_quantile(0.5, 30.0): q.ttft_quantile(0.5, 60.0),
                q.ttft_quantile(0.99, 30.0): q.ttft_quantile(0.99, 60.0)}
    source = ScriptedSource({windowed.get(expr, expr): [] for expr in FLEET_QUERIES})
    data = DashboardData(source, AlertBook(), DecisionBook(), rate_window_s=60.0)
    assert (data.fleet(NOW_S), data.rate_window_s) == ([], 60.0)


@pytest.mark.parametrize(
    ("up", "healthy", "draining", "in_flight", "status"),
    [
        (1.0, 1.0, 0.0, 0.0, NodeStatus.SERVING),
        (1.0, None, None, None, NodeStatus.SERVING),
        (1.0, 1.0, 1.0, 2.0, NodeStatus.DRAINING),
        (1.0, 1.0, 1.0, 0.0, NodeStatus.DRAINED),
        (1.0, 1.0, 1.0, None, NodeStatus.DRAINED),
        (None, 1.0, 1.0, 0.0, NodeStatus.DRAINED),
        (0.0, 1.0, 1.0, 0.0, NodeStatus.DOWN),
        (1.0, 0.0, 1.0, 0.0, NodeStatus.DOWN),
        (1.0, 0.0, 0.0, 0.0, NodeStatus.DOWN),
        (0.0, None, None, None, NodeStatus.DOWN),
        (None, 1.0, 0.0, 0.0, NodeStatus.SERVING),
        (None, None, None, None, NodeStatus.UNKNOWN),
    ],
    ids=[
        "scraped, healthy, not drained: serving", "scraped, no router: serving",
        "drained with requests in flight: draining", "drained and idle: drained",
        "drained, in-flight unknown: drained", "drained, never scraped: drained",
        "drained but its scrape fails: down", "drained but the router's check fails: down",
        "the router's health check fails: down", "the scrape fails, no router: down",
        "only the router knows it, healthy: serving", "nobody knows it: unknown",
    ],
)
def test_a_node_status_combines_its_scrape_and_the_router_as_the_router_does(
    up: float | None, healthy: float | None, draining: float | None, in_flight: float | None,
    status: NodeStatus,
) -> None:
    assert node_status(up=up, healthy=healthy, draining=draining, in_flight=in_flight) is status


def test_the_slo_table_has_one_row_per_slo_with_burn_rates_shortest_window_first() -> None:
    source = ScriptedSource({
        q.SLO_SLI: [sample(0.995, slo="router-availability"), sample(0.97, slo="router-latency")],
        q.SLO_OBJECTIVE: [sample(0.99, slo="router-availability"),
                          sample(0.95, slo="router-latency")],
        q.SLO_BUDGET_REMAINING: [sample(0.5, slo="router-availability"),
                                 sample(math.nan, slo="router-latency")],
        q.SLO_BURN_RATE: [
            sample(2.0, slo="router-availability", window="1h"),
            sample(14.4, slo="router-availability", window="5m"),
            sample(0.5, slo="router-availability", window="3d"),
            sample(9.0, slo="router-availability", window="weird"),
            sample(3.0, slo="router-availability", window="30m"),
            sample(1.0, slo="router-availability", window="6h"),
            sample(math.nan, slo="router-latency", window="5m"),
            sample(1.0, slo="router-latency"),
            sample(0.2, slo="batch-jobs", window="1h"),
        ],
    })

    assert data_over(source).slos(NOW_S) == [
        SloRow(slo="batch-jobs", sli_ratio=None, objective_ratio=None,
               error_budget_remaining_ratio=None, burn_rates=(BurnRate("1h", 0.2),)),
        SloRow(slo="router-availability", sli_ratio=0.995, objective_ratio=0.99,
               error_budget_remaining_ratio=0.5,
               burn_rates=(BurnRate("5m", 14.4), BurnRate("30m", 3.0), BurnRate("1h", 2.0),
                           BurnRate("6h", 1.0), BurnRate("3d", 0.5), BurnRate("weird", 9.0))),
        SloRow(slo="router-latency", sli_ratio=0.97, objective_ratio=0.95,
               error_budget_remaining_ratio=None, burn_rates=()),
    ]


def test_no_slo_series_give_no_slo_rows() -> None:
    assert data_over(ScriptedSource({expr: [] for expr in SLO_QUERIES})).slos(NOW_S) == []


# --- charts --------------------------------------------------------------------------------


def test_the_burn_down_chart_has_one_budget_line_per_slo_by_name() -> None:
    source = ScriptedSource(ranges={q.SLO_BUDGET_REMAINING: [
        series([0, 60], [1.0, 0.75], __name__="slo:error_budget_remaining:ratio",
               slo="router-latency"),
        series([0, 60], [0.5, -0.25], __name__="slo:error_budget_remaining:ratio",
               slo="router-availability"),
    ]})

    lines = data_over(source).chart(ChartKind.ERROR_BUDGET_REMAINING, 0.0, 60.0, 60.0)

    assert lines == [
        ChartSeries("router-availability", (0.0, 60.0), (0.5, -0.25)),
        ChartSeries("router-latency", (0.0, 60.0), (1.0, 0.75)),
    ]
    assert source.asked == [("query_range", q.SLO_BUDGET_REMAINING, 0.0, 60.0, 60.0)]


def test_the_request_rate_chart_has_one_line_per_node_in_natural_order() -> None:
    expr = q.request_rate(30.0)
    source = ScriptedSource(ranges={expr: [
        series([100, 105], [1.0, 2.0], node="node-10"),
        series([100, 105], [3.0, 4.0], node="node-2"),
    ]})

    lines = data_over(source).chart(ChartKind.REQUEST_RATE, 100.0, 105.0, 5.0)

    assert lines == [
        ChartSeries("node-2", (100.0, 105.0), (3.0, 4.0)),
        ChartSeries("node-10", (100.0, 105.0), (1.0, 2.0)),
    ]
    assert source.asked == [("query_range", expr, 100.0, 105.0, 5.0)]


def test_a_chart_step_wider_than_the_rate_window_widens_the_window() -> None:
    expr = q.request_rate(90.0)
    source = ScriptedSource(ranges={expr: []})

    assert data_over(source).chart(ChartKind.REQUEST_RATE, 0.0, 21_600.0, 90.0) == []
    assert source.asked == [("query_range", expr, 0.0, 21_600.0, 90.0)]


def test_the_gpu_chart_reads_dcgm_utilization_per_node() -> None:
    source = ScriptedSource(ranges={q.GPU_UTIL_PERCENT: [series([0], [55.0], node="node-1")]})
    assert data_over(source).chart(ChartKind.GPU_UTILIZATION, 0.0, 0.0, 2.0) == [
        ChartSeries("node-1", (0.0,), (55.0,))
    ]


def test_the_latency_chart_has_p50_and_p99_lines_per_node_in_natural_order() -> None:
    source = ScriptedSource(ranges={
        q.latency_quantile(0.5, 30.0): [series([0], [0.2], node="node-10"),
                                        series([0], [0.1], node="node-2")],
        q.latency_quantile(0.99, 30.0): [series([0], [0.9], node="node-2"),
                                         series([0], [1.9], node="node-10")],
    })
    lines = data_over(source).chart(ChartKind.LATENCY, 0.0, 0.0, 2.0)
    assert [(line.name, line.values) for line in lines] == [
        ("node-2 p50", (0.1,)), ("node-2 p99", (0.9,)),
        ("node-10 p50", (0.2,)), ("node-10 p99", (1.9,)),
    ]


def test_the_error_ratio_chart_divides_5xx_by_all_requests_per_node_and_point() -> None:
    source = ScriptedSource(ranges={q.request_rate_by_status(30.0): [
        series([0, 2, 4], [9.0, 0.0, 6.0], node="node-0", status="2xx"),
        series([0, 2, 4], [1.0, 0.0, math.nan], node="node-0", status="5xx"),
        series([0, 2, 4], [0.0, 0.0, 2.0], node="node-0", status="4xx"),
        series([0, 2], [5.0, 5.0], node="node-1", status="2xx"),
        series([0, 2], [0.0, 0.0], node="node-3", status="2xx"),
        series([0], [7.0], status="5xx"),
    ]})

    assert data_over(source).chart(ChartKind.ERROR_RATIO, 0.0, 4.0, 2.0) == [
        ChartSeries("node-0", (0.0, 4.0), (0.1, 0.0)),
        ChartSeries("node-1", (0.0, 2.0), (0.0, 0.0)),
    ]


@pytest.mark.parametrize(
    ("labels", "name"),
    [
        ({"node": "node-1", "status": "5xx"}, "node-1"),
        ({"__name__": "up", "job": "router", "instance": "gw:8000"},
         '{instance="gw:8000", job="router"}'),
        ({"__name__": "up"}, "sum(up)"),
        ({}, "sum(up)"),
    ],
    ids=["the node when there is one", "the labels, sorted, without __name__",
         "the expression when only __name__ is left", "the expression for a scalar"],
)
def test_a_timeseries_line_is_named_by_its_node_labels_or_expression(
    labels: dict[str, str], name: str
) -> None:
    assert series_name(labels, "sum(up)") == name
    source = ScriptedSource(ranges={"sum(up)": [RangeSeries(labels, (1.0,), (2.0,))]})
    assert data_over(source).timeseries("sum(up)", 1.0, 1.0, 1.0) == [
        ChartSeries(name, (1.0,), (2.0,))
    ]


@pytest.mark.parametrize(
    ("start_s", "end_s", "step_s", "message"),
    [
        (0.0, 10.0, 0.0, "step_s must be positive, got 0.0"),
        (0.0, 10.0, -1.0, "step_s must be positive, got -1.0"),
        (10.0, 0.0, 1.0, "end_s (0.0) is before start_s (10.0)"),
        (math.nan, 0.0, 1.0, "start_s, end_s and step_s must be finite, got nan, 0.0, 1.0"),
        (0.0, math.inf, 1.0, "start_s, end_s and step_s must be finite, got 0.0, inf, 1.0"),
        (0.0, 11_000.0, 1.0,
         "11000 s at step_s=1 is more than 11000 points; use a larger step"),
    ],
    ids=["a step of zero", "a negative step", "an end before the start", "a NaN start",
         "an infinite end", "more points than Prometheus allows"],
)
def test_a_time_range_that_cannot_be_queried_is_refused_before_asking(
    start_s: float, end_s: float, step_s: float, message: str
) -> None:
    source = ScriptedSource()
    with pytest.raises(TimeRangeError) as raised:
        data_over(source).chart(ChartKind.REQUEST_RATE, start_s, end_s, step_s)
    assert str(raised.value) == message
    assert source.asked == []


def test_the_largest_allowed_range_is_queried() -> None:
    source = ScriptedSource(ranges={"up": []})
    assert data_over(source).timeseries("up", 0.0, 10_999.0, 1.0) == []


# --- alerts and remediations ---------------------------------------------------------------


def test_alerts_list_firing_then_pending_then_resolved_newest_first_without_repeats() -> None:
    firing_old = Alert("f1", {"alertname": "NodeDown", "node": "node-1", "severity": "page"},
                       "firing", 100.0, {"summary": "node-1 is down"}, fired_at_s=110.0)
    firing_new = Alert("f2", {"alertname": "NodeHighErrorRate", "node": "node-2"}, "firing",
                       300.0, {"description": "5xx above 5 %"}, fired_at_s=301.0)
    pending = Alert("p1", {"alertname": "GpuXidError", "node": "node-0"}, "pending", 400.0)
    resolved = Alert("f1", {"alertname": "NodeDown", "node": "node-1", "severity": "page"},
                     "resolved", 10.0, {"summary": "node-1 is down"}, fired_at_s=20.0,
                     resolved_at_s=50.0)
    book = AlertBook(active=[firing_old, pending, firing_new],
                     recent=[pending, firing_new, resolved, firing_old])

    rows = data_over(ScriptedSource(), alerts=book).alerts()

    assert rows == [
        AlertRow(alertname="NodeHighErrorRate", node="node-2", severity=None, state="firing",
                 summary="5xx above 5 %", active_at_s=300.0, fired_at_s=301.0,
                 resolved_at_s=None, fingerprint="f2",
                 labels={"alertname": "NodeHighErrorRate", "node": "node-2"}),
        AlertRow(alertname="NodeDown", node="node-1", severity="page", state="firing",
                 summary="node-1 is down", active_at_s=100.0, fired_at_s=110.0,
                 resolved_at_s=None, fingerprint="f1",
                 labels={"alertname": "NodeDown", "node": "node-1", "severity": "page"}),
        AlertRow(alertname="GpuXidError", node="node-0", severity=None, state="pending",
                 summary="", active_at_s=400.0, fired_at_s=None, resolved_at_s=None,
                 fingerprint="p1", labels={"alertname": "GpuXidError", "node": "node-0"}),
        AlertRow(alertname="NodeDown", node="node-1", severity="page", state="resolved",
                 summary="node-1 is down", active_at_s=10.0, fired_at_s=20.0,
                 resolved_at_s=50.0, fingerprint="f1",
                 labels={"alertname": "NodeDown", "node": "node-1", "severity": "page"}),
    ]
    assert book.limits == [50]


def test_the_alert_limit_never_hides_an_active_alert() -> None:
    active = [Alert(f"a{i}", {"alertname": "NodeDown"}, "firing", float(i)) for i in range(3)]
    old = [Alert(f"r{i}", {"alertname": "Old"}, "resolved", float(i)) for i in range(3)]
    book = AlertBook(active=active, recent=old)

    rows = data_over(ScriptedSource(), alerts=book).alerts(limit=2)

    assert [(row.fingerprint, row.state) for row in rows] == [
        ("a2", "firing"), ("a1", "firing"), ("a0", "firing")
    ]


def test_remediations_are_the_latest_decisions_newest_first_as_text() -> None:
    decisions = DecisionBook([
        Decision(2, "drain", "node-2", "refused", "budget", 200.0, guard="disruption-budget",
                 actor="cli:oncall", finished_at_s=200.0),
        Decision(3, "cycle", "node-1", "dry_run", "rehearsal", 300.0, alertname="GpuXidError",
                 alert_fingerprint="ab12"),
        Decision(1, "drain", "node-1", "succeeded", "node-1 is now drained", 100.0,
                 alertname="NodeDown", alert_fingerprint="8e9b", finished_at_s=100.5),
    ])

    rows = data_over(ScriptedSource(), decisions=decisions).remediations()

    assert rows == [
        RemediationRow(id="3", action="cycle", node="node-1", outcome="dry_run",
                       reason="rehearsal", guard=None, actor="policy:drain-unhealthy-node",
                       alertname="GpuXidError", alert_fingerprint="ab12", started_at_s=300.0,
                       finished_at_s=None),
        RemediationRow(id="2", action="drain", node="node-2", outcome="refused",
                       reason="budget", guard="disruption-budget", actor="cli:oncall",
                       alertname=None, alert_fingerprint=None, started_at_s=200.0,
                       finished_at_s=200.0),
        RemediationRow(id="1", action="drain", node="node-1", outcome="succeeded",
                       reason="node-1 is now drained", guard=None,
                       actor="policy:drain-unhealthy-node", alertname="NodeDown",
                       alert_fingerprint="8e9b", started_at_s=100.0, finished_at_s=100.5),
    ]
    assert [row.id for row in data_over(ScriptedSource(), decisions=decisions).remediations(
        limit=1)] == ["2"]


def test_the_real_decision_log_is_a_decision_reader() -> None:
    engine = sa.create_engine("sqlite://")
    log = DecisionLog(engine)
    log.record(action="drain", node="node-1", outcome=Outcome.DRY_RUN, reason="r",
               actor="cli:oncall", started_at_s=5.0, finished_at_s=5.0)
    try:
        assert DashboardData(ScriptedSource(), AlertBook(), log).remediations() == [
            RemediationRow(id="1", action="drain", node="node-1", outcome="dry_run", reason="r",
                           guard=None, actor="cli:oncall", alertname=None,
                           alert_fingerprint=None, started_at_s=5.0, finished_at_s=5.0)
        ]
    finally:
        engine.dispose()


def test_each_slo_lists_the_alerts_labelled_with_it_by_their_latest_state() -> None:
    page_old = Alert("a1", {"alertname": "ErrorBudgetBurn", "slo": "avail", "severity": "page"},
                     "resolved", 100.0, resolved_at_s=150.0)
    page_new = Alert("a1", {"alertname": "ErrorBudgetBurn", "slo": "avail", "severity": "page"},
                     "firing", 200.0, fired_at_s=202.0)
    ticket = Alert("a2", {"alertname": "ErrorBudgetBurn", "slo": "avail",
                          "severity": "ticket"}, "pending", 210.0)
    latency = Alert("a3", {"alertname": "ErrorBudgetBurn", "slo": "latency",
                           "severity": "page"}, "resolved", 50.0, resolved_at_s=60.0)
    node = Alert("n1", {"alertname": "NodeDown", "node": "node-1"}, "firing", 10.0)
    book = AlertBook(active=[page_new, ticket, node], recent=[page_new, page_old, latency])

    assert data_over(ScriptedSource(), alerts=book).slo_alerts() == {
        "avail": (SloAlert("ErrorBudgetBurn", "page", "firing"),
                  SloAlert("ErrorBudgetBurn", "ticket", "pending")),
        "latency": (SloAlert("ErrorBudgetBurn", "page", "resolved"),),
    }
    assert book.limits == [200]


def test_incidents_group_alert_transitions_and_decisions_by_fingerprint_latest_first() -> None:
    first = Alert("8e9b", {"alertname": "NodeHighErrorRate", "node": "node-1"}, "resolved",
                  100.0, {"summary": "node-1 fails 40% of its requests"}, fired_at_s=102.0,
                  resolved_at_s=130.0)
    again = Alert("8e9b", {"alertname": "NodeHighErrorRate", "node": "node-1"}, "firing",
                  400.0, fired_at_s=402.0)
    decisions = DecisionBook([
        Decision(3, "drain", "node-2", "refused", "would leave 1 node", 500.0,
                 guard="disruption-budget", actor="cli:oncall"),
        Decision(2, "drain", "node-1", "refused", "in cooldown", 403.0, guard="cooldown",
                 alertname="NodeHighErrorRate", alert_fingerprint="8e9b"),
        Decision(1, "drain", "node-1", "succeeded", "node-1 is now drained", 103.0,
                 alertname="NodeHighErrorRate", alert_fingerprint="8e9b"),
    ])
    book = AlertBook(active=[again], recent=[again, first])

    found = data_over(ScriptedSource(), alerts=book, decisions=decisions).incidents()

    assert found == [
        Incident("decision-3", None, "node-2", (
            IncidentEvent(500.0, "decision", "drain node-2 by cli:oncall: refused "
                          "[guard: disruption-budget]: would leave 1 node", outcome="refused"),
        )),
        Incident("8e9b", "NodeHighErrorRate", "node-1", (
            IncidentEvent(100.0, "pending", "pending: node-1 fails 40% of its requests"),
            IncidentEvent(102.0, "firing", "fired: node-1 fails 40% of its requests"),
            IncidentEvent(103.0, "decision", "drain node-1 by policy:drain-unhealthy-node: "
                          "succeeded: node-1 is now drained", outcome="succeeded"),
            IncidentEvent(130.0, "resolved", "resolved"),
            IncidentEvent(400.0, "pending", "pending"),
            IncidentEvent(402.0, "firing", "fired"),
            IncidentEvent(403.0, "decision", "drain node-1 by policy:drain-unhealthy-node: "
                          "refused [guard: cooldown]: in cooldown", outcome="refused"),
        )),
    ]
    assert [i.started_at_s for i in found] == [500.0, 100.0]


@pytest.mark.parametrize("method", ["alerts", "remediations", "slo_alerts", "incidents"])
def test_a_limit_below_one_is_refused(method: str) -> None:
    with pytest.raises(DashboardArgumentError, match="limit must be at least 1, got 0"):
        getattr(data_over(ScriptedSource()), method)(0)


@pytest.mark.parametrize("window", [0.0, -30.0, math.nan, math.inf])
def test_a_rate_window_that_is_not_a_positive_number_is_refused(window: float) -> None:
    with pytest.raises(DashboardArgumentError) as raised:
        DashboardData(ScriptedSource(), AlertBook(), DecisionBook(), rate_window_s=window)
    assert str(raised.value) == (
        f"rate_window_s must be a positive number of seconds, got {window!r}"
    )


def test_now_is_the_injected_clock() -> None:
    assert data_over(ScriptedSource()).now() == NOW_S


def test_natural_sort_puts_node_2_before_node_10() -> None:
    names = ["node-10", "node-2", "gpu-b", "node-1", "gpu-a10", "gpu-a9"]
    assert sorted(names, key=natural_sort_key) == [
        "gpu-a9", "gpu-a10", "gpu-b", "node-1", "node-2", "node-10"
    ]
