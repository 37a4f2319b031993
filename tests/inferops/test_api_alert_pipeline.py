"""The alert pipeline's settings, wired: the shipped example's group timers, its inhibition
(a node that is down mutes that node's latency alert), silences and the dead-man's switch
decide what reaches the durable receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from alerting import Outbox
from collectors import ScrapedSample
from inferops._api import create_control_plane_api
from inferops._control_plane import ControlPlane
from inferops._settings import load_settings, parse_settings

EXAMPLE = Path(__file__).parents[2] / "inferops" / "defaults" / "control-plane.example.yaml"
AT_S = 1_790_000_000.0
RULES = """groups:
  - name: test
    rules:
      - alert: NodeDown
        expr: up{job="nodes"} == 0
      - alert: NodeHighLatency
        expr: node_latency_seconds > 1.5
"""


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlane]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    del example["scrape_configs"]  # no fleet here: the test writes the samples
    settings = parse_settings(yaml.safe_dump(example), base_dir=EXAMPLE.parent, environ={},
                              overrides={
        "store.url": f"sqlite:///{tmp_path / 'cp.db'}",
        "alerting.rule_files": [str(tmp_path / "rules.yaml")],
        "remediation.enabled": False,
        "slo.files": [],
    })
    plane = ControlPlane(settings)
    yield plane
    plane.close()


def test_the_example_settings_set_alertmanagers_timers_and_a_node_down_inhibit_rule() -> None:
    alerting = load_settings(EXAMPLE, environ={}).alerting
    assert (alerting.group_wait, alerting.group_interval, alerting.repeat_interval) == (
        30.0, 300.0, 14400.0
    )
    assert [rule.model_dump() for rule in alerting.inhibit_rules] == [{
        "source_matchers": ['alertname="NodeDown"'],
        "target_matchers": ['alertname=~"NodeHighLatency|NodeHighErrorRate"'],
        "equal": ["node"],
    }]
    assert (alerting.watchdog, alerting.delivery_max_backoff) == (True, 60.0)


def test_inhibited_and_silenced_alerts_wait_out_group_wait_and_stay_out_of_notifications(
    plane: ControlPlane,
) -> None:
    plane.store.append([
        ScrapedSample("up", {"job": "nodes", "node": "node-1"}, 0.0, AT_S - 1),
        ScrapedSample("up", {"job": "nodes", "node": "node-2"}, 1.0, AT_S - 1),
        ScrapedSample("node_latency_seconds", {"node": "node-1"}, 3.0, AT_S - 1),
        ScrapedSample("node_latency_seconds", {"node": "node-2"}, 2.0, AT_S - 1),
    ])
    silence = plane.silences.create(['node="node-2"'], ends_at_s=AT_S + 3600,
                                    created_by="alice", comment="load test", now_s=AT_S - 5)
    outbox = Outbox(plane.database)
    plane.evaluate_once(AT_S)
    plane.evaluate_once(AT_S + 29)
    assert outbox.entries() == []  # group_wait: 30s
    plane.evaluate_once(AT_S + 30)
    sent = sorted(
        (alert["labels"]["alertname"], alert["labels"].get("node", ""), alert["status"])
        for entry in outbox.entries() for alert in entry.payload["alerts"]
    )
    assert sent == [("NodeDown", "node-1", "firing"), ("Watchdog", "", "firing")]
    assert {entry.receiver for entry in outbox.entries()} == {"ops"}

    token = "t"
    api = TestClient(create_control_plane_api(token=token, routers=plane.api_routers))
    shown = api.get("/api/v2/alerts", headers={"Authorization": f"Bearer {token}"}).json()
    down = next(a for a in shown if a["labels"]["alertname"] == "NodeDown")
    muting = {
        (a["labels"]["alertname"], a["labels"].get("node", "")): a["status"] for a in shown
    }
    assert muting == {
        ("NodeDown", "node-1"): {"state": "active", "silencedBy": [], "inhibitedBy": []},
        ("NodeHighLatency", "node-1"): {
            "state": "suppressed", "silencedBy": [], "inhibitedBy": [down["fingerprint"]]},
        ("NodeHighLatency", "node-2"): {
            "state": "suppressed", "silencedBy": [silence.id], "inhibitedBy": []},
        ("Watchdog", ""): {"state": "active", "silencedBy": [], "inhibitedBy": []},
    }


def test_the_watchdog_can_be_turned_off(tmp_path: Path) -> None:
    on = load_settings(None, environ={}, overrides={
        "store.url": f"sqlite:///{tmp_path / 'on.db'}"})
    off = load_settings(None, environ={}, overrides={
        "store.url": f"sqlite:///{tmp_path / 'off.db'}", "alerting.watchdog": False})
    names = []
    for settings in (on, off):
        plane = ControlPlane(settings)
        names.append([rule.alert for rule in plane.rules])
        plane.close()
    assert names == [["Watchdog"], []]


def test_a_bad_inhibit_matcher_names_the_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "alerting:\n  inhibit_rules:\n    - source_matchers: ['alertname=NodeDown']\n"
        "      target_matchers: ['node~x']\n", encoding="utf-8")
    with pytest.raises(Exception) as raised:
        load_settings(config, environ={})
    assert str(raised.value) == (
        f"{config}:4: alerting.inhibit_rules[0].target_matchers: matcher 'node~x': expected "
        "name=value, name!=value, name=~regex or name!~regex"
    )
