"""Scraper: real HTTP servers on 127.0.0.1, a list-backed store, Prometheus's scrape semantics."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import FrozenInstanceError
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.parser import text_string_to_metric_families

from collectors import ScrapedSample, Scraper, ScrapeResult, ScrapeTarget
from collectors._scraper import _offset

NOW = 1_767_000_000.0
JOB = "nodes"
REPORT = ("up", "scrape_duration_seconds", "scrape_samples_scraped")


class ListStore:
    """The store the scraper writes to, as a list of the batches it appended."""

    def __init__(self) -> None:
        self.batches: list[list[ScrapedSample]] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def append(self, samples: Sequence[ScrapedSample]) -> None:
        with self._lock:
            self.batches.append(list(samples))
            self.threads.add(threading.get_ident())

    def samples(self, name: str | None = None) -> list[ScrapedSample]:
        with self._lock:
            return [s for batch in self.batches for s in batch if name is None or s.name == name]


class SetClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The scraper hangs up on slow or oversized answers: expected here, not worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class MetricsServer:
    """A threaded HTTP server whose every GET answers what the test last set."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.content_type = "text/plain; version=0.0.4; charset=utf-8"
        self.content_length = True  # False: no Content-Length, the body ends at close
        self.hold: threading.Event | None = None  # when given, answers wait until it is set
        self.requests: list[dict[str, str]] = []
        self.request_times: dict[str, list[float]] = {}  # path -> monotonic arrival times
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers.items()))
                server.request_times.setdefault(self.path, []).append(time.monotonic())
                if server.hold is not None:
                    server.hold.wait(30)
                body = server.body
                self.send_response(server.status)
                self.send_header("Content-Type", server.content_type)
                if server.content_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.running = True

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def set(self, text: str) -> None:
        self.body = text.encode()

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    started = MetricsServer()
    yield started
    started.stop()


@pytest.fixture
def second_server() -> Iterator[MetricsServer]:
    started = MetricsServer()
    yield started
    started.stop()


@pytest.fixture
def store() -> ListStore:
    return ListStore()


@pytest.fixture
def clock() -> SetClock:
    return SetClock(NOW)


def target_for(
    url: str,
    *,
    labels: dict[str, str] | None = None,
    interval_s: float = 15.0,
    timeout_s: float = 5.0,
    job: str = JOB,
) -> ScrapeTarget:
    return ScrapeTarget(job, url, labels or {}, interval_s, timeout_s)


def base_labels(target: ScrapeTarget) -> dict[str, str]:
    return {"job": target.job, "instance": target.instance, **target.labels}


def without_report(batch: list[ScrapedSample]) -> list[ScrapedSample]:
    return [s for s in batch if s.name not in REPORT]


def report(batch: list[ScrapedSample]) -> dict[str, ScrapedSample]:
    return {s.name: s for s in batch if s.name in REPORT}


def stale(name: str, labels: dict[str, str], timestamp_s: float) -> tuple[Any, ...]:
    return (name, labels, "NaN", timestamp_s, True)


def comparable(samples: list[ScrapedSample]) -> list[tuple[Any, ...]]:
    return [
        (s.name, dict(s.labels), "NaN" if math.isnan(s.value) else s.value, s.timestamp_s, s.stale)
        for s in samples
    ]


def assert_report(
    batch: list[ScrapedSample], target: ScrapeTarget, *, up: bool, scraped: int, at: float
) -> None:
    got = report(batch)
    assert set(got) == set(REPORT)
    labels = base_labels(target)
    assert got["up"] == ScrapedSample("up", labels, 1.0 if up else 0.0, at)
    assert got["scrape_samples_scraped"] == ScrapedSample(
        "scrape_samples_scraped", labels, float(scraped), at
    )
    duration = got["scrape_duration_seconds"]
    assert duration.labels == labels and duration.timestamp_s == at
    assert 0 <= duration.value < 10
    assert [s.name for s in batch[-3:]] == list(REPORT)  # the report closes the batch


# -- a real prometheus_client exposition ------------------------------------------------------


def vllm_like_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    latency = Histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        ["model_name"],
        buckets=[0.3, 0.5, 1.0, 2.5, 5.0],
        registry=registry,
    )
    for value in (0.2, 0.9, 2.6):
        latency.labels("inferops-tiny").observe(value)
    requests = Counter(
        "http_requests", "Requests.", ["handler", "method", "status"], registry=registry
    )
    requests.labels("/v1/completions", "POST", "2xx").inc(7)
    Gauge("vllm:num_requests_running", "Running.", ["model_name"], registry=registry).labels(
        "inferops-tiny"
    ).set(2)
    return registry


class Exporter:
    """prometheus_client's own HTTP server for a registry, on a free port."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.httpd, self.thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/metrics"
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    started = Exporter(vllm_like_registry())
    yield started
    started.stop()


async def test_scrape_attaches_target_labels_to_every_sample(
    exporter: Exporter, store: ListStore, clock: SetClock
) -> None:
    url = exporter.url
    target = target_for(url, labels={"pool": "h100", "region": "eu"})
    scraper = Scraper([target], store, clock=clock)

    result = await scraper.scrape_once(target)

    # What the exporter serves, read by prometheus_client's own parser.
    exposed = [
        s
        for family in text_string_to_metric_families(generate_latest(exporter.registry).decode())
        for s in family.samples
    ]
    labels = {"job": JOB, "instance": target.instance, "pool": "h100", "region": "eu"}
    assert target.instance == url.split("/")[2]
    (batch,) = store.batches
    assert without_report(batch) == [
        ScrapedSample(s.name, {**s.labels, **labels}, float(s.value), NOW) for s in exposed
    ]
    assert_report(batch, target, up=True, scraped=len(exposed), at=NOW)
    assert result == ScrapeResult(target, True, result.duration_s, len(exposed), None, NOW)
    assert scraper.last_result(target) == result
    bucket = next(
        s
        for s in batch
        if s.name == "vllm:e2e_request_latency_seconds_bucket" and s.labels["le"] == "2.5"
    )
    assert bucket.labels == {**labels, "model_name": "inferops-tiny", "le": "2.5"}
    assert bucket.value == 2.0


async def test_store_is_written_from_a_worker_thread(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    server.set("a 1\n")
    target = target_for(server.url)
    await Scraper([target], store, clock=clock).scrape_once(target)
    assert store.threads and threading.get_ident() not in store.threads


async def test_request_prefers_openmetrics_and_states_the_timeout(
    server: MetricsServer, store: ListStore
) -> None:
    server.set("a 1\n")
    target = target_for(server.url, timeout_s=2.5)
    await Scraper([target], store).scrape_once(target)
    (headers,) = server.requests
    assert headers["Accept"].startswith(
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    )
    assert "text/plain;version=0.0.4;q=0.3" in headers["Accept"]
    assert headers["X-Prometheus-Scrape-Timeout-Seconds"] == "2.5"


# -- staleness ------------------------------------------------------------------------------


async def test_a_target_that_goes_down_reports_up_0_and_ends_its_series(
    exporter: Exporter, store: ListStore, clock: SetClock
) -> None:
    target = target_for(exporter.url)
    scraper = Scraper([target], store, clock=clock)
    first = await scraper.scrape_once(target)
    assert first.up
    series = without_report(store.batches[0])

    await asyncio.to_thread(exporter.stop)  # nothing listens on that port any more
    clock.now_s = NOW + 15
    down = await scraper.scrape_once(target)

    assert not down.up
    assert down.error is not None and "ConnectError" in down.error
    assert down.samples_scraped == 0 and down.timestamp_s == NOW + 15
    batch = store.batches[1]
    assert comparable(without_report(batch)) == [
        stale(s.name, dict(s.labels), NOW + 15) for s in series
    ]
    assert_report(batch, target, up=False, scraped=0, at=NOW + 15)

    # Still down: nothing left to mark stale, only the report.
    clock.now_s = NOW + 30
    await scraper.scrape_once(target)
    assert without_report(store.batches[2]) == []
    assert_report(store.batches[2], target, up=False, scraped=0, at=NOW + 30)


async def test_a_series_that_vanishes_gets_a_staleness_marker(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    target = target_for(server.url)
    labels = base_labels(target)
    scraper = Scraper([target], store, clock=clock)

    server.set('requests{code="200"} 10\nrequests{code="500"} 1\nrunning 3\n')
    await scraper.scrape_once(target)
    server.set('requests{code="200"} 12\nrunning 2\n')
    clock.now_s = NOW + 15
    await scraper.scrape_once(target)
    server.set('requests{code="500"} 2\n')
    clock.now_s = NOW + 30
    await scraper.scrape_once(target)

    assert comparable(without_report(store.batches[1])) == [
        ("requests", {"code": "200", **labels}, 12.0, NOW + 15, False),
        ("running", labels, 2.0, NOW + 15, False),
        stale("requests", {"code": "500", **labels}, NOW + 15),
    ]
    assert comparable(without_report(store.batches[2])) == [
        ("requests", {"code": "500", **labels}, 2.0, NOW + 30, False),
        stale("requests", {"code": "200", **labels}, NOW + 30),
        stale("running", labels, NOW + 30),
    ]


async def test_exposition_timestamps_are_kept_and_left_out_of_staleness(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    target = target_for(server.url)
    labels = base_labels(target)
    scraper = Scraper([target], store, clock=clock)
    server.set("federated 5 1766999990500\nlocal 1\n")
    await scraper.scrape_once(target)
    server.set("other 1\n")
    clock.now_s = NOW + 15
    await scraper.scrape_once(target)

    assert comparable(without_report(store.batches[0])) == [
        ("federated", labels, 5.0, 1_766_999_990.5, False),
        ("local", labels, 1.0, NOW, False),
    ]
    assert comparable(without_report(store.batches[1])) == [
        ("other", labels, 1.0, NOW + 15, False),
        stale("local", labels, NOW + 15),  # no marker for the timestamped series
    ]


async def test_a_duplicated_series_keeps_its_first_sample(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    target = target_for(server.url)
    server.set('a{x="1"} 1\na{x="1"} 2\nb 3\n')
    result = await Scraper([target], store, clock=clock).scrape_once(target)
    assert result.samples_scraped == 3
    assert [(s.name, s.value) for s in without_report(store.batches[0])] == [("a", 1.0), ("b", 3.0)]


# -- labels ---------------------------------------------------------------------------------


async def test_scraped_labels_that_collide_with_target_labels_are_exported(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    target = target_for(server.url, labels={"env": "prod", "pool": "h100"})
    server.set(
        'm{job="exporter",instance="gpu-7",env="dev",exported_env="older",gpu="0"} 1\n'
        'n{pool="",container=""} 2\n'
        'o{job="x",exported_job=""} 3\n'
    )
    await Scraper([target], store, clock=clock).scrape_once(target)
    labels = {"job": JOB, "instance": target.instance, "env": "prod", "pool": "h100"}
    assert [(s.name, s.labels) for s in without_report(store.batches[0])] == [
        (
            "m",
            {
                **labels,
                "gpu": "0",
                "exported_job": "exporter",
                "exported_instance": "gpu-7",
                "exported_env": "older",  # already there: the clash takes the next name
                "exported_exported_env": "dev",
            },
        ),
        ("n", labels),  # empty values are absent values, as in Prometheus
        ("o", {**labels, "exported_job": "x"}),
    ]


async def test_static_labels_may_set_job_and_instance(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    target = target_for(server.url, labels={"instance": "node-0", "job": "fleet"})
    server.set("a 1\n")
    await Scraper([target], store, clock=clock).scrape_once(target)
    assert all(s.labels == {"instance": "node-0", "job": "fleet"} for s in store.batches[0])


# -- failures and limits ----------------------------------------------------------------------


async def first_then(
    server: MetricsServer,
    store: ListStore,
    clock: SetClock,
    change: Callable[[], None],
    *,
    timeout_s: float = 5.0,
    **scraper_args: Any,
) -> ScrapeResult:
    target = target_for(server.url, timeout_s=timeout_s)
    scraper = Scraper([target], store, clock=clock, **scraper_args)
    server.set('ok{i="1"} 1\nok{i="2"} 2\n')
    assert (await scraper.scrape_once(target)).up
    change()
    clock.now_s = NOW + 15
    result = await scraper.scrape_once(target)
    labels = base_labels(target)
    # Any failed scrape ends the series of the last good one and reports up 0.
    assert not result.up and result.error
    assert comparable(without_report(store.batches[-1])) == [
        stale("ok", {"i": "1", **labels}, NOW + 15),
        stale("ok", {"i": "2", **labels}, NOW + 15),
    ]
    assert report(store.batches[-1])["up"].value == 0.0
    return result


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "close-delimited"])
async def test_a_body_over_the_limit_fails_the_scrape(
    server: MetricsServer, store: ListStore, clock: SetClock, content_length: bool
) -> None:
    server.content_length = content_length
    result = await first_then(
        server, store, clock, lambda: server.set("x" * 60 + " 1\n"), max_body_bytes=40
    )
    assert result.error is not None
    assert result.error.startswith("body size limit exceeded: more than 40 bytes")
    assert result.samples_scraped == 0


async def test_a_body_at_the_limit_is_fine(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    server.set("x" * 37 + " 1\n")  # 40 bytes
    target = target_for(server.url)
    result = await Scraper([target], store, clock=clock, max_body_bytes=40).scrape_once(target)
    assert result.up and result.samples_scraped == 1


async def test_too_many_samples_fail_the_scrape(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    result = await first_then(
        server, store, clock, lambda: server.set("a 1\nb 2\nc 3\nd 4\ne 5\nf 6\n"), max_samples=3
    )
    assert result.error == "sample limit exceeded: more than 3 samples (max_samples)"
    # Parsing stops at the first sample over the limit: the count says "at least 4".
    assert result.samples_scraped == 4
    assert report(store.batches[-1])["scrape_samples_scraped"].value == 4.0

    server.set("a 1\nb 2\nc 3\n")
    target = target_for(server.url)
    assert (await Scraper([target], store, clock=clock, max_samples=3).scrape_once(target)).up


async def test_a_parse_error_fails_the_scrape_with_its_line(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    result = await first_then(
        server, store, clock, lambda: server.set('a 1\n# TYPE b gauge\nb{x="1",x="2"} 2\n')
    )
    assert result.error == "invalid exposition: line 3: duplicate label name 'x' in b"
    assert result.samples_scraped == 0


async def test_invalid_utf8_fails_the_scrape_with_its_line(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    def change() -> None:
        server.body = b'a 1\nb{x="\xff"} 2\n'

    result = await first_then(server, store, clock, change)
    assert result.error == "invalid exposition: line 2: invalid UTF-8"


async def test_an_http_error_status_fails_the_scrape(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    def change() -> None:
        server.status = 503

    result = await first_then(server, store, clock, change)
    assert result.error == "server returned HTTP status 503 Service Unavailable"


async def test_a_slow_target_times_out(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    answer = threading.Event()  # the target answers only once this is set

    def change() -> None:
        server.hold = answer

    try:
        result = await first_then(server, store, clock, change, timeout_s=0.3)
        # The scrape reached the target, which cannot answer before `answer` is set below:
        # the scrape returned without its answer, timed out.
        assert len(server.requests) == 2
        assert result.error == "scrape timed out after 0.3s"
        assert result.duration_s >= 0.25  # it did wait for its timeout
    finally:
        answer.set()


async def test_openmetrics_answers_are_read_with_seconds_timestamps(
    server: MetricsServer, store: ListStore, clock: SetClock
) -> None:
    server.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    server.set(
        "# TYPE jobs counter\n"
        "jobs_total 3 1766999990.5\n"
        'latency_bucket{le="+Inf"} 4 # {trace_id="x"} 0.1\n'
        "# EOF\n"
    )
    target = target_for(server.url)
    await Scraper([target], store, clock=clock).scrape_once(target)
    labels = base_labels(target)
    assert comparable(without_report(store.batches[0])) == [
        ("jobs_total", labels, 3.0, 1_766_999_990.5, False),
        ("latency_bucket", {"le": "+Inf", **labels}, 4.0, NOW, False),
    ]


# -- run() -------------------------------------------------------------------------------------


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"  # nothing listens there now


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def ups(store: ListStore, target: ScrapeTarget) -> list[float]:
    return [s.value for s in store.samples("up") if s.labels["instance"] == target.instance]


async def test_run_scrapes_every_target_and_a_broken_one_stops_none(
    server: MetricsServer,
    second_server: MetricsServer,
    store: ListStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="inferops.collectors.scraper")
    server.set("healthy 1\n")
    second_server.status = 500  # flaps: down first, then back
    good = target_for(server.url, interval_s=0.05, timeout_s=0.5, job="good")
    broken = target_for(refused_url(), interval_s=0.05, timeout_s=0.5, job="broken")
    flapping = target_for(second_server.url, interval_s=0.05, timeout_s=0.5, job="flapping")
    scraper = Scraper([good, broken, flapping], store)

    task = asyncio.create_task(scraper.run())
    try:
        await wait_until(lambda: len(ups(store, flapping)) >= 3 and len(ups(store, broken)) >= 3)
        second_server.set("recovered 1\n")
        second_server.status = 200
        await wait_until(lambda: ups(store, flapping)[-1:] == [1.0])
        await wait_until(lambda: len(ups(store, good)) >= 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert set(ups(store, good)) == {1.0}
    assert set(ups(store, broken)) == {0.0}
    assert ups(store, flapping)[0] == 0.0
    healthy = [s for s in store.samples("healthy")]
    assert len(healthy) >= 5 and {s.labels["job"] for s in healthy} == {"good"}

    def logged(level: int, target: ScrapeTarget) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == level and target.url in r.getMessage()
        ]

    # Once per transition, not once per scrape.
    assert len(logged(logging.WARNING, broken)) == 1
    assert "is down: ConnectError" in logged(logging.WARNING, broken)[0]
    assert len(logged(logging.WARNING, flapping)) == 1
    assert "HTTP status 500" in logged(logging.WARNING, flapping)[0]
    assert len(logged(logging.INFO, flapping)) == 1
    assert "is up again" in logged(logging.INFO, flapping)[0]
    assert logged(logging.WARNING, good) == [] and logged(logging.INFO, good) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_run_logs_and_goes_on_when_the_store_fails(
    server: MetricsServer, caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyStore(ListStore):
        calls = 0

        def append(self, samples: Sequence[ScrapedSample]) -> None:
            self.calls += 1
            if self.calls <= 2:
                raise RuntimeError("database is locked")
            super().append(samples)

    store = FlakyStore()
    server.set("a 1\n")
    target = target_for(server.url, interval_s=0.05, timeout_s=0.5)
    task = asyncio.create_task(Scraper([target], store).run())
    try:
        await wait_until(lambda: len(store.batches) >= 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failures = [r for r in caplog.records if "trying again next interval" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None


async def test_run_with_no_targets_waits_to_be_cancelled(store: ListStore) -> None:
    scraper = Scraper([], store)
    task = asyncio.create_task(scraper.run())
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_run_refuses_to_run_twice(server: MetricsServer, store: ListStore) -> None:
    server.set("a 1\n")
    scraper = Scraper([target_for(server.url, interval_s=5)], store)
    task = asyncio.create_task(scraper.run())
    await asyncio.sleep(0.02)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await scraper.run()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_targets_are_spread_over_their_interval(
    server: MetricsServer, store: ListStore
) -> None:
    server.set("a 1\n")
    targets = [target_for(f"{server.url}?n={i}", interval_s=2.0, timeout_s=1.0) for i in range(10)]
    started = time.monotonic()
    task = asyncio.create_task(Scraper(targets, store).run())
    try:
        await wait_until(lambda: len(server.request_times) == 10, timeout_s=5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Each target waits for its own slot (`_offset`) in the interval before its first scrape...
    offsets = {f"/metrics?n={i}": _offset(target) for i, target in enumerate(targets)}
    first = {path: times[0] - started for path, times in server.request_times.items()}
    assert all(first[path] >= offsets[path] - 0.01 for path in offsets), (first, offsets)
    # ...and the slots differ, so they do not all scrape at once: the earliest slot's first
    # scrape comes before the latest slot's.
    earliest, latest = min(offsets, key=offsets.__getitem__), max(offsets, key=offsets.__getitem__)
    assert offsets[latest] - offsets[earliest] > 0.3
    assert first[earliest] < first[latest]


def test_offsets_are_stable_and_within_the_interval() -> None:
    offsets = [
        _offset(target_for(f"http://10.0.0.{i}:9400/metrics", interval_s=15.0)) for i in range(50)
    ]
    assert all(0 <= offset < 15.0 for offset in offsets)
    assert len(set(offsets)) == 50
    assert offsets == [
        _offset(target_for(f"http://10.0.0.{i}:9400/metrics", interval_s=15.0)) for i in range(50)
    ]


# -- ScrapeTarget -------------------------------------------------------------------------------


def test_instance_is_host_and_port_of_the_url() -> None:
    assert target_for("http://127.0.0.1:8001/metrics").instance == "127.0.0.1:8001"
    assert target_for("https://user:pw@gpu-3.internal:9400/m").instance == "gpu-3.internal:9400"
    assert target_for("http://[::1]:9090/metrics").instance == "[::1]:9090"
    assert target_for("http://router/metrics").instance == "router"


def test_targets_are_frozen_hashable_values() -> None:
    labels = {"pool": "h100"}
    target = target_for("http://127.0.0.1:8001/metrics", labels=labels)
    labels["pool"] = "changed"
    assert target.labels == {"pool": "h100"}
    with pytest.raises(FrozenInstanceError):
        target.job = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        target.labels["pool"] = "x"  # type: ignore[index]
    same = target_for("http://127.0.0.1:8001/metrics", labels={"pool": "h100"})
    assert target == same and hash(target) == hash(same)
    assert len({target, same}) == 1
    assert Scraper([target, same], ListStore()).targets == (target,)


@pytest.mark.parametrize(
    "args, message",
    [
        (("", "http://a:1/m", {}, 1.0, 1.0), "job name"),
        (("j", "ftp://a:1/m", {}, 1.0, 1.0), "http(s)://"),
        (("j", "a:1/metrics", {}, 1.0, 1.0), "http(s)://"),
        (("j", "http://a:1/m", {}, 0.0, 1.0), "interval_s"),
        (("j", "http://a:1/m", {}, 1.0, -1.0), "timeout_s"),
        (("j", "http://a:1/m", {"bad-name": "x"}, 1.0, 1.0), "invalid target label name"),
        (("j", "http://a:1/m", {"__meta": "x"}, 1.0, 1.0), "reserved"),
    ],
)
def test_invalid_targets_are_refused(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ScrapeTarget(*args)


def test_scraper_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        Scraper([], ListStore(), max_body_bytes=0)
    with pytest.raises(ValueError, match="max_samples"):
        Scraper([], ListStore(), max_samples=-1)
