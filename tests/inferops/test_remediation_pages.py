"""Remediation notices reach people through the durable outbox, as Alertmanager bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from alerting import Outbox
from inferops._remediation_pages import RemediationPager
from remediation import Notice


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(sa.create_engine(f"sqlite:///{tmp_path / 'pages.db'}"))


def test_a_breaker_page_is_queued_for_every_receiver_as_a_firing_alert(outbox: Outbox) -> None:
    woken: list[bool] = []
    pager = RemediationPager(
        outbox, ["oncall", "chat"], external_url="http://cp:9095",
        wake=lambda: woken.append(True), clock=lambda: 1_700_000_000.25,
    )
    pager(Notice("page", None, "remediation circuit breaker opened: 2 of 3 nodes", "", None))

    entries = outbox.entries()
    assert [entry.receiver for entry in entries] == ["oncall", "chat"]
    assert woken == [True]
    payload = entries[0].payload
    assert payload["receiver"] == "oncall"
    assert payload["status"] == "firing"
    assert payload["groupLabels"] == {"alertname": "RemediationCircuitBreakerOpen"}
    [alert] = payload["alerts"]
    assert alert["labels"] == {
        "alertname": "RemediationCircuitBreakerOpen",
        "severity": "page",
        "source": "inferops-remediation",
    }
    assert alert["annotations"] == {
        "summary": "remediation circuit breaker opened: 2 of 3 nodes"
    }
    assert alert["startsAt"] == "2023-11-14T22:13:20.250Z"
    assert entries[0].next_attempt_at_s == 1_700_000_000.25


def test_an_escalation_names_its_node_and_incident_and_goes_to_its_receiver(
    outbox: Outbox,
) -> None:
    pager = RemediationPager(outbox, ["oncall", "hw-team"], external_url="http://cp:9095")
    pager(Notice("escalate", "hw-team", "node-2 cycled 3 times in 1h", "node-2", 7))

    [entry] = outbox.entries()
    assert entry.receiver == "hw-team"
    [alert] = entry.payload["alerts"]
    assert alert["labels"]["alertname"] == "RemediationEscalation"
    assert alert["labels"]["node"] == "node-2"
    assert alert["annotations"] == {"summary": "node-2 cycled 3 times in 1h", "incident": "7"}


@pytest.mark.parametrize(
    ("receivers", "named", "message"),
    [
        (["oncall"], "pager", "unknown receiver 'pager'; configured: oncall"),
        ([], None, "no webhook receiver is configured (alerting.receivers)"),
    ],
    ids=["a receiver that is not configured", "no receivers at all"],
)
def test_a_notice_that_cannot_be_sent_raises_and_queues_nothing(
    outbox: Outbox, receivers: list[str], named: str | None, message: str
) -> None:
    pager = RemediationPager(outbox, receivers, external_url="http://cp:9095")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pager(Notice("notify", named, "look at node-1", "node-1", None))
    assert outbox.entries() == []


def test_a_policy_notify_step_in_the_control_plane_lands_in_the_outbox(tmp_path: Path) -> None:
    from inferops._control_plane import ControlPlane
    from inferops._settings import parse_settings

    (tmp_path / "policy.yaml").write_text(
        "version: inferops/v1\n"
        "policies:\n"
        "  - name: tell-oncall\n"
        "    match: {alertname: NodeHighLatency}\n"
        "    steps:\n"
        "      - notify: {receiver: oncall, message: 'node-1 is slow; look at its profile'}\n",
        encoding="utf-8",
    )
    settings = parse_settings(
        f"store: {{url: 'sqlite:///{tmp_path / 'inferops.db'}'}}\n"
        "alerting:\n"
        "  watchdog: false\n"
        "  receivers: [{name: oncall, url: 'http://127.0.0.1:9/hook'}]\n"
        "remediation: {policy_file: policy.yaml, fleet_url: 'http://127.0.0.1:9'}\n",
        base_dir=tmp_path, environ={},
    )
    plane = ControlPlane(settings, admin_token="fleet-token")
    try:
        assert plane.remediation is not None
        plane.remediation.handle_notification({"alerts": [{
            "status": "firing", "fingerprint": "f00d",
            "labels": {"alertname": "NodeHighLatency", "node": "node-1"},
            "annotations": {},
        }]})
        [entry] = Outbox(plane.database).entries()
    finally:
        plane.close()
    assert entry.receiver == "oncall"
    [alert] = entry.payload["alerts"]
    assert alert["labels"] == {
        "alertname": "RemediationNotice", "severity": "info",
        "source": "inferops-remediation", "node": "node-1",
    }
    assert alert["annotations"]["summary"] == "node-1 is slow; look at its profile"
