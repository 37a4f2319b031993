"""The demo's report and verdict: the JSON shape the issue specifies, and when the loop closed."""

from __future__ import annotations

from typing import Any

import pytest

from alerting import Alert, AlertState
from inferops._demo_report import Timeline, build_report, loop_closed
from inferops._load import RequestRecord
from remediation import Decision, Outcome

INJECTED_AT = 1000.0


def alert(node: str, fired_at: float | None, name: str = "NodeHighErrorRate") -> Alert:
    return Alert(
        fingerprint=f"fp-{node}-{name}",
        labels={"alertname": name, "node": node, "severity": "page"},
        annotations={},
        state=AlertState.FIRING if fired_at is not None else AlertState.PENDING,
        active_at_s=(fired_at or INJECTED_AT + 1) - 2.0,
        fired_at_s=fired_at,
    )


def decision(
    id_: int, node: str, outcome: Outcome, started: float, finished: float | None
) -> Decision:
    return Decision(
        id=id_,
        action="drain",
        node=node,
        outcome=outcome,
        reason="r",
        guard=None,
        actor="policy:drain-unhealthy-node",
        alertname="NodeHighErrorRate",
        alert_fingerprint=None,
        started_at_s=started,
        finished_at_s=finished,
    )


def request(started: float, ok: bool = True) -> RequestRecord:
    return RequestRecord(
        started, started + 0.2, ok, 200 if ok else 500, False, None if ok else "boom"
    )


def report_for(
    alerts: list[Alert], decisions: list[Decision], records: list[RequestRecord]
) -> dict[str, Any]:
    return build_report(
        fault="error-burst",
        node="node-1",
        injected_at_s=INJECTED_AT,
        alerts=alerts,
        decisions=decisions,
        records=records,
        slo_statuses=[
            {
                "name": "router-availability",
                "objective": 0.99,
                "sli": 0.995,
                "budget_remaining": 0.5,
            }
        ],
    )


def test_the_report_has_the_documented_shape_and_numbers() -> None:
    report = report_for(
        alerts=[alert("node-1", 1004.5), alert("node-2", None), alert("node-1", 990.0)],
        decisions=[decision(1, "node-1", Outcome.SUCCEEDED, 1004.75, 1005.0)],
        records=[request(999.0), request(1003.0, ok=False), request(1010.0)],
    )
    assert report == {
        "fault": {"kind": "error-burst", "node": "node-1", "injected_at": 1000.0},
        "detection": {"alert": "NodeHighErrorRate", "node": "node-1", "fired_at": 1004.5},
        "remediation": [
            {
                "action": "drain",
                "node": "node-1",
                "started_at": 1004.75,
                "finished_at": 1005.0,
                "outcome": "succeeded",
            }
        ],
        "requests": {"total": 3, "succeeded": 2, "failed": 1},
        "slos": [
            {
                "name": "router-availability",
                "objective": 0.99,
                "sli": 0.995,
                "budget_remaining": 0.5,
            }
        ],
        "time_to_detect_s": 4.5,
        "time_to_mitigate_s": 5.0,
    }


CLOSED = [decision(1, "node-1", Outcome.SUCCEEDED, 1004.75, 1005.0)]


@pytest.mark.parametrize(
    ("alerts", "decisions", "records", "verdict"),
    [
        (
            [alert("node-1", 1004.5)],
            CLOSED,
            [request(1003.0, ok=False), request(1007.0)],
            (True, "1 requests after mitigation, all succeeded"),
        ),
        (
            [alert("node-1", 990.0)],
            CLOSED,
            [request(1007.0)],
            (False, "no alert named node-1 after the fault was injected"),
        ),
        (
            [alert("node-1", 1004.5)],
            [decision(1, "node-1", Outcome.REFUSED, 1004.75, 1004.75)],
            [request(1007.0)],
            (False, "node-1 was not drained"),
        ),
        (
            [alert("node-1", 1004.5)],
            [*CLOSED, decision(2, "node-0", Outcome.SUCCEEDED, 1006.0, 1006.5)],
            [request(1007.0)],
            (False, "healthy node(s) node-0 were drained"),
        ),
        (
            [alert("node-1", 1004.5)],
            CLOSED,
            [request(1005.5)],
            (False, "no requests were sent after mitigation"),
        ),
        (
            [alert("node-1", 1004.5)],
            CLOSED,
            [request(1007.0), request(1008.0, ok=False)],
            (False, "1 of 2 requests after mitigation failed (boom)"),
        ),
    ],
    ids=[
        "detected, drained, and every later request succeeded: the loop closed",
        "an alert from before the fault is not a detection",
        "a refused drain is not a mitigation",
        "draining a healthy node fails the demo",
        "requests within the grace second after mitigation do not count",
        "a failed request after mitigation fails the demo",
    ],
)
def test_the_verdict(
    alerts: list[Alert],
    decisions: list[Decision],
    records: list[RequestRecord],
    verdict: tuple[bool, str],
) -> None:
    assert loop_closed(report_for(alerts, decisions, records), records) == verdict


def test_the_timeline_prints_each_event_once_with_its_offset() -> None:
    lines: list[str] = []
    timeline = Timeline(lines.append, started_at_s=990.0)
    firing = alert("node-1", 1004.5)
    timeline.alert(firing)
    timeline.alert(firing)
    timeline.decision(CLOSED[0])
    timeline.decision(CLOSED[0])
    assert lines == [
        "  +  14.5s  ALERT firing    NodeHighErrorRate node=node-1 severity=page",
        "  +  15.0s  REMEDIATION     drain node-1 -> succeeded: r",
    ]


def test_a_pending_alert_that_went_away_is_not_printed_as_resolved() -> None:
    lines: list[str] = []
    never_fired = Alert(
        fingerprint="fp",
        labels={"alertname": "NodeDown", "node": "node-1"},
        annotations={},
        state=AlertState.RESOLVED,
        active_at_s=1000.0,
        fired_at_s=None,
        resolved_at_s=1001.0,
    )
    Timeline(lines.append, started_at_s=990.0).alert(never_fired)
    assert lines == []
