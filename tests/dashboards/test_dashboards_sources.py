"""The fleet page's data on the three sources a deployment can have: the embedded store on
SQLite and on a real PostgreSQL (a throwaway cluster), and a real Prometheus (fed by
promtool's backfill) through `PrometheusSource`. Same five minutes of scrapes, same rows.

Two nodes scraped every second: node-0 answers 10 requests/s with status 2xx and 1/s with
5xx, node-1 4/s, all 2xx; every request's latency falls 20 % under 0.5 s, 70 % under 1 s,
90 % under 2.5 s (p50 interpolates to 0.8 s; p99 is past the last finite bucket: 2.5 s);
GPU utilization 87 % and 40 %; the router has node-1 drained with nothing in flight.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from collectors import (
    MetricSource,
    PrometheusSource,
    SampleStore,
    ScrapedSample,
    StoreError,
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


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    initdb, postgres = _postgres_binary("initdb"), _postgres_binary("postgres")
    if initdb is None or postgres is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql')")
    prefix: list[str] = []
    folder = tempfile.mkdtemp(prefix="inferops-dash-pg-")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(folder, "data")
    subprocess.run([*prefix, initdb, "-D", data, "-A", "trust", "-U", "inferops", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*prefix, postgres, "-D", data, "-p", str(port), "-k", folder,
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql+psycopg://inferops:unused-secret@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                open_database(url).dispose()
                break
            except StoreError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("PostgreSQL did not start")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_fleet_rows_on_postgresql(postgres_url: str) -> None:
    end_s = int(time.time())
    engine: sa.Engine = open_database(postgres_url)
    try:
        store = SampleStore(engine)
        store.append(scrapes(end_s))
        assert fleet_rows(StoreSource(store), end_s) == expected_rows()
    finally:
        engine.dispose()


def _openmetrics(samples: list[ScrapedSample]) -> str:
    by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[ScrapedSample]] = {}
    for one in samples:
        by_series.setdefault((one.name, tuple(sorted(one.labels.items()))), []).append(one)
    lines = []
    for (name, labels), series in by_series.items():
        text = ",".join(f'{key}="{value}"' for key, value in labels)
        lines += [f"{name}{{{text}}} {one.value!r} {one.timestamp_s:.3f}" for one in series]
    return "\n".join([*lines, "# EOF", ""])


def test_the_fleet_rows_on_prometheus(tmp_path: Path) -> None:
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        pytest.skip("prometheus/promtool are not installed (Debian package 'prometheus')")
    end_s = int(time.time())
    # OpenMetrics names may not hold ':'; promtool takes them as Prometheus does.
    (tmp_path / "data.om").write_text(_openmetrics(scrapes(end_s)))
    backfill = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "data.om", "tsdb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert backfill.returncode == 0, backfill.stderr
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "log.txt").open("w")
    process = subprocess.Popen(
        [binary, "--config.file=prometheus.yml", "--storage.tsdb.path=tsdb",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(tmp_path / 'log.txt').read_text()}")
            time.sleep(0.2)
        with PrometheusSource(url) as source:
            assert fleet_rows(source, end_s) == expected_rows()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
