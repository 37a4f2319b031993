"""The control plane end to end, with real components and real time.

A real exporter (prometheus_client serving `exporters.RequestMetrics`) is scraped by the
plane built from a settings file; a node-health rule and an SLO are evaluated every 0.2 s;
firing and resolved alerts reach a real HTTP receiver as signed Alertmanager v4 bodies.
Every wait polls with a deadline; no assertion depends on how long something took.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from alerting import fingerprint
from exporters import RequestMetrics, RequestOutcome
from inferops import ControlPlane, load_settings

SECRET_ENV = "INFEROPS_TEST_G_WEBHOOK_SECRET"
SECRET = "g-test-secret-\u00e9"  # non-ASCII on purpose: the key is UTF-8 encoded
EXTERNAL_URL = "http://inferops.test:8050"
ALERT = "NodeHighErrorRate"
DEADLINE_S = 20.0

RULES = """\
groups:
  - name: node-health
    rules:
      - alert: NodeHighErrorRate
        expr: |
          sum by (node) (rate(http_requests_total{job="nodes",status="5xx"}[2s]))
            / sum by (node) (rate(http_requests_total{job="nodes"}[2s])) > 0.2
        for: 400ms
        labels:
          severity: page
          team: inference
        annotations:
          summary: "Node {{ $labels.node }} fails too many requests"
"""

SLOS = """\
version: inferops/v1
slos:
  - name: node-availability
    description: Node requests that do not fail with a server error.
    objective: 0.99
    window: 30d
    sli:
      ratio:
        bad: http_requests_total{job="nodes",status="5xx"}
        total: http_requests_total{job="nodes"}
"""


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        payload = json.loads(self.body)
        assert isinstance(payload, dict)
        return payload


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver: records every POST's headers and exact body bytes."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with holder[0].lock:
                holder[0].received.append(Received(dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(f"http://127.0.0.1:{server.server_port}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Exporter:
    address: str
    metrics: RequestMetrics


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, model_name="inferops-tiny")
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield Exporter(f"127.0.0.1:{server.server_port}", metrics)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _outcome(status_code: int) -> RequestOutcome:
    return RequestOutcome(handler="/v1/completions", method="POST", status_code=status_code)


async def _until(
    what: str, condition: Callable[[], bool], *, tick: Callable[[], None] | None = None
) -> None:
    """Poll `condition` (calling `tick` between polls) until it holds or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if tick is not None:
            tick()
        await asyncio.sleep(0.05)


def _for_alert(receiver: Receiver, status: str) -> list[Received]:
    return [
        r
        for r in receiver.bodies()
        if r.json()["groupLabels"].get("alertname") == ALERT and r.json()["status"] == status
    ]


def _write_settings(tmp_path: Path, exporter: Exporter, receiver: Receiver) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "slos.yaml").write_text(SLOS, encoding="utf-8")
    settings = tmp_path / "inferops.yaml"
    settings.write_text(
        f"""\
store:
  url: sqlite:///{tmp_path / "store" / "inferops.db"}
global:
  scrape_interval: 200ms
  scrape_timeout: 200ms
  evaluation_interval: 200ms
scrape_configs:
  - job_name: nodes
    static_configs:
      - targets: ["{exporter.address}"]
        labels: {{node: node-0}}
slo:
  files: [slos.yaml]
  windows: demo-v1
alerting:
  rule_files: [rules.yaml]
  external_url: {EXTERNAL_URL}
  group_by: [alertname]
  receivers:
    - name: ops
      url: {receiver.url}
      secret_env: {SECRET_ENV}
      timeout: 2s
remediation:
  enabled: false
""",
        encoding="utf-8",
    )
    return settings


async def test_scrape_alert_notify_and_resolve_end_to_end(
    tmp_path: Path,
    exporter: Exporter,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.delenv("INFEROPS_STORE_URL", raising=False)
    settings = load_settings(_write_settings(tmp_path, exporter, receiver))
    plane = ControlPlane(settings)
    assert plane.remediation is None
    assert plane.rules[0].alert == ALERT
    # Both series exist before the first scrape, so rate() has a baseline for each.
    exporter.metrics.record(_outcome(200))
    exporter.metrics.record(_outcome(500))

    def errors() -> None:
        for status_code in (500, 500, 200):
            exporter.metrics.record(_outcome(status_code))

    def successes() -> None:
        for _ in range(3):
            exporter.metrics.record(_outcome(200))

    running = asyncio.create_task(plane.run())
    try:
        # 1. Scraped samples land in the store and answer PromQL (as `inferops query`).
        def scraped_errors() -> bool:
            result = plane.source.query(
                'http_requests_total{job="nodes",status="5xx"}', time.time()
            )
            return len(result) == 1 and result[0].value >= 2

        await _until("5xx samples in the store", scraped_errors, tick=errors)
        [sample] = plane.source.query('http_requests_total{job="nodes",status="5xx"}', time.time())
        assert {k: v for k, v in sample.labels.items() if k != "__name__"} == {
            "handler": "/v1/completions",
            "method": "POST",
            "status": "5xx",
            "job": "nodes",
            "instance": exporter.address,
            "node": "node-0",
        }
        [up] = plane.source.query('up{job="nodes"}', time.time())
        assert up.value == 1.0

        # 2. The error ratio (2/3 > 0.2) fires the alert; the receiver gets a signed v4 body.
        await _until(
            "a firing notification", lambda: bool(_for_alert(receiver, "firing")), tick=errors
        )
        firing = _for_alert(receiver, "firing")[0]

        # 3. Errors stop: the ratio falls to 0 and a resolved notification follows.
        await _until(
            "a resolved notification",
            lambda: bool(_for_alert(receiver, "resolved")),
            tick=successes,
        )
        resolved = _for_alert(receiver, "resolved")[0]

        # 4. SLO status is recorded back into the store.
        await _until(
            "slo:sli:ratio",
            lambda: bool(plane.source.query('slo:sli:ratio{slo="node-availability"}', time.time())),
        )
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        plane.wait_notifications()
        plane.close()

    labels = {"alertname": ALERT, "node": "node-0", "severity": "page", "team": "inference"}
    annotations = {"summary": "Node node-0 fails too many requests"}
    timestamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    for received, status in ((firing, "firing"), (resolved, "resolved")):
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["User-Agent"].startswith("InferOps/")
        expected = (
            "sha256=" + hmac.new(SECRET.encode("utf-8"), received.body, hashlib.sha256).hexdigest()
        )
        assert hmac.compare_digest(received.headers["X-InferOps-Signature"], expected)
        payload = received.json()
        [alert] = payload.pop("alerts")
        assert payload == {
            "receiver": "inferops",
            "status": status,
            "groupLabels": {"alertname": ALERT},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": EXTERNAL_URL,
            "version": "4",
            "groupKey": '{}:{alertname="NodeHighErrorRate"}',
            "truncatedAlerts": 0,
        }
        assert alert["status"] == status
        assert alert["labels"] == labels
        assert alert["annotations"] == annotations
        assert alert["fingerprint"] == fingerprint(labels)
        assert alert["generatorURL"].startswith(f"{EXTERNAL_URL}/graph?g0.expr=sum+by+%28node%29")
        assert alert["generatorURL"].endswith("&g0.tab=1")
        assert timestamp.match(alert["startsAt"])
        assert set(alert) == {
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        }
    firing_alert = firing.json()["alerts"][0]
    resolved_alert = resolved.json()["alerts"][0]
    assert firing_alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert timestamp.match(resolved_alert["endsAt"])
    assert resolved_alert["endsAt"] > resolved_alert["startsAt"]
    assert resolved_alert["startsAt"] == firing_alert["startsAt"]
    # The firing body is the first body for this alert; nothing resolved came before it.
    order = [
        r.json()["status"]
        for r in receiver.bodies()
        if r.json()["groupLabels"].get("alertname") == ALERT
    ]
    assert order[0] == "firing"
    assert "resolved" in order[order.index("firing") :]

    # The alert's lifecycle is in the store the dashboard reads.
    stored = [a for a in plane.alert_store.recent(50) if a.labels.get("alertname") == ALERT]
    assert stored and stored[0].state == "resolved"
    assert stored[0].fired_at_s is not None and stored[0].resolved_at_s is not None

    # SLO series, read through a fresh plane on the same store (what `inferops query` does).
    again = ControlPlane(settings)
    try:
        now = time.time()
        sli = again.source.query('slo:sli:ratio{slo="node-availability"}', now)
        assert len(sli) == 1 and 0.0 <= sli[0].value < 1.0
        objective = again.source.query('slo:objective:ratio{slo="node-availability"}', now)
        assert [s.value for s in objective] == [0.99]
        windows = {
            s.labels["window"]
            for s in again.source.query('slo:burn_rate:ratio{slo="node-availability"}', now)
        }
        assert {"5s", "10s", "30s"} <= windows
    finally:
        again.close()
