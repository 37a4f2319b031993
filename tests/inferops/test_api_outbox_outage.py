"""Durable delivery, compressed: a real `inferops run` notifies a receiver that goes down;
half-way through the outage the control plane is killed with SIGKILL and started again; when
the receiver is back, every firing and resolved notification arrives, none twice more than
once. (`python -m bench outbox_outage` runs it with a 15-minute outage and the 60 s cap, and
measures how soon after the receiver's return the first delivery lands.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.outbox_outage import run_outage

pytestmark = pytest.mark.integration


def test_no_notification_is_lost_through_an_outage_and_a_kill_9_of_the_control_plane(
    tmp_path: Path,
) -> None:
    report = run_outage(tmp_path, outage_s=4.0, max_backoff_s=1.0)
    assert report.received == [
        ("a", "firing"), ("a", "resolved"), ("b", "firing"), ("b", "resolved"), ("c", "firing"),
    ]
    assert report.lost == []
    assert report.max_deliveries_per_key <= 2
    assert report.max_deliveries_per_alert_status <= 2
    assert report.first_delivery_after_return_s is not None
