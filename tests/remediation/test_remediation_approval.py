"""Policy modes and steps: approval (pending, approve re-checks the guards then acts, deny
records), ordered steps with parameters (reroute weight, notify), and what stops them."""

from __future__ import annotations

from typing import Any

import pytest
from remediation_doubles import InMemoryFleet, SetClock, alert, node, serving, webhook

from remediation import (
    DecisionLog,
    DecisionNotFound,
    Notice,
    NotPendingApproval,
    Outcome,
    RemediationEngine,
    parse_remediation_policy,
)

POLICY = parse_remediation_policy("""
version: inferops/v1
policies:
  - name: drain-with-approval
    match: {alertname: NodeHighErrorRate}
    mode: approval
    steps:
      - notify: {receiver: oncall, message: "node error rate high; approve the drain"}
      - drain
  - name: shift-traffic
    match: {alertname: NodeHighLatency}
    steps:
      - reroute: {weight: 0}
      - notify: {receiver: oncall}
      - cycle
""")


def engine_with(fleet: InMemoryFleet, log: DecisionLog, clock: SetClock,
                notices: list[Notice], **options: Any) -> RemediationEngine:
    return RemediationEngine(fleet, log, POLICY, clock=clock, notify=notices.append,
                             cooldown_s=0.0, verify_timeout_s=0.5, **options)


def test_an_approval_policy_stores_a_pending_decision_and_approval_acts(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    notices: list[Notice] = []
    engine = engine_with(fleet, log, clock, notices)
    notify, pending = engine.handle_notification(
        webhook(alert("NodeHighErrorRate", node="node-1", fingerprint="e1")))

    assert (notify.action, notify.outcome, notify.reason, notify.params) == (
        "notify", Outcome.SUCCEEDED, "node error rate high; approve the drain (sent)",
        {"receiver": "oncall"})
    assert (pending.action, pending.outcome, pending.finished_at_s, pending.reason) == (
        "drain", Outcome.PENDING_APPROVAL, None,
        "alert NodeHighErrorRate fired for node-1 (policy drain-with-approval): waiting for "
        "approval to drain node-1 (now serving, healthy); every guard passed")
    assert fleet.calls == []
    assert log.recent(outcome="pending_approval") == [pending]

    clock.now_s = 1030.0
    approved = engine.approve(pending.id, actor="api:alice")

    assert (approved.id, approved.outcome, approved.approved_by, approved.actor) == (
        pending.id, Outcome.SUCCEEDED, "api:alice", "policy:drain-with-approval")
    assert approved.reason == (
        f"{pending.reason}; approved by api:alice: node-1 is now drained")
    assert (approved.started_at_s, approved.finished_at_s) == (1000.0, 1030.0)
    assert fleet.calls == [("drain", "node-1")]
    assert notices == [Notice("notify", "oncall", "node error rate high; approve the drain",
                              "node-1", pending.incident_id)]
    with pytest.raises(NotPendingApproval) as raised:
        engine.approve(pending.id, actor="api:alice")
    assert str(raised.value) == (
        f"decision {pending.id} is not pending approval (its outcome is succeeded)")


def test_approval_asks_the_guards_again(log: DecisionLog, clock: SetClock) -> None:
    fleet = InMemoryFleet([serving("node-0"), serving("node-1"), serving("node-2")])
    engine = engine_with(fleet, log, clock, [])
    *_, pending = engine.handle_notification(
        webhook(alert("NodeHighErrorRate", node="node-1", fingerprint="e1")))
    fleet.states["node-0"] = node("node-0", "down", healthy=False)
    fleet.states["node-2"] = node("node-2", "drained")

    refused = engine.approve(pending.id, actor="api:alice")

    assert (refused.outcome, refused.guard, refused.approved_by) == (
        Outcome.REFUSED, "disruption-budget", "api:alice")
    assert refused.reason.endswith(
        "approved by api:alice: draining node-1 would leave 0 nodes serving and healthy "
        "(none); the disruption budget needs at least 1")
    assert fleet.calls == []


def test_deny_records_who_refused_and_why(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_with(fleet, log, clock, [])
    *_, pending = engine.handle_notification(
        webhook(alert("NodeHighErrorRate", node="node-1", fingerprint="e1")))
    clock.now_s = 1010.0

    denied = engine.deny(pending.id, actor="cli:bob", reason="a client bug, not the node")

    assert (denied.outcome, denied.finished_at_s, denied.reason) == (
        Outcome.DENIED, 1010.0,
        f"{pending.reason}; denied by cli:bob: a client bug, not the node")
    assert fleet.calls == []
    with pytest.raises(DecisionNotFound) as missing:
        engine.deny(999, actor="cli:bob", reason="")
    assert str(missing.value) == "no remediation decision with id 999"


def test_steps_run_in_order_with_their_parameters(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    notices: list[Notice] = []
    engine = engine_with(fleet, log, clock, notices)
    decisions = engine.handle_notification(webhook(
        alert("NodeHighLatency", node="node-2", fingerprint="l2")))

    assert [(d.action, d.outcome, d.params) for d in decisions] == [
        ("reroute", Outcome.SUCCEEDED, {"weight": "0"}),
        ("notify", Outcome.SUCCEEDED, {"receiver": "oncall"}),
        ("cycle", Outcome.SUCCEEDED, {}),
    ]
    assert decisions[0].reason == (
        "alert NodeHighLatency fired for node-2 (policy shift-traffic): routing weight of "
        "node-2 set to 0")
    assert notices[0].message == (
        "alert NodeHighLatency fired for node-2 (policy shift-traffic): always firing test alert")
    assert fleet.weights == {"node-2": 0.0}
    assert fleet.calls == [("weight=0", "node-2"), ("cycle", "node-2")]
    assert len({d.incident_id for d in decisions}) == 1


def test_a_refused_step_stops_the_steps_after_it(log: DecisionLog, clock: SetClock) -> None:
    fleet = InMemoryFleet([serving("node-2")])  # rerouting the only node away is refused
    engine = engine_with(fleet, log, clock, [])
    decisions = engine.handle_notification(webhook(
        alert("NodeHighLatency", node="node-2", fingerprint="l2")))
    assert [(d.action, d.outcome, d.guard) for d in decisions] == [
        ("reroute", Outcome.REFUSED, "disruption-budget")]
    assert fleet.calls == []
