"""Incidents group decisions by alert into a timeline that closes when the alert resolved and
the node serves again; decisions keep the evidence they read; a decisions table written by
the previous version is upgraded in place without losing a row."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from remediation_doubles import InMemoryFleet, SetClock, alert, webhook

from remediation import (
    Decision,
    DecisionLog,
    IncidentLog,
    Outcome,
    PolicyRule,
    RemediationEngine,
    RemediationPolicy,
)

POLICY = RemediationPolicy(rules=(PolicyRule("drain-down", {"alertname": "NodeDown"}, {},
                                             "drain"),))


def test_decisions_about_one_alert_form_one_incident_until_it_resolves_and_the_node_serves(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, database: sa.Engine
) -> None:
    engine = RemediationEngine(fleet, log, POLICY, clock=clock, cooldown_s=0.0)
    body = webhook(alert("NodeDown", node="node-1", fingerprint="f1"))
    (drain,) = engine.handle_notification(body)
    clock.now_s = 1005.0
    (again,) = engine.handle_notification(body)
    other = engine.handle_notification(webhook(alert("NodeDown", node="node-2",
                                                     fingerprint="f2")))
    clock.now_s = 1060.0
    engine.handle_notification(webhook(alert("NodeDown", node="node-1", fingerprint="f1",
                                             status="resolved"), status="resolved"))
    still_open = engine.incidents.get(1)
    clock.now_s = 1090.0
    undrain = engine.execute("undrain", "node-1", actor="cli:alice", reason="fixed",
                             alertname="NodeDown", alert_fingerprint="f1")

    incident = IncidentLog(database).get(1)
    assert incident is not None and still_open is not None
    assert still_open.closed_at_s is None  # resolved, but node-1 is still drained
    assert (incident.id, incident.title, incident.node, incident.alertname,
            incident.alert_fingerprint, incident.opened_at_s, incident.closed_at_s) == (
        1, "NodeDown on node-1", "node-1", "NodeDown", "f1", 1000.0, 1090.0)
    assert [(d.id, d.action, d.outcome) for d in incident.decisions] == [
        (drain.id, "drain", Outcome.SUCCEEDED), (again.id, "drain", Outcome.SKIPPED),
        (undrain.id, "undrain", Outcome.SUCCEEDED)]
    assert [(i.id, i.node, i.closed_at_s) for i in IncidentLog(database).list()] == [
        (2, "node-2", None), (1, "node-1", 1090.0)]
    assert [d.incident_id for d in other] == [2]


def test_a_decision_keeps_the_alert_evidence_it_was_taken_on(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = RemediationEngine(fleet, log, POLICY, clock=clock)
    one = alert("NodeDown", node="node-1", fingerprint="f1")
    one["annotations"] = {"summary": "Node node-1 does not answer scrapes"}
    one["startsAt"] = "2026-11-25T12:00:00Z"
    one["generatorURL"] = "http://127.0.0.1:8050/graph?g0.expr=up%7Bjob%3D%22nodes%22%7D+%3D%3D+0"
    (decision,) = engine.handle_notification(webhook(one))

    assert json.loads(decision.evidence) == {
        "labels": {"alertname": "NodeDown", "node": "node-1", "severity": "page"},
        "annotations": {"summary": "Node node-1 does not answer scrapes"},
        "startsAt": 1795608000.0,
        "expr": 'up{job="nodes"} == 0',
        "node_label": "node",
    }
    assert log.get(decision.id) == decision


def test_a_decisions_table_of_the_previous_version_is_upgraded_without_losing_rows(
    tmp_path: Path
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:  # the table exactly as the previous version made it
        connection.execute(sa.text(
            "CREATE TABLE remediation_decisions (id INTEGER NOT NULL PRIMARY KEY, "
            "action VARCHAR(32) NOT NULL, node VARCHAR(255) NOT NULL, outcome VARCHAR(16) NOT "
            "NULL, reason TEXT NOT NULL, guard VARCHAR(64), actor VARCHAR(255) NOT NULL, "
            "alertname VARCHAR(255), alert_fingerprint VARCHAR(64), started_at_s FLOAT NOT "
            "NULL, finished_at_s FLOAT)"))
        connection.execute(sa.text(
            "INSERT INTO remediation_decisions VALUES (1, 'drain', 'node-1', 'succeeded', "
            "'old reason', NULL, 'policy:old', 'NodeDown', 'ab12', 10.0, 11.0)"))

    log = DecisionLog(engine)
    columns = [c["name"] for c in sa.inspect(engine).get_columns("remediation_decisions")]
    new = log.record(action="drain", node="node-2", outcome=Outcome.PENDING_APPROVAL,
                     reason="new", actor="policy:new", started_at_s=20.0,
                     params={"flag": "hardware-inspection"}, evidence="{}", incident_id=7)

    assert columns[-4:] == ["params", "evidence", "incident_id", "approved_by"]
    assert log.get(1) == Decision(
        id=1, action="drain", node="node-1", outcome=Outcome.SUCCEEDED, reason="old reason",
        guard=None, actor="policy:old", alertname="NodeDown", alert_fingerprint="ab12",
        started_at_s=10.0, finished_at_s=11.0, params={}, evidence="", incident_id=None,
        approved_by=None)
    assert (new.id, new.params, new.incident_id) == (2, {"flag": "hardware-inspection"}, 7)
    assert DecisionLog(engine).recent() == [new, log.get(1)]  # opening again changes nothing
    engine.dispose()
