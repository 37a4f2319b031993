"""OpenMetrics exemplars: parsed, scraped, stored once, queried; and Prometheus's API shape."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from real_prometheus import running_prometheus

from collectors import (
    Exemplar,
    ExemplarSeries,
    ExpositionError,
    PrometheusSource,
    SampleStore,
    Scraper,
    ScrapeTarget,
    StoreSource,
    open_database,
    parse_exposition,
)
from collectors._migrations import _config, current_revision

NOW = 1_767_000_000.0
TRACE_T = 1_766_999_990.25


def registry_with_exemplars() -> CollectorRegistry:
    registry = CollectorRegistry()
    latency = Histogram(
        "request_latency_seconds",
        "Latency.",
        ["model_name"],
        buckets=(0.1, 0.5, 1.0),
        registry=registry,
    )
    latency.labels("tiny").observe(0.3, exemplar={"trace_id": "4bf92f35", "span_id": "00f0"})
    latency.labels("tiny").observe(0.05)
    tokens = Counter("tokens", "Tokens.", ["model_name"], registry=registry)
    tokens.labels("tiny").inc(7, exemplar={"trace_id": "a1b2"})
    return registry


def test_exemplars_match_prometheus_clients_own_openmetrics_parser() -> None:
    text = generate_openmetrics(registry_with_exemplars()).decode()
    theirs = [
        (s.name, dict(s.labels), s.exemplar)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    ours = parse_exposition(text, default_timestamp_s=NOW)
    assert len(ours) == len(theirs)
    for sample, (name, labels, exemplar) in zip(ours, theirs, strict=True):
        assert (sample.name, dict(sample.labels)) == (name, labels)
        if exemplar is None:
            assert sample.exemplar is None
        else:
            # prometheus_client's Timestamp(sec, nsec) as a float may differ in the last bit
            assert sample.exemplar == Exemplar(
                dict(exemplar.labels),
                exemplar.value,
                pytest.approx(float(exemplar.timestamp), abs=1e-6),  # type: ignore[arg-type]
            )
    with_exemplars = [(s.name, dict(s.labels)) for s in ours if s.exemplar is not None]
    assert with_exemplars == [
        ("request_latency_seconds_bucket", {"model_name": "tiny", "le": "0.5"}),
        ("tokens_total", {"model_name": "tiny"}),
    ]


def test_an_exemplar_line_is_read_exactly() -> None:
    text = (
        "# TYPE latency histogram\n"
        'latency_bucket{le="0.5"} 3 # {trace_id="a b # c",span_id="7"} 0.42 1766999990.25\n'
        'latency_bucket{le="+Inf"} 4 # {} 9.5\n'
        "latency_count 4\n"
        "# EOF\n"
    )
    samples = parse_exposition(text, default_timestamp_s=NOW)
    assert [(s.name, s.value, s.timestamp_s, s.exemplar) for s in samples] == [
        (
            "latency_bucket",
            3.0,
            NOW,
            Exemplar({"trace_id": "a b # c", "span_id": "7"}, 0.42, TRACE_T),
        ),
        ("latency_bucket", 4.0, NOW, Exemplar({}, 9.5, None)),
        ("latency_count", 4.0, NOW, None),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'a_bucket{le="1"} 1 # trace_id="x" 1',
            "line 1: invalid exemplar of a_bucket: expected "
            "'{' after '#', found 'trace_id=\"x\" 1'",
        ),
        (
            'a_bucket{le="1"} 1 # {trace_id="x"}',
            "line 1: missing value for the exemplar of a_bucket",
        ),
        (
            'a_bucket{le="1"} 1 # {trace_id="x"} fast',
            "line 1: invalid value 'fast' for the exemplar of a_bucket",
        ),
        (
            'a_bucket{le="1"} 1 # {trace_id="x} 1',
            "line 1: unterminated quoted value of label 'trace_id' of the exemplar of a_bucket",
        ),
    ],
)
def test_a_malformed_exemplar_names_its_line(line: str, message: str) -> None:
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(line + "\n# EOF\n", default_timestamp_s=NOW)
    assert str(caught.value) == message


def test_an_exemplar_over_128_characters_is_dropped_as_prometheus_drops_it() -> None:
    kept = "t" * 8 + '="' + "x" * 120 + '"'  # 128 characters of names and values
    dropped = "t" * 8 + '="' + "x" * 121 + '"'
    samples = parse_exposition(
        f"a_total 1 # {{{kept}}} 1\nb_total 1 # {{{dropped}}} 1\n# EOF\n",
        default_timestamp_s=NOW,
    )
    assert [s.exemplar for s in samples] == [Exemplar({"tttttttt": "x" * 120}, 1.0, None), None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SampleStore]:
    engine = open_database(f"sqlite:///{tmp_path}/store.db")
    yield SampleStore(engine)
    engine.dispose()


@pytest.fixture
def exporter() -> Iterator[tuple[str, CollectorRegistry]]:
    registry = registry_with_exemplars()
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{httpd.server_port}", registry
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def exemplar_times(text: str) -> dict[str, float]:
    """trace_id -> the exemplar timestamp prometheus_client wrote (it is the observe time),
    in whole milliseconds as the store (and Prometheus) keep it."""
    return {
        s.exemplar.labels["trace_id"]: int(
            Decimal(f"{s.exemplar.timestamp.sec}.{s.exemplar.timestamp.nsec:09d}") * 1000
        )
        / 1000
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.exemplar is not None
    }


def test_scraped_exemplars_are_stored_once_and_queryable(
    store: SampleStore, exporter: tuple[str, CollectorRegistry]
) -> None:
    address, registry = exporter
    target = ScrapeTarget("models", f"http://{address}/metrics", {}, 15.0, 5.0)
    clock = iter([NOW, NOW + 15, NOW + 30])
    scraper = Scraper([target], store, clock=lambda: next(clock))
    # OpenMetrics is asked for (prometheus_client then writes it, exemplars included).
    asyncio.run(scraper.scrape_once(target))
    asyncio.run(scraper.scrape_once(target))  # the same exemplars again: not stored twice
    times = exemplar_times(generate_openmetrics(registry).decode())
    source = StoreSource(store)
    base = {"instance": address, "job": "models", "model_name": "tiny"}
    # The exemplars' own timestamps (the observe times) are what the range is about.
    start, end = min(times.values()) - 60, max(times.values()) + 60
    assert source.query_exemplars(
        'request_latency_seconds_bucket{le="0.5"} or tokens_total', start, end
    ) == [
        ExemplarSeries(
            {"__name__": "request_latency_seconds_bucket", **base, "le": "0.5"},
            (Exemplar({"span_id": "00f0", "trace_id": "4bf92f35"}, 0.3, times["4bf92f35"]),),
        ),
        ExemplarSeries(
            {"__name__": "tokens_total", **base},
            (Exemplar({"trace_id": "a1b2"}, 7.0, times["a1b2"]),),
        ),
    ]
    # Selectors anywhere in the expression count; a time range that misses them, none.
    assert [
        one.series_labels["__name__"]
        for one in source.query_exemplars("sum(rate(tokens_total[5m]))", start, end)
    ] == ["tokens_total"]
    assert source.query_exemplars("tokens_total", end, end + 3600) == []
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM metric_exemplars").scalar() == 2


def test_a_new_exemplar_of_a_series_is_stored_beside_the_old_one(store: SampleStore) -> None:
    first = parse_exposition(
        'a_total 1 # {trace_id="x"} 1 1766999990\n# EOF\n', default_timestamp_s=NOW
    )
    second = parse_exposition('a_total 2 # {trace_id="y"} 1\n# EOF\n', default_timestamp_s=NOW + 15)
    store.append(first)
    store.append(second)
    store.append(second)  # the same again, at the same time: one row
    assert StoreSource(store).query_exemplars("a_total", NOW - 60, NOW + 60) == [
        ExemplarSeries(
            {"__name__": "a_total"},
            (
                Exemplar({"trace_id": "x"}, 1.0, 1_766_999_990.0),
                Exemplar({"trace_id": "y"}, 1.0, NOW + 15),
            ),  # no timestamp: the sample's
        )
    ]


def test_a_v0002_database_is_upgraded_to_store_exemplars(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/old.db")
    try:
        with engine.connect() as connection:
            config = _config(connection)
            config.attributes["connection"] = connection
            from collectors._migrations import VERSION_TABLE

            assert VERSION_TABLE
            command.upgrade(config, "0002")
            connection.commit()
            connection.exec_driver_sql(
                "INSERT INTO metric_series (id, name, labels, fingerprint)"
                " VALUES (3, 'a_total', '{}', 'f')"
            )
            connection.exec_driver_sql(f"INSERT INTO metric_samples VALUES (3, {NOW}, 1.0, 0)")
            connection.commit()
            assert current_revision(connection) == "0002"
        store = SampleStore(engine)
        with engine.connect() as connection:
            assert current_revision(connection) == "0003"
        assert store.select("a_total", NOW, NOW)["value"].tolist() == [1.0]
        store.append(
            parse_exposition('a_total 2 # {trace_id="z"} 2\n# EOF\n', default_timestamp_s=NOW + 15)
        )
        assert StoreSource(store).query_exemplars("a_total", NOW, NOW + 15) == [
            ExemplarSeries({"__name__": "a_total"}, (Exemplar({"trace_id": "z"}, 2.0, NOW + 15),))
        ]
    finally:
        engine.dispose()


def test_prometheus_source_reads_the_query_exemplars_answer() -> None:
    seen: list[dict[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode())))
        assert request.url.path == "/api/v1/query_exemplars"
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": [
                    {
                        "seriesLabels": {"__name__": "tokens_total", "job": "models"},
                        "exemplars": [
                            {"labels": {"trace_id": "b"}, "value": "7", "timestamp": 1766999991.5},
                            {"labels": {"trace_id": "a"}, "value": "6", "timestamp": 1766999990.5},
                        ],
                    }
                ],
            },
        )

    source = PrometheusSource("http://prometheus.test", transport=httpx.MockTransport(handle))
    assert source.query_exemplars("tokens_total", NOW - 60, NOW) == [
        ExemplarSeries(
            {"__name__": "tokens_total", "job": "models"},
            (
                Exemplar({"trace_id": "a"}, 6.0, 1_766_999_990.5),
                Exemplar({"trace_id": "b"}, 7.0, 1_766_999_991.5),
            ),
        )
    ]
    assert seen == [{"query": "tokens_total", "start": repr(NOW - 60), "end": repr(NOW)}]


@pytest.mark.integration
def test_a_real_prometheus_and_the_store_give_the_same_exemplars(
    tmp_path: Path, store: SampleStore, exporter: tuple[str, CollectorRegistry]
) -> None:
    address, _ = exporter
    config = (
        "scrape_configs:\n"
        "  - job_name: models\n"
        "    scrape_interval: 1s\n"
        f"    static_configs: [{{targets: ['{address}']}}]\n"
    )
    extra = ("--enable-feature=exemplar-storage",)
    with running_prometheus(tmp_path, config, extra) as url, PrometheusSource(url) as prometheus:
        target = ScrapeTarget("models", f"http://{address}/metrics", {}, 15.0, 5.0)
        asyncio.run(Scraper([target], store).scrape_once(target))
        expr = 'request_latency_seconds_bucket{le="0.5"} or tokens_total'
        start, end = time.time() - 3600, time.time() + 3600
        ours = StoreSource(store).query_exemplars(expr, start, end)
        theirs: list[Any] = []
        deadline = time.monotonic() + 60
        while len(theirs) < 2:
            if time.monotonic() > deadline:
                log = (tmp_path / "log.txt").read_text()[-2000:]
                pytest.fail(f"no exemplars from prometheus: {log}")
            time.sleep(0.5)
            try:
                theirs = prometheus.query_exemplars(expr, start, end)
            except Exception:  # not scraped yet
                theirs = []
    assert theirs == ours
    assert len(ours) == 2 and all(len(one.exemplars) == 1 for one in ours)
    assert not any(math.isnan(one.exemplars[0].value) for one in ours)
