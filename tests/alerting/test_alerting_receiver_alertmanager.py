"""A real Prometheus evaluates our dead-man's-switch rule, a real Alertmanager (Debian's
package) routes the alert, and our webhook receiver takes Alertmanager's notification."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting_doubles import free_port
from served_app import serve

from alerting import WEBHOOK_PATH, create_alert_receiver_app, watchdog_rule

pytestmark = pytest.mark.integration

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
TOKEN = "am-t0ken"


class Received:
    def __init__(self) -> None:
        self.payloads: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, payload: Mapping[str, Any]) -> None:
        with self._lock:
            self.payloads.append(payload)

    def snapshot(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return list(self.payloads)


@contextlib.contextmanager
def started(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_a_real_alertmanager_fed_by_a_real_prometheus_drives_the_receiver(
    tmp_path: Path,
) -> None:
    missing = [path for path in (PROMETHEUS, ALERTMANAGER) if shutil.which(path) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    received = Received()
    app = create_alert_receiver_app(received, token=TOKEN)
    am_port, prom_port = free_port(), free_port()
    rules = {"groups": [{"name": "inferops", "interval": "1s",
                         "rules": [watchdog_rule().to_prometheus()]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"evaluation_interval": "1s", "scrape_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
        ]},
    }), encoding="utf-8")
    with serve(app) as receiver_url:
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump({
            "route": {"receiver": "inferops", "group_by": ["alertname"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "inferops", "webhook_configs": [{
                "url": receiver_url + WEBHOOK_PATH,
                "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
            }]}],
        }), encoding="utf-8")
        with started([
            ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
            f"--web.external-url=http://127.0.0.1:{am_port}",
        ], tmp_path / "alertmanager.log"), started([
            PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=2s",
        ], tmp_path / "prometheus.log"):
            deadline = time.monotonic() + 90
            while not received.snapshot():
                if time.monotonic() > deadline:
                    pytest.fail(
                        "no notification within 90 s; Alertmanager said:\n"
                        + (tmp_path / "alertmanager.log").read_text(errors="replace")[-2000:]
                    )
                time.sleep(0.2)
    body = received.snapshot()[0]
    assert (body["version"], body["status"], body["receiver"], body["groupLabels"]) == (
        "4", "firing", "inferops", {"alertname": "Watchdog"}
    )
    assert [(alert["status"], alert["labels"], alert["annotations"]["summary"])
            for alert in body["alerts"]] == [
        ("firing", {"alertname": "Watchdog", "severity": "none"}, "Alerting pipeline is alive")
    ]
    assert body["externalURL"] == f"http://127.0.0.1:{am_port}"
