"""The fleet page's data on the three sources a deployment can have: the embedded store on
SQLite and on a real PostgreSQL (a throwaway cluster), and a real Prometheus (fed by
promtool's backfill) through `PrometheusSource`. Same five minutes of scrapes, same rows.

Two nodes scraped every second: node-0 answers 10 requests/s with status 2xx and 1/s with
5xx, node-1 4/s, all 2xx; every request's latency falls 20 % under 0.5 s, 70 % under 1 s,
90 % under 2.5 s (p50 interpolates to 0.8 s; p99 is past the last finite bucket: 2.5 s);
GPU utilization 87 % and 40 %; the router has node-1 drained with nothing in flight.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from real_prometheus import backfill, running_prometheus

from collectors import (
    MetricSource,
    PrometheusSource,
    SampleStore,
    ScrapedSample,
    StoreSource,
    open_database,
)
from dashboards import DashboardData, FleetRow, NodeStatus

pytestmark = pytest.mark.integration

SECONDS = 300
BUCKETS = (("0.5", 0.2), ("1", 0.7), ("2.5", 0.9), ("+Inf", 1.0))
PHASE = 0.137  # samples off the whole second, so no sample sits on a window's edge


class _NoDecisions:
    def recent(self, limit: int) -> list[object]:
        return []


class _NoAlerts:
    def active(self) -> list[object]:
        return []

    def recent(self, limit: int) -> list[object]:
        return []


def scrapes(end_s: int) -> list[ScrapedSample]:
    samples = []
    for i in range(SECONDS):
        at_s = end_s - SECONDS + i + PHASE
        for node, ok_per_s, errors_per_s, util, draining in (
            ("node-0", 10.0, 1.0, 87.0, 0.0), ("node-1", 4.0, 0.0, 40.0, 1.0)
        ):
            labels = {"job": "nodes", "node": node}
            samples += [
                ScrapedSample("up", labels, 1.0, at_s),
                ScrapedSample("http_requests_total", {**labels, "status": "2xx"},
                              100 + ok_per_s * i, at_s),
                ScrapedSample("http_requests_total", {**labels, "status": "5xx"},
                              100 + errors_per_s * i, at_s),
                ScrapedSample("DCGM_FI_DEV_GPU_UTIL", {**labels, "gpu": "0"}, util, at_s),
            ]
            total = ok_per_s + errors_per_s
            for le, share in BUCKETS:
                samples.append(ScrapedSample("vllm:e2e_request_latency_seconds_bucket",
                                             {**labels, "le": le}, 1000 + share * total * i, at_s))
            router = {"job": "router", "node": node}
            samples += [
                ScrapedSample("inferops_router_node_healthy", router, 1.0, at_s),
                ScrapedSample("inferops_router_node_draining", router, draining, at_s),
                ScrapedSample("inferops_router_in_flight", router, 0.0, at_s),
            ]
    return samples


def expected_rows() -> list[FleetRow]:
    approx = pytest.approx
    return [
        FleetRow("node-0", True, approx(11.0), approx(0.8), approx(2.5), approx(1 / 11),
                 87.0, None, None, NodeStatus.SERVING, in_flight=0.0),
        FleetRow("node-1", True, approx(4.0), approx(0.8), approx(2.5), 0.0,
                 40.0, None, None, NodeStatus.DRAINED, in_flight=0.0),
    ]


def fleet_rows(source: MetricSource, at_s: float) -> list[FleetRow]:
    data = DashboardData(source, _NoAlerts(), _NoDecisions(),  # type: ignore[arg-type]
                         clock=lambda: at_s)
    return data.fleet(at_s)


def test_the_fleet_rows_on_sqlite(tmp_path: Path) -> None:
    end_s = int(time.time())
    engine = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store = SampleStore(engine)
        store.append(scrapes(end_s))
        assert fleet_rows(StoreSource(store), end_s) == expected_rows()
    finally:
        engine.dispose()


def test_the_fleet_rows_on_postgresql(postgres_url: str) -> None:
    end_s = int(time.time())
    engine: sa.Engine = open_database(postgres_url)
    try:
        store = SampleStore(engine)
        store.append(scrapes(end_s))
        assert fleet_rows(StoreSource(store), end_s) == expected_rows()
    finally:
        engine.dispose()


def test_the_fleet_rows_on_prometheus(tmp_path: Path) -> None:
    end_s = int(time.time())
    backfill(tmp_path, scrapes(end_s))
    with running_prometheus(tmp_path) as url, PrometheusSource(url) as source:
        assert fleet_rows(source, end_s) == expected_rows()
