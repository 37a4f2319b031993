"""The dashboard in a real browser (Chromium, through Playwright) over a store of real data.

Three simulated nodes are real Prometheus exporters (`exporters.RequestMetrics` and
`exporters.GpuCollector` over `SimulatedGpuBackend`, each on its own HTTP server) with
request outcomes recorded by the test, next to a real `reference_server.Router` (not
proxying: only its `/metrics`, with node-1 drained and node-2 failing its health check);
the real `collectors.Scraper` scrapes them all into a SQLite store, the real `AlertEngine`
evaluates the shipped node-health rules and the SLO's burn-rate rules over it, a
remediation decision goes into the real `DecisionLog`, and SLO status is recorded as the
control plane records it, once per scrape. Then every page, served by `DashboardServer`
and reached through its link, must show exactly that, with no error in the browser console.

The scrapes are stamped 5 s apart by the scraper's clock, and the dashboard's clock is
pinned to the last one, so every number on the page is known:

- node-0: 10 requests per interval, all 200, 0.4 s each; 2 queued; KV cache 25 %: serving.
- node-1: 6 requests answered 200 (1.2 s each) and 4 answered 500 per interval: 40 % errors;
  the router has it drained and idle: drained (no longer "up").
- node-2: 5 requests per interval; its exporter is stopped before the last scrape: down.

Over the 30 s `rate()` window, five samples 5 s apart ending at "now" read as Prometheus
extrapolates them: the increase over the 20 s sampled, stretched by half an interval at the
start, over 30 s: 40 * 22.5 / 20 / 30 = 1.50 requests/s for node-0.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from alerting import AlertEngine, AlertState, AlertStore
from collectors import SampleStore, Scraper, ScrapeTarget, StoreSource, open_database
from dashboards import PAGES, DashboardData, DashboardServer, ElementId, create_app
from exporters import GpuCollector, RequestMetrics, RequestOutcome, SimulatedGpuBackend
from inferops import slo_status_samples
from reference_server import NodeSpec, Router
from remediation import DecisionLog, Outcome, ProfileLog, ProfileOp, ProfileTable
from slo import (
    CostSli,
    RatioSli,
    SloEvaluator,
    SloSpec,
    burn_rate_alert_rules,
    load_alerting_rules,
    load_burn_rate_windows,
)

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

NODE_ALERTS = Path(__file__).parents[2] / "inferops" / "defaults" / "node-alerts.yaml"
SCRAPE_INTERVAL_S = 5
SCRAPES = 5
PAGE_TIMEOUT_MS = 60_000
MODEL = "inferops-tiny"
COST = CostSli(
    gpus='DCGM_FI_DEV_GPU_UTIL{job="nodes"}',
    price_label="Hostname",
    gpu_hour_prices={"node-0": 3.6, "node-1": 3.6, "node-2": 3.6},
    requests='http_requests_total{job="nodes"}',
    per="request",
    max_dollars=0.01,
    output_tokens='vllm:generation_tokens_total{job="nodes"}',
    slice_s=30.0,
)
SCREENSHOTS = os.environ.get("INFEROPS_DASHBOARD_SCREENSHOTS")
"""A folder to save a screenshot of each page into (docs/images), when set."""


@dataclass
class FakeNode:
    """One node's exporters on a real HTTP server, with outcomes the test records."""

    name: str
    metrics: RequestMetrics
    gpu: SimulatedGpuBackend
    collector: GpuCollector
    server: Any
    thread: Any

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/metrics"

    def stop(self) -> None:
        if self.thread is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        self.thread = None
        self.collector.close()


def start_node(name: str, *, busy: float) -> FakeNode:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, model_name=MODEL)
    gpu = SimulatedGpuBackend(gpus=1, hostname=name)
    gpu.record_work(busy, 0.5)
    collector = GpuCollector(gpu, hostname=name)
    registry.register(collector)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    return FakeNode(name, metrics, gpu, collector, server, thread)


def ok(e2e_s: float) -> RequestOutcome:
    return RequestOutcome(
        handler="/v1/completions",
        method="POST",
        status_code=200,
        e2e_latency_s=e2e_s,
        time_to_first_token_s=0.05,
        queue_time_s=0.01,
        prompt_tokens=12,
        generation_tokens=16,
        finished_reason="length",
        inter_token_latencies_s=(0.04, 0.05),
    )


SERVER_ERROR = RequestOutcome(handler="/v1/completions", method="POST", status_code=500)


@dataclass(frozen=True)
class Recorded:
    """What the store holds once the fixture is done: the dashboard's "now" and what the
    control plane's own components concluded (to compare the page with)."""

    now_s: float
    url: str
    slo_sli: float
    slo_budget: float
    slo_alerts: str
    """The "alerts it drives" cell as the alert store says it should read."""
    error_fingerprint: str


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Recorded]:
    nodes = [start_node(f"node-{i}", busy=b) for i, b in enumerate((0.6, 0.3, 0.2))]
    router = Router(
        [NodeSpec(node.name, "127.0.0.1", 1) for node in nodes], admin_token="browser-test"
    )
    for pooled in router.pool.nodes:
        router.pool.set_health(pooled, pooled.name != "node-2", "connection refused")
    router.pool.drain(router.pool.get("node-1"), why="by the test")
    router_server, router_thread = start_http_server(
        0, addr="127.0.0.1", registry=router.registry
    )
    database = open_database(f"sqlite:///{tmp_path / 'inferops.db'}")
    server: DashboardServer | None = None
    try:
        now_s = float(math.floor(time.time()))
        store = SampleStore(database)
        targets = {
            node.name: ScrapeTarget(
                job="nodes",
                url=node.url,
                labels={"node": node.name},
                interval_s=SCRAPE_INTERVAL_S,
                timeout_s=2.0,
            )
            for node in nodes
        }
        targets["router"] = ScrapeTarget(
            job="router",
            url=f"http://127.0.0.1:{router_server.server_port}/metrics",
            labels={},
            interval_s=SCRAPE_INTERVAL_S,
            timeout_s=2.0,
        )
        clock = [0.0]
        scraper = Scraper(list(targets.values()), store, clock=lambda: clock[0])
        node0, node1, node2 = nodes
        node0.metrics.set_waiting(2)
        node0.metrics.set_kv_cache_usage(0.25)
        node1.metrics.set_kv_cache_usage(0.5)
        for round_ in range(SCRAPES):
            for _ in range(10):
                node0.metrics.record(ok(0.4))
            for _ in range(6):
                node1.metrics.record(ok(1.2))
            for _ in range(4):
                node1.metrics.record(SERVER_ERROR)
            for _ in range(5):
                node2.metrics.record(ok(0.4))
            if round_ == SCRAPES - 1:
                node2.stop()  # the last scrape finds node-2 gone
            clock[0] = now_s - SCRAPE_INTERVAL_S * (SCRAPES - 1 - round_)
            results = asyncio.run(_scrape_all(scraper, list(targets.values())))
            expected_up = {n.name: not (n is node2 and round_ == SCRAPES - 1) for n in nodes}
            assert {name: r.up for name, r in zip(targets, results, strict=True)} == {
                **expected_up, "router": True
            }

        source = StoreSource(store)
        spec = SloSpec(
            name="nodes-availability",
            objective=0.99,
            sli=RatioSli(
                bad='http_requests_total{job="nodes",status="5xx"}',
                total='http_requests_total{job="nodes"}',
            ),
            window_s=3600.0,
        )
        windows = load_burn_rate_windows("demo-v1")
        alert_store = AlertStore(database)
        rules = [*load_alerting_rules(NODE_ALERTS), *burn_rate_alert_rules(spec, windows)]
        engine = AlertEngine(source, alert_store, rules)
        for at_s in (now_s - 5, now_s):  # pending, then firing after `for: 2s`
            engine.evaluate(at_s)
        firing = {
            (a.labels["alertname"], a.labels.get("node")): a
            for a in alert_store.active()
            if a.state == AlertState.FIRING
        }
        assert ("NodeHighErrorRate", "node-1") in firing, firing
        alert = firing[("NodeHighErrorRate", "node-1")]
        DecisionLog(database).record(
            action="drain",
            node="node-1",
            outcome=Outcome.SUCCEEDED,
            reason="NodeHighErrorRate fired on node-1; drained",
            actor="remediation-engine",
            started_at_s=now_s,
            finished_at_s=now_s,
            alertname="NodeHighErrorRate",
            alert_fingerprint=alert.fingerprint,
        )

        evaluator = SloEvaluator(source)
        for round_ in range(SCRAPES):  # as the control plane records it, every round
            at_s = now_s - SCRAPE_INTERVAL_S * (SCRAPES - 1 - round_)
            status = evaluator.evaluate(spec, at_s, windows)
            store.append(slo_status_samples([status], at_s))
        assert status.sli_value is not None and status.error_budget_remaining is not None
        slo_alerts = sorted(
            (a.labels["alertname"], a.labels["severity"], str(a.state))
            for a in alert_store.active()
            if a.labels.get("slo") == spec.name
        )
        assert slo_alerts, "the 16 % error ratio must at least set off a burn-rate alert"

        profiles = ProfileLog(database)
        for node_name, shares in (("node-1", (("aten::mm", 0.62), ("aten::addmm", 0.38))),
                                  ("node-0", (("aten::addmm", 0.7), ("aten::mm", 0.3)))):
            ops = tuple(ProfileOp(op, 10, share * 100, share) for op, share in shares)
            profiles.record(ProfileTable(node_name, "cpu", "self_cpu_time", ops),
                            taken_at_s=now_s - 10, seconds=3.0)
        data = DashboardData(
            StoreSource(store),
            AlertStore(database),
            DecisionLog(database),
            clock=lambda: now_s,
            cost=COST,
            profiles=profiles,
        )
        server = DashboardServer(create_app(data, refresh_s=1), port=0)
        server.start()
        order = {"firing": 0, "pending": 1, "resolved": 2}
        yield Recorded(
            now_s,
            server.url,
            status.sli_value,
            status.error_budget_remaining,
            ", ".join(
                f"{name}/{severity} ({state})"
                for name, severity, state in sorted(
                    slo_alerts, key=lambda a: (order[a[2]], a[0], a[1])
                )
            ),
            alert.fingerprint,
        )
    finally:
        if server is not None:
            server.stop()
        router_server.shutdown()
        router_server.server_close()
        router_thread.join(5)
        for node in nodes:
            node.stop()
        database.dispose()


async def _scrape_all(scraper: Scraper, targets: list[ScrapeTarget]) -> list[Any]:
    return [await scraper.scrape_once(target) for target in targets]


def cells(page: Any, table: ElementId, key: str) -> dict[str, str]:
    """One table row as {data-column: text}."""
    row = page.locator(f'#{table} tr[data-key="{key}"]')
    return {
        cell.get_attribute("data-column"): cell.inner_text().strip()
        for cell in row.locator("td").all()
    }


def row_texts(page: Any, table: ElementId) -> list[dict[str, str]]:
    """Every body row of a table as {data-column: text}."""
    return [
        {
            cell.get_attribute("data-column"): cell.inner_text().strip()
            for cell in row.locator("td").all()
        }
        for row in page.locator(f"#{table} tbody tr").all()
    ]


def go_to(page: Any, name: str) -> None:
    """Follow a page's link, as an engineer does, and wait until only that page shows."""
    page.click(f"#nav-{name}")
    page.wait_for_selector(f"#page-{name}:not(.hidden)")
    for other in PAGES:
        if other.name != name:
            page.wait_for_selector(f"#{other.element_id}", state="hidden")


def test_every_page_shows_the_recorded_fleet_slos_alerts_and_remediations(
    dashboard: Recorded,
) -> None:
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.on(
                "console",
                lambda message: (
                    console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: console_errors.append(f"pageerror: {error}"))
            page.goto(dashboard.url)
            _check_fleet_page(page)
            _screenshot(page, "fleet")
            go_to(page, "slos")
            _check_slos_page(page, dashboard)
            _screenshot(page, "slos")
            go_to(page, "alerts")
            _check_alerts_page(page)
            _screenshot(page, "alerts")
            go_to(page, "remediation")
            _check_remediation_page(page, dashboard)
            _screenshot(page, "remediation")
            go_to(page, "kernels")
            _check_kernels_page(page)
            go_to(page, "cost")
            _check_cost_page(page)
            go_to(page, "fleet")
            page.wait_for_selector(f'#{ElementId.FLEET_TABLE} tr[data-key="node-2"]')

            # A page's own address opens that page (a link an engineer pastes in a chat).
            page.goto(f"{dashboard.url}alerts")
            page.wait_for_selector("#page-alerts:not(.hidden)")
            page.wait_for_selector(f"#{ElementId.FLEET_PAGE}", state="hidden")
            page.wait_for_selector(f"#{ElementId.ALERTS_TABLE} tr[data-key]")
            assert page.locator("#nav-alerts").get_attribute("class") == "nav-link current"

            assert page.locator(f"#{ElementId.LAST_UPDATED}").inner_text().startswith("updated")
            page.wait_for_timeout(2_500)  # a few more refreshes, for late console errors
        finally:
            browser.close()
    assert console_errors == []


def _check_fleet_page(page: Any) -> None:
    page.wait_for_selector(f'#{ElementId.FLEET_TABLE} tr[data-key="node-2"]')
    page.wait_for_selector(f"#{ElementId.REQUESTS_CHART} .scatterlayer .trace", state="attached")

    # One row per node, in order, with the numbers recorded.
    keys = page.locator(f"#{ElementId.FLEET_TABLE} tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.key)"
    )
    assert keys == ["node-0", "node-1", "node-2"]
    node0 = cells(page, ElementId.FLEET_TABLE, "node-0")
    node1 = cells(page, ElementId.FLEET_TABLE, "node-1")
    node2 = cells(page, ElementId.FLEET_TABLE, "node-2")
    assert node0["status"] == "serving"
    assert node1["status"] == "drained"  # drained by the router: no longer "up"
    assert node2["status"] == "down"
    assert node0["requests_per_s"] == "1.50"
    assert node1["requests_per_s"] == "1.50"
    assert node0["error_ratio"] == "0.0 %"
    assert node1["error_ratio"] == "40.0 %"
    assert node0["p50_s"] == "400 ms" and node0["p99_s"] == "498 ms"
    assert node1["p50_s"] == "1.25 s"
    assert re.fullmatch(r"1\.\d\d s", node1["p99_s"]), node1
    assert node0["queue"] == "2" and node1["queue"] == "0"
    assert node0["kv_usage"] == "25 %" and node1["kv_usage"] == "50 %"
    for row in (node0, node1):
        assert re.fullmatch(r"\d+ %", row["gpu_util_percent"]), row
        assert re.fullmatch(r"\d+ ms", row["ttft_p50_s"]), row  # 50 ms, read from buckets
        assert re.fullmatch(r"\d+ ms", row["ttft_p99_s"]), row
        assert re.fullmatch(r"\d+\.\d / \d+ GiB", row["gpu_memory"]), row
        assert re.fullmatch(r"\d+ \N{DEGREE SIGN}C", row["gpu_temperature_celsius"]), row
        assert re.fullmatch(r"\d+ W", row["gpu_power_watts"]), row
    assert node2["gpu_util_percent"] == "\N{EN DASH}"  # stale: no current value
    assert node2["gpu_memory"] == "\N{EN DASH}"
    row_classes = {
        key: page.locator(f'#{ElementId.FLEET_TABLE} tr[data-key="{key}"]').get_attribute("class")
        for key in ("node-0", "node-1", "node-2")
    }
    assert row_classes == {"node-0": "", "node-1": "row-drained", "node-2": "row-down"}
    error_cell = page.locator(
        f'#{ElementId.FLEET_TABLE} tr[data-key="node-1"] td[data-column="error_ratio"]'
    )
    assert "bad" in (error_cell.get_attribute("class") or "")

    # Charts: Plotly drew an SVG with one line per node that has traffic.
    for chart in (
        ElementId.REQUESTS_CHART,
        ElementId.LATENCY_CHART,
        ElementId.ERRORS_CHART,
        ElementId.GPU_CHART,
    ):
        _wait_for_lines(page, chart)
    legend = page.locator(f"#{ElementId.REQUESTS_CHART} .legendtext").all_text_contents()
    assert {"node-0", "node-1", "node-2"} <= set(legend), legend
    errors_legend = page.locator(f"#{ElementId.ERRORS_CHART} .legendtext").all_text_contents()
    assert "node-1" in errors_legend, errors_legend


def _wait_for_lines(page: Any, chart: ElementId) -> None:
    page.wait_for_selector(f"#{chart} .main-svg")
    page.wait_for_selector(f"#{chart} .scatterlayer .trace", state="attached")
    drawn = page.locator(f"#{chart} .scatterlayer .trace path.js-line").evaluate_all(
        "paths => paths.map(path => path.getAttribute('d') || '')"
    )
    assert any(d.count("L") >= 1 for d in drawn), (chart, drawn)


def _check_slos_page(page: Any, dashboard: Recorded) -> None:
    page.wait_for_selector(f'#{ElementId.SLO_TABLE} tr[data-key="nodes-availability"]')
    slo = cells(page, ElementId.SLO_TABLE, "nodes-availability")
    assert slo["slo"] == "nodes-availability"
    assert slo["objective_ratio"] == "99.0 %"
    assert slo["sli_ratio"] == f"{dashboard.slo_sli * 100:.3f} %"
    assert slo["error_budget_remaining_ratio"] == f"{dashboard.slo_budget * 100:.1f} %"
    assert re.search(r"\d+[smh]: \d+\.\d\d\N{MULTIPLICATION SIGN}", slo["burn_rates"])
    assert slo["alerts"] == dashboard.slo_alerts

    # The burn-down: one line, the SLO's budget at every recorded round.
    _wait_for_lines(page, ElementId.BUDGET_CHART)
    lines = page.evaluate(
        "id => document.querySelector(`#${id} .js-plotly-plot`).data"
        ".map(t => [t.name, t.y.filter(v => v !== null).length])",
        str(ElementId.BUDGET_CHART),
    )
    # Not every round has a budget (the first has no rate yet), and which chart steps see
    # a sample depends on where "now" falls between them: a line of at least two points.
    [[name, points]] = lines
    assert name == "nodes-availability" and 2 <= points <= SCRAPES, lines


def _check_alerts_page(page: Any) -> None:
    page.wait_for_selector(f"#{ElementId.ALERTS_TABLE} tr[data-key]")
    alerts = row_texts(page, ElementId.ALERTS_TABLE)
    error_alerts = [a for a in alerts if a.get("alertname") == "NodeHighErrorRate"]
    assert len(error_alerts) == 1, alerts
    [error_alert] = error_alerts
    assert error_alert["state"] == "firing"
    assert error_alert["node"] == "node-1"
    assert error_alert["severity"] == "page"
    assert error_alert["summary"] == "Node node-1 fails 40% of its requests", error_alert
    assert error_alert["resolved_at_s"] == "\N{EN DASH}"
    assert all(a["state"] in ("firing", "pending") for a in alerts), alerts
    assert row_texts(page, ElementId.RECENT_ALERTS_TABLE) == [
        {"message": "no resolved alerts yet"}
    ]


def _check_remediation_page(page: Any, dashboard: Recorded) -> None:
    incident = f'#{ElementId.INCIDENTS} .incident[data-key="{dashboard.error_fingerprint}"]'
    page.wait_for_selector(incident)
    assert page.locator(f"{incident} h3").inner_text() == (
        f"NodeHighErrorRate on node-1 since {_utc(dashboard.now_s - 5)} UTC"
    )
    kinds = page.locator(f"{incident} li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds == ["pending", "firing", "decision"]
    decision_line = page.locator(f'{incident} li[data-kind="decision"] .event-text').inner_text()
    assert decision_line == (
        "drain node-1 by remediation-engine: succeeded: NodeHighErrorRate fired on node-1; "
        "drained"
    )

    page.wait_for_selector(f"#{ElementId.REMEDIATIONS_TABLE} tr[data-key]")
    [decision] = row_texts(page, ElementId.REMEDIATIONS_TABLE)
    assert decision["action"] == "drain"
    assert decision["node"] == "node-1"
    assert decision["outcome"] == "succeeded"
    assert decision["alertname"] == "NodeHighErrorRate"
    assert decision["actor"] == "remediation-engine"
    assert decision["guard"] == "\N{EN DASH}"
    assert decision["reason"] == "NodeHighErrorRate fired on node-1; drained"


def _check_kernels_page(page: Any) -> None:
    page.wait_for_selector(f'#{ElementId.KERNELS_TABLE} tr[data-key="node-1"]')
    assert [row["node"] for row in row_texts(page, ElementId.KERNELS_TABLE)] == [
        "node-0", "node-1"]
    assert cells(page, ElementId.KERNELS_TABLE, "node-1")["top_ops"] == (
        "aten::mm 62.0%, aten::addmm 38.0%")
    # node-1 has a firing alert, so it is no one's healthy peer; node-0 is node-1's.
    assert cells(page, ElementId.KERNEL_DIFF_TABLE, "node-1") == {
        "node": "node-1", "peer": "node-0",
        "regressed_ops": "aten::mm 30.0% \N{RIGHTWARDS ARROW} 62.0%"}
    _screenshot(page, "kernels")


def _check_cost_page(page: Any) -> None:
    page.wait_for_selector(f'#{ElementId.COST_TABLE} tr[data-key="node-0"]')
    # One GPU at $3.60/h ($0.001/s) over 1.50 requests/s and 24 output tokens/s.
    assert cells(page, ElementId.COST_TABLE, "node-0") == {
        "node": "node-0", "model": COST_MODEL, "gpu_dollars_per_hour": "$3.6000",
        "requests_per_s": "1.50", "output_tokens_per_s": "24.00",
        "dollars_per_request": "$0.0007", "dollars_per_1k_output_tokens": "$0.0417"}
    page.wait_for_selector(
        f"#{ElementId.COST_REQUEST_CHART} .scatterlayer .trace", state="attached")
    _screenshot(page, "cost")


COST_MODEL = "\N{EN DASH}"


def _screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.wait_for_timeout(1_500)  # the charts' first draw
        page.screenshot(path=str(Path(SCREENSHOTS) / f"dashboard-{name}.png"), full_page=True)


def _utc(timestamp_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp_s))
