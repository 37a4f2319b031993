"""Verification after acting: the alert's own condition is watched (through a real
`StoreSource` over a real store); a drain that did not help is rolled back when the node is
healthy and escalated, a node that is really sick stays drained and is escalated."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

import pytest
import sqlalchemy as sa
from remediation_doubles import InMemoryFleet, SetClock, alert, node, serving, webhook

from collectors import SampleStore, ScrapedSample, StoreSource
from remediation import (
    DecisionLog,
    Notice,
    Outcome,
    PolicyRule,
    RemediationEngine,
    RemediationPolicy,
)

POLICY = RemediationPolicy(rules=(PolicyRule("drain-down", {"alertname": "NodeDown"}, {},
                                             "drain"),))


def alert_with_expr(expr: str) -> dict[str, Any]:
    one = alert("NodeDown", node="node-1", fingerprint="v1")
    one["generatorURL"] = f"http://127.0.0.1:8050/graph?g0.expr={quote_plus(expr)}&g0.tab=1"
    return one


@pytest.fixture
def source(database: sa.Engine) -> StoreSource:
    store = SampleStore(database)
    store.append([ScrapedSample("up", {"job": "nodes", "node": "node-1"}, 1.0, at_s)
                  for at_s in (990.0, 995.0, 1000.0)])
    return StoreSource(store)


def run(fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, source: StoreSource,
        expr: str, notices: list[Notice]) -> RemediationEngine:
    engine = RemediationEngine(fleet, log, POLICY, clock=clock, source=source,
                               notify=notices.append, verify_timeout_s=0.5,
                               recovery_deadline_s=0.3, recovery_poll_s=0.05)
    engine.handle_notification(webhook(alert_with_expr(expr)))
    engine.wait_verifications(10.0)
    return engine


def test_a_drain_whose_alert_clears_is_verified_and_noted(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, source: StoreSource
) -> None:
    notices: list[Notice] = []
    engine = run(fleet, log, clock, source, 'up{job="nodes"} == 0', notices)

    assert [(d.action, d.outcome) for d in log.recent()] == [("drain", Outcome.SUCCEEDED)]
    incident = engine.incidents.get(1)
    assert incident is not None
    assert incident.notes == ("verified after decision 1: the alert's condition cleared for "
                              "node-1",)
    assert notices == []


def test_a_drain_that_did_not_help_a_healthy_node_is_rolled_back_and_escalated(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, source: StoreSource
) -> None:
    notices: list[Notice] = []
    run(fleet, log, clock, source, 'up{job="nodes"} == 1', notices)

    drain, undrain, escalate = sorted(log.recent(), key=lambda d: d.id)
    result = "the alert's condition still holds for node-1 0.3 s after the action"
    assert (drain.action, drain.outcome, drain.reason) == (
        "drain", Outcome.ROLLED_BACK,
        f"alert NodeDown fired for node-1 (policy drain-down): node-1 is now drained; "
        f"rolled back: {result}")
    assert (undrain.action, undrain.outcome, undrain.actor, undrain.reason) == (
        "undrain", Outcome.SUCCEEDED, "engine:verification",
        f"roll back of decision 1: {result}; node-1 is healthy")
    assert (escalate.action, escalate.reason) == (
        "escalate", f"drain of node-1 did not help ({result}); rolled back (sent)")
    assert fleet.calls == [("drain", "node-1"), ("undrain", "node-1")]
    assert notices == [Notice("escalate", None,
                              f"drain of node-1 did not help ({result}); rolled back",
                              "node-1", 1)]
    assert drain.incident_id == undrain.incident_id == escalate.incident_id == 1


def test_a_sick_node_that_did_not_recover_stays_drained_and_is_escalated(
    log: DecisionLog, clock: SetClock, source: StoreSource
) -> None:
    fleet = InMemoryFleet([serving("node-0"), node("node-1", "down", healthy=False),
                           serving("node-2")])
    notices: list[Notice] = []
    run(fleet, log, clock, source, "vector(1)", notices)

    drain, escalate = sorted(log.recent(), key=lambda d: d.id)
    assert (drain.action, drain.outcome) == ("drain", Outcome.SUCCEEDED)
    assert escalate.reason == (
        "drain of node-1 did not help (the alert's condition still holds for node-1 0.3 s "
        "after the action) (node-1 is drained) (sent)")
    assert fleet.calls == [("drain", "node-1")]
    assert [n.kind for n in notices] == ["escalate"]
