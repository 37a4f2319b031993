"""PrometheusSource: answers and errors of the HTTP API (a mock), then a real Prometheus."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from real_prometheus import backfill, running_prometheus

from collectors import (
    InstantSample,
    MetricSource,
    PrometheusSource,
    QueryError,
    RangeSeries,
    SampleStore,
    ScrapedSample,
    StoreSource,
    open_database,
)


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> PrometheusSource:
    return PrometheusSource("http://prometheus.test:9090/", transport=httpx.MockTransport(handler))


def success(data: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": data})

    return handle


def test_it_is_a_metric_source() -> None:
    assert isinstance(mock(success({})), MetricSource)


def test_an_instant_vector_is_parsed_and_sorted() -> None:
    asked: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"node": "node-1"}, "value": [100.5, "NaN"]},
                        {"metric": {"node": "node-0"}, "value": [100.5, "+Inf"]},
                    ],
                },
            },
        )

    with mock(handle) as source:
        samples = source.query('sum by (node) (rate(x{job="nodes"}[1m]))', 100.5)
    assert [s.labels for s in samples] == [{"node": "node-0"}, {"node": "node-1"}]
    assert samples[0].value == math.inf and math.isnan(samples[1].value)
    assert samples[0].timestamp_s == 100.5
    [request] = asked
    assert request.method == "POST" and request.url.path == "/api/v1/query"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"query": 'sum by (node) (rate(x{job="nodes"}[1m]))', "time": "100.5"}


def test_a_scalar_is_one_sample_without_labels() -> None:
    source = mock(success({"resultType": "scalar", "result": [7.0, "3"]}))
    assert source.query("1 + 2", 7.0) == [InstantSample(labels={}, value=3.0, timestamp_s=7.0)]


def test_a_range_query() -> None:
    asked: list[dict[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(dict(httpx.QueryParams(request.content.decode())))
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [
                        {"metric": {"__name__": "up", "job": "a"}, "values": [[10, "1"], [20, "0"]]}
                    ],
                },
            },
        )

    [series] = mock(handle).query_range("up", 10.0, 20.0, 10.0)
    assert series == RangeSeries({"__name__": "up", "job": "a"}, (10.0, 20.0), (1.0, 0.0))
    assert asked == [{"query": "up", "start": "10.0", "end": "20.0", "step": "10.0"}]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(
                400,
                json={
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "1:5: parse error: unclosed left parenthesis",
                },
            ),
            "Prometheus refused the query (bad_data): 1:5: parse error: unclosed left parenthesis",
        ),
        (
            httpx.Response(502, text="<html>bad gateway</html>"),
            "answered HTTP 502 without Prometheus's JSON",
        ),
        (
            httpx.Response(
                200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}
            ),
            "is a range vector",
        ),
        (
            httpx.Response(
                200,
                json={"status": "success", "data": {"resultType": "string", "result": [1, "a"]}},
            ),
            "gives a string result",
        ),
        (
            httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"metric": {}, "value": "x"}]},
                },
            ),
            "unexpected Prometheus sample",
        ),
    ],
)
def test_errors_are_query_errors(response: httpx.Response, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        mock(lambda request: response).query("up", 1.0)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ReadTimeout("slow"), "did not answer in time"),
        (httpx.ConnectError("refused"), "cannot reach Prometheus at http://prometheus.test:9090"),
    ],
)
def test_transport_failures_are_query_errors(error: Exception, message: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(QueryError, match=message):
        mock(handle).query("up", 1.0)


def test_an_unreachable_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(QueryError, match="cannot reach Prometheus"):
        PrometheusSource(f"http://127.0.0.1:{port}", timeout_s=2.0).query("up", 1.0)


# -- a real Prometheus, fed by promtool's backfill, against the embedded engine ----------------

SERIES_START = 1800  # the data spans the half hour before the test starts
PHASE = 0.137  # samples off the whole second, so no sample sits on a window's edge


def fleet(now: int) -> list[ScrapedSample]:
    """Counters (never near zero, one reset), a gauge and a histogram, scraped every 1 s."""
    base = now - SERIES_START
    samples = []
    for i in range(SERIES_START - 5):
        t = base + i + PHASE
        for node, per_s, offset in (("node-0", 7.0, 5000.0), ("node-1", 3.0, 9000.0)):
            labels = {"job": "nodes", "node": node}
            value = offset + per_s * i
            if node == "node-1" and i >= 1200:
                value = 700.0 + per_s * (i - 1200)  # the counter reset at i = 1200
            samples.append(ScrapedSample("requests_total", {**labels, "status": "2xx"}, value, t))
            samples.append(
                ScrapedSample("requests_total", {**labels, "status": "5xx"}, 10 + 0.5 * i, t)
            )
            samples.append(ScrapedSample("temperature", labels, 40 + (i * 7 % 13) + per_s, t))
            for le, share in (("0.5", 0.2), ("1", 0.7), ("2.5", 0.9), ("+Inf", 1.0)):
                samples.append(
                    ScrapedSample(
                        "latency_seconds_bucket", {**labels, "le": le}, 100 + share * per_s * i, t
                    )
                )
    return samples


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    folder = tmp_path_factory.mktemp("prometheus")
    now = int(time.time())
    backfill(folder, fleet(now))
    with running_prometheus(folder) as url:
        yield url, now


@pytest.fixture(scope="module")
def both(
    prometheus: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PrometheusSource, StoreSource, int]]:
    url, now = prometheus
    engine = open_database(f"sqlite:///{tmp_path_factory.mktemp('store')}/store.db")
    store = SampleStore(engine)
    store.append(fleet(now))
    with PrometheusSource(url) as remote:
        yield remote, StoreSource(store), now
    engine.dispose()


DIFFERENTIAL = [
    "requests_total",
    'rate(requests_total{status="2xx"}[1m])',
    "increase(requests_total[5m])",
    "irate(requests_total[30s])",
    "delta(temperature[2m])",
    "sum by (node) (rate(requests_total[1m]))",
    'sum by (node) (rate(requests_total{status="5xx"}[2m]))'
    " / sum by (node) (rate(requests_total[2m]))",
    'temperature * on(node) group_left(status) requests_total{status="5xx"}',
    "requests_total unless on(node) temperature > 50",
    "histogram_quantile(0.9, sum by (node, le) (rate(latency_seconds_bucket[1m])))",
    "histogram_quantile(0.5, rate(latency_seconds_bucket[30s]))",
    "avg_over_time(temperature[1m])",
    "max_over_time(temperature[1m]) - min_over_time(temperature[1m])",
    "sum_over_time(temperature[30s]) / count_over_time(temperature[30s])",
    "max by (node) (temperature) > 48",
    "temperature > bool 48",
    'sum(rate(requests_total{status="4xx"}[1m])) or vector(0)',
    "count(temperature) + scalar(max(temperature))",
    'temperature and on(node) requests_total{status="5xx"}',
    "temperature offset 5m",
    "abs(-temperature) / clamp_min(temperature, 45)",
    "topk(1, temperature)",
    "bottomk(1, temperature) + 0",
    "quantile(0.3, temperature)",
    "stddev(temperature) + stdvar(temperature)",
    "group(temperature)",
    "count by (le) (latency_seconds_bucket)",
    "sum without (status) (rate(requests_total[1m]))",
    "changes(temperature[1m]) + resets(requests_total[30m])",
    "idelta(temperature[30s])",
    "round(temperature / 7, 0.5) - sgn(temperature - 50)",
    'absent(nonexistent{job="x"})',
    "quantile_over_time(0.9, temperature[1m])",
    "stddev_over_time(temperature[1m])",
    "last_over_time(temperature[1m])",
    "-temperature % 7 + temperature ^ 0.5",
    "temperature @ end()",
]


def compare(
    ours: list[tuple[dict[str, str], float]], theirs: list[tuple[dict[str, str], float]], what: str
) -> None:
    assert [labels for labels, _ in ours] == [labels for labels, _ in theirs], what
    for (labels, mine), (_, real) in zip(ours, theirs, strict=True):
        if math.isnan(real):
            assert math.isnan(mine), (what, labels)
        else:
            assert mine == pytest.approx(real, rel=0.01, abs=1e-9), (what, labels)


@pytest.mark.integration
@pytest.mark.parametrize("expr", DIFFERENTIAL)
def test_the_embedded_engine_agrees_with_prometheus(
    both: tuple[PrometheusSource, StoreSource, int], expr: str
) -> None:
    remote, local, now = both
    for at in (now - 600, now - 599.5, now - 30):  # before and after node-1's reset
        compare(
            [(dict(s.labels), s.value) for s in local.query(expr, at)],
            [(dict(s.labels), s.value) for s in remote.query(expr, at)],
            f"{expr} @ {at}",
        )
    start, end = now - 900, now - 300
    ours, theirs = local.query_range(expr, start, end, 15), remote.query_range(expr, start, end, 15)
    assert [s.labels for s in ours] == [s.labels for s in theirs], expr
    for mine, real in zip(ours, theirs, strict=True):
        assert mine.timestamps_s == real.timestamps_s, (expr, mine.labels)
        compare([({}, v) for v in mine.values], [({}, v) for v in real.values], expr)


@pytest.mark.integration
def test_prometheus_error_messages_come_through(
    both: tuple[PrometheusSource, StoreSource, int],
) -> None:
    remote, _, now = both
    with pytest.raises(QueryError) as caught:
        remote.query("sum(rate(requests_total[1m])", now)
    assert "bad_data" in str(caught.value) and "parse error" in str(caught.value)
