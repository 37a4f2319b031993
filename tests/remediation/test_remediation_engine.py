"""The remediation engine over a real SQLite decision log and an in-memory fleet: alerts and
people in, guarded and verified actions out, every decision stored with its reason."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from remediation_doubles import (
    EXAMPLE_POLICY,
    FailingFleet,
    InMemoryFleet,
    SetClock,
    StuckFleet,
    UnreadableFleet,
    alert,
    node,
    serving,
    webhook,
)

from remediation import (
    Decision,
    DecisionLog,
    FleetDriver,
    GuardLimits,
    NodeState,
    Outcome,
    PolicyRule,
    RemediationEngine,
    RemediationError,
    RemediationPolicy,
    UnknownNodeError,
    load_remediation_policy,
)

POLICY = load_remediation_policy(EXAMPLE_POLICY)
ACTOR = "policy:drain-unhealthy-node"
FINGERPRINT = "8e9b249c8f3b53af"


def engine_over(
    fleet: FleetDriver, log: DecisionLog, clock: SetClock, **options: Any
) -> RemediationEngine:
    options.setdefault("verify_timeout_s", 1.0)
    options.setdefault("cooldown_s", 300.0)
    # These tests are about the node guards; the fleet-wide ones are told to stand aside.
    options.setdefault("limits", GuardLimits(max_unavailable="100%", breaker_max_share=1.0))
    return RemediationEngine(fleet, log, options.pop("policy", POLICY), clock=clock, **options)


def bare(decisions: list[Decision]) -> list[Decision]:
    """Decisions without the alert evidence and incident they carry (tested on their own in
    test_remediation_incidents.py), so these tests read as the decisions a person sees."""
    return [replace(decision, evidence="", incident_id=None) for decision in decisions]


def decided(
    action: str, target: str, outcome: Outcome, reason: str, *, id: int = 1,
    guard: str | None = None, actor: str = ACTOR, alertname: str | None = None,
    fingerprint: str | None = FINGERPRINT, at_s: float = 1000.0,
) -> Decision:
    """The decision a test expects, every field spelled out."""
    return Decision(
        id=id, action=action, node=target, outcome=outcome, reason=reason, guard=guard,
        actor=actor, alertname=alertname, alert_fingerprint=fingerprint, started_at_s=at_s,
        finished_at_s=at_s,
    )


# --- alerts in, decisions out ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "body", "decisions", "statuses"),
    [
        (
            None,
            webhook(alert("NodeHighErrorRate", node="node-1")),
            [decided("drain", "node-1", Outcome.SUCCEEDED,
                     "alert NodeHighErrorRate fired for node-1 (policy drain-unhealthy-node): "
                     "node-1 is now drained", alertname="NodeHighErrorRate")],
            ["serving", "drained", "serving"],
        ),
        (
            None,
            webhook(alert("NodeHighErrorRate", node="node-1", status="resolved"),
                    status="resolved"),
            [],
            ["serving", "serving", "serving"],
        ),
        (
            None,
            webhook(alert("AlwaysFiring", node="node-1")),
            [],
            ["serving", "serving", "serving"],
        ),
        (
            None,
            webhook(alert("NodeDown", instance="10.0.0.7:8001")),
            [decided("drain", "", Outcome.REFUSED,
                     "alert NodeDown matched policy drain-unhealthy-node but has no 'node' "
                     "label naming the node", guard="alert-without-node", alertname="NodeDown")],
            ["serving", "serving", "serving"],
        ),
        (
            None,
            webhook(alert("NodeDown", node="node-9")),
            [decided("drain", "node-9", Outcome.REFUSED,
                     "alert NodeDown fired for node-9 (policy drain-unhealthy-node): "
                     "unknown node 'node-9'; known: node-0, node-1, node-2",
                     guard="unknown-node", alertname="NodeDown")],
            ["serving", "serving", "serving"],
        ),
        (
            [serving("node-0"), node("node-1", "drained"), serving("node-2")],
            webhook(alert("GpuXidError", node="node-1")),
            [decided("drain", "node-1", Outcome.SKIPPED,
                     "alert GpuXidError fired for node-1 (policy drain-unhealthy-node): "
                     "node-1 is already drained; nothing to do", alertname="GpuXidError")],
            ["serving", "drained", "serving"],
        ),
        (
            [node("node-0", "down", healthy=False), serving("node-1"), node("node-2", "drained")],
            webhook(alert("NodeHighLatency", node="node-1")),
            [decided("drain", "node-1", Outcome.REFUSED,
                     "alert NodeHighLatency fired for node-1 (policy drain-unhealthy-node): "
                     "draining node-1 would leave 0 nodes serving and healthy (none); the "
                     "disruption budget needs at least 1",
                     guard="disruption-budget", alertname="NodeHighLatency")],
            ["down", "serving", "drained"],
        ),
        (
            None,
            webhook(alert("NodeDown", node="node-0", fingerprint="a1"),
                    alert("NodeDown", node="node-1", fingerprint="b2"),
                    alert("NodeDown", node="node-2", fingerprint="c3")),
            [
                decided("drain", "node-0", Outcome.SUCCEEDED,
                        "alert NodeDown fired for node-0 (policy drain-unhealthy-node): "
                        "node-0 is now drained", alertname="NodeDown", fingerprint="a1"),
                decided("drain", "node-1", Outcome.SUCCEEDED,
                        "alert NodeDown fired for node-1 (policy drain-unhealthy-node): "
                        "node-1 is now drained", id=2, alertname="NodeDown", fingerprint="b2"),
                decided("drain", "node-2", Outcome.REFUSED,
                        "alert NodeDown fired for node-2 (policy drain-unhealthy-node): "
                        "draining node-2 would leave 0 nodes serving and healthy (none); the "
                        "disruption budget needs at least 1", id=3,
                        guard="disruption-budget", alertname="NodeDown", fingerprint="c3"),
            ],
            ["drained", "drained", "serving"],
        ),
        (
            None,
            webhook(alert("NodeDown", node="node-2", fingerprint=None),
                    alert("NodeDown", node="node-0", status="resolved")),
            [decided("drain", "node-2", Outcome.SUCCEEDED,
                     "alert NodeDown fired for node-2 (policy drain-unhealthy-node): "
                     "node-2 is now drained", alertname="NodeDown", fingerprint=None)],
            ["serving", "serving", "drained"],
        ),
    ],
    ids=[
        "a firing alert for a node drains it and verifies the drain",
        "a resolved alert yields no decision",
        "an alert no policy matches yields no decision",
        "an alert without a node label is refused by its own guard",
        "an alert for an unknown node is refused, not raised",
        "an alert for an already drained node is skipped",
        "an alert that would drain the last healthy node is refused",
        "one body with three alerts drains two nodes and keeps the last one serving",
        "only firing alerts act; a missing fingerprint is stored as None",
    ],
)
def test_a_notification_turns_firing_alerts_into_guarded_decisions(
    states: list[NodeState] | None,
    body: dict[str, Any],
    decisions: list[Decision],
    statuses: list[str],
    log: DecisionLog,
    clock: SetClock,
) -> None:
    fleet = InMemoryFleet(states)
    engine = engine_over(fleet, log, clock)

    assert bare(engine.handle_notification(body)) == decisions
    assert [fleet.status(name) for name in ("node-0", "node-1", "node-2")] == statuses
    assert bare(engine.history()) == decisions[::-1]


def test_the_recorded_alertmanager_body_is_read_as_is(log: DecisionLog, clock: SetClock) -> None:
    # The fixture fires AlwaysFiring{severity="test"}; a policy on that alert with a node
    # label named "severity" is silly but proves every field is read from the real shape.
    policy = RemediationPolicy(
        rules=(PolicyRule("always", {"alertname": "AlwaysFiring"}, {}, "drain",
                          node_label="severity"),)
    )
    fleet = InMemoryFleet([serving("test"), serving("node-1")])
    engine = engine_over(fleet, log, clock, policy=policy)

    assert bare(engine.handle_notification(webhook(alert("AlwaysFiring", severity="test")))) == [
        decided("drain", "test", Outcome.SUCCEEDED,
                "alert AlwaysFiring fired for test (policy always): test is now drained",
                actor="policy:always", alertname="AlwaysFiring")
    ]


def test_a_policy_rule_in_dry_run_decides_but_does_not_act(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    policy = RemediationPolicy(
        rules=(PolicyRule("watch", {"alertname": "NodeDown"}, {}, "cycle", dry_run=True),)
    )
    engine = engine_over(fleet, log, clock, policy=policy)

    assert bare(engine.handle_notification(webhook(alert("NodeDown", node="node-0")))) == [
        decided("cycle", "node-0", Outcome.DRY_RUN,
                "alert NodeDown fired for node-0 (policy watch): dry run: would cycle node-0 "
                "(now serving, healthy); every guard passed",
                actor="policy:watch", alertname="NodeDown")
    ]
    assert fleet.calls == []


def test_the_first_matching_rule_decides(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    policy = RemediationPolicy(rules=(
        PolicyRule("cycle-on-xid", {"alertname": "GpuXidError"}, {}, "cycle"),
        PolicyRule("drain-anything", {}, {"alertname": ".+"}, "drain"),
    ))
    engine = engine_over(fleet, log, clock, policy=policy)

    decisions = engine.handle_notification(
        webhook(alert("GpuXidError", node="node-0"), alert("NodeDown", node="node-1"))
    )

    assert [(d.action, d.node, d.actor, d.outcome) for d in decisions] == [
        ("cycle", "node-0", "policy:cycle-on-xid", Outcome.SUCCEEDED),
        ("drain", "node-1", "policy:drain-anything", Outcome.SUCCEEDED),
    ]
    assert fleet.calls == [("cycle", "node-0"), ("drain", "node-1")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "the notification has no 'alerts' list (expected an Alertmanager version-4 "
             "webhook body)"),
        ({"alerts": {"labels": {}}}, "the notification has no 'alerts' list (expected an "
                                     "Alertmanager version-4 webhook body)"),
    ],
    ids=["no alerts at all", "alerts that are not a list"],
)
def test_a_body_that_is_not_an_alertmanager_notification_is_an_error(
    body: dict[str, Any], message: str, fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    with pytest.raises(RemediationError) as raised:
        engine_over(fleet, log, clock).handle_notification(body)
    assert str(raised.value) == message
    assert log.recent() == []


def test_alerts_without_labels_are_skipped_with_a_warning(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, caplog: pytest.LogCaptureFixture
) -> None:
    body = webhook(alert("NodeDown", node="node-1"))
    body["alerts"] = ["not an alert", {"status": "firing"}, *body["alerts"]]

    with caplog.at_level(logging.WARNING, logger="remediation"):
        decisions = engine_over(fleet, log, clock).handle_notification(body)

    assert [(d.node, d.outcome) for d in decisions] == [("node-1", Outcome.SUCCEEDED)]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "ignoring alerts[0] of a notification: it has no labels",
        "ignoring alerts[1] of a notification: it has no labels",
    ]


# --- a person asks: execute -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "target", "states", "outcome", "result", "status"),
    [
        ("drain", "node-1", None, Outcome.SUCCEEDED, "node-1 is now drained", "drained"),
        ("undrain", "node-1", [serving("node-0"), node("node-1", "drained")],
         Outcome.SUCCEEDED, "node-1 is now serving and healthy", "serving"),
        ("cycle", "node-1", [serving("node-0"), node("node-1", "down", healthy=False)],
         Outcome.SUCCEEDED, "node-1 was restarted and is now serving and healthy", "serving"),
        ("undrain", "node-1", None, Outcome.SKIPPED,
         "node-1 is already serving; nothing to do", "serving"),
        ("drain", "node-1", [serving("node-0"), node("node-1", "draining")], Outcome.SKIPPED,
         "node-1 is already draining; nothing to do", "draining"),
    ],
    ids=[
        "drain a serving node",
        "undrain a drained node",
        "cycle a down node",
        "undrain a serving node: nothing to do",
        "drain a draining node: nothing to do",
    ],
)
def test_execute_acts_verifies_and_records(
    action: str, target: str, states: list[NodeState] | None, outcome: Outcome, result: str,
    status: str, log: DecisionLog, clock: SetClock,
) -> None:
    fleet = InMemoryFleet(states)
    engine = engine_over(fleet, log, clock)

    decision = engine.execute(action, target, actor="cli:oncall", reason=f"manual {action}")

    assert decision == decided(action, target, outcome, f"manual {action}: {result}",
                               actor="cli:oncall", fingerprint=None)
    assert fleet.status(target) == status
    assert log.get(decision.id) == decision


def test_execute_carries_the_alert_it_acts_for(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    decision = engine_over(fleet, log, clock).execute(
        "drain", "node-2", actor="control-plane", reason="page", alertname="NodeDown",
        alert_fingerprint="ff00",
    )
    assert (decision.alertname, decision.alert_fingerprint) == ("NodeDown", "ff00")


def test_with_min_healthy_nodes_2_the_second_drain_of_three_is_refused(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_over(fleet, log, clock, min_healthy_nodes=2)

    first = engine.execute("drain", "node-0", actor="cli:oncall", reason="maintenance")
    second = engine.execute("drain", "node-1", actor="cli:oncall", reason="maintenance")

    assert first.outcome == Outcome.SUCCEEDED
    assert second == decided(
        "drain", "node-1", Outcome.REFUSED,
        "maintenance: draining node-1 would leave 1 node serving and healthy (node-2); the "
        "disruption budget needs at least 2",
        id=2, guard="disruption-budget", actor="cli:oncall", fingerprint=None,
    )
    assert fleet.calls == [("drain", "node-0")]


def test_an_unknown_node_is_recorded_as_refused_then_raised(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_over(fleet, log, clock)

    with pytest.raises(UnknownNodeError) as raised:
        engine.execute("drain", "node-9", actor="cli:oncall", reason="manual drain")

    assert str(raised.value) == "unknown node 'node-9'; known: node-0, node-1, node-2"
    assert (raised.value.node, raised.value.known) == ("node-9", ("node-0", "node-1", "node-2"))
    assert log.recent() == [
        decided("drain", "node-9", Outcome.REFUSED,
                "manual drain: unknown node 'node-9'; known: node-0, node-1, node-2",
                guard="unknown-node", actor="cli:oncall", fingerprint=None)
    ]
    assert fleet.calls == []


def test_an_unknown_action_is_an_error_and_not_recorded(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    with pytest.raises(RemediationError) as raised:
        engine_over(fleet, log, clock).execute("reboot", "node-1", actor="a", reason="r")
    assert str(raised.value) == (
        "unknown action 'reboot'; expected one of: drain, undrain, cycle, reroute, profile")
    assert log.recent() == []


# --- failures: the driver errs, the fleet never gets there, the fleet cannot be read ---------


def test_a_driver_error_is_recorded_as_failed(log: DecisionLog, clock: SetClock) -> None:
    fleet = FailingFleet()
    decision = engine_over(fleet, log, clock).execute(
        "drain", "node-1", actor="cli:oncall", reason="manual drain"
    )
    assert decision == decided(
        "drain", "node-1", Outcome.FAILED,
        "manual drain: drain failed: the fleet router at http://router.test answered "
        "POST /admin/nodes/node-1/drain with 500: node process did not answer",
        actor="cli:oncall", fingerprint=None,
    )
    assert fleet.calls == [("drain", "node-1")]


def test_an_unexpected_driver_exception_is_recorded_as_failed_and_logged(
    log: DecisionLog, clock: SetClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(InMemoryFleet):
        def cycle(self, node: str) -> None:
            raise RuntimeError("driver bug")

    with caplog.at_level(logging.ERROR, logger="remediation"):
        decision = engine_over(Broken(), log, clock).execute(
            "cycle", "node-1", actor="cli:oncall", reason="manual cycle"
        )

    assert (decision.outcome, decision.reason) == (
        Outcome.FAILED, "manual cycle: cycle failed: driver bug"
    )
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "the fleet driver raised while trying to cycle node-1"
    ]


def test_an_action_the_fleet_never_shows_fails_verification_after_the_timeout(
    log: DecisionLog, clock: SetClock
) -> None:
    fleet = StuckFleet()
    decision = engine_over(fleet, log, clock, verify_timeout_s=0.3).execute(
        "drain", "node-1", actor="cli:oncall", reason="manual drain"
    )
    assert decision == decided(
        "drain", "node-1", Outcome.FAILED,
        "manual drain: the fleet accepted the drain, but node-1 did not become draining or "
        "drained within 0.3 s (last seen: serving, healthy)",
        actor="cli:oncall", fingerprint=None,
    )
    assert fleet.calls == [("drain", "node-1")]


def test_a_cycle_the_fleet_never_shows_names_what_it_waited_for(
    log: DecisionLog, clock: SetClock
) -> None:
    fleet = StuckFleet([serving("node-0"), node("node-1", "down", healthy=False)])
    decision = engine_over(fleet, log, clock, verify_timeout_s=0).execute(
        "cycle", "node-1", actor="cli:oncall", reason="manual cycle"
    )
    assert (decision.outcome, decision.reason) == (
        Outcome.FAILED,
        "manual cycle: the fleet accepted the cycle, but node-1 did not become serving and "
        "healthy within 0 s (last seen: down, unhealthy); node-1 is kept drained and the "
        "failure was escalated",
    )
    assert fleet.calls == [("cycle", "node-1"), ("drain", "node-1")]


def test_a_fleet_that_cannot_be_read_fails_the_decision_without_acting(
    log: DecisionLog, clock: SetClock
) -> None:
    fleet = UnreadableFleet()
    decision = engine_over(fleet, log, clock).execute(
        "drain", "node-1", actor="cli:oncall", reason="manual drain"
    )
    assert decision == decided(
        "drain", "node-1", Outcome.FAILED,
        "manual drain: could not read the fleet's nodes: cannot reach the fleet router at "
        "http://router.test",
        actor="cli:oncall", fingerprint=None,
    )
    assert fleet.calls == []


def test_a_running_action_is_stored_as_failed_until_verified(
    log: DecisionLog, clock: SetClock
) -> None:
    seen: list[Decision] = []

    class Watching(InMemoryFleet):
        def drain(self, node: str) -> None:
            seen.extend(log.recent())
            super().drain(node)

    decision = engine_over(Watching(), log, clock).execute(
        "drain", "node-1", actor="cli:oncall", reason="manual drain"
    )

    assert seen == [
        Decision(
            id=1, action="drain", node="node-1", outcome=Outcome.FAILED,
            reason="manual drain: drain started; the engine stopped before it knew the outcome",
            guard=None, actor="cli:oncall", alertname=None, alert_fingerprint=None,
            started_at_s=1000.0, finished_at_s=None,
        )
    ]
    assert (decision.id, decision.outcome) == (1, Outcome.SUCCEEDED)


# --- cooldowns and dry runs -----------------------------------------------------------------


def test_a_repeat_within_the_cooldown_is_refused_and_after_it_goes_ahead(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_over(fleet, log, clock, cooldown_s=300.0)
    body = webhook(alert("NodeDown", node="node-1"))

    first = engine.handle_notification(body)
    clock.now_s = 1010.0
    engine.execute("undrain", "node-1", actor="cli:oncall", reason="back in")
    clock.now_s = 1100.0
    second = engine.handle_notification(body)
    clock.now_s = 1300.0
    third = engine.handle_notification(body)

    assert [d.outcome for d in first] == [Outcome.SUCCEEDED]
    assert bare(second) == [
        decided("drain", "node-1", Outcome.REFUSED,
                "alert NodeDown fired for node-1 (policy drain-unhealthy-node): drain of "
                "node-1 already ran 100 s ago (decision 1, succeeded); the cooldown is 300 s",
                id=3, guard="cooldown", alertname="NodeDown", at_s=1100.0)
    ]
    assert [(d.id, d.outcome, d.started_at_s) for d in third] == [
        (4, Outcome.SUCCEEDED, 1300.0)
    ]
    assert fleet.calls == [("drain", "node-1"), ("undrain", "node-1"), ("drain", "node-1")]


def test_a_failed_action_starts_the_cooldown_too(log: DecisionLog, clock: SetClock) -> None:
    engine = engine_over(FailingFleet(), log, clock, cooldown_s=60.0)
    engine.execute("cycle", "node-1", actor="cli:oncall", reason="manual cycle")
    clock.now_s = 1030.0

    again = engine.execute("cycle", "node-1", actor="cli:oncall", reason="manual cycle")

    assert (again.outcome, again.guard, again.reason) == (
        Outcome.REFUSED, "cooldown",
        "manual cycle: cycle of node-1 already ran 30 s ago (decision 1, failed); "
        "the cooldown is 60 s",
    )


def test_refused_and_skipped_decisions_do_not_start_a_cooldown(
    log: DecisionLog, clock: SetClock
) -> None:
    fleet = InMemoryFleet([serving("node-0"), node("node-1", "drained")])
    engine = engine_over(fleet, log, clock)

    refused = engine.execute("drain", "node-0", actor="a", reason="r")
    skipped = engine.execute("drain", "node-1", actor="a", reason="r")
    fleet.states["node-1"] = serving("node-1")
    clock.now_s = 1001.0
    acted = engine.execute("drain", "node-0", actor="a", reason="r")

    assert [d.outcome for d in (refused, skipped, acted)] == [
        Outcome.REFUSED, Outcome.SKIPPED, Outcome.SUCCEEDED
    ]


def test_the_cooldown_holds_across_engines_sharing_one_database(
    fleet: InMemoryFleet, database: sa.Engine, clock: SetClock
) -> None:
    engine_over(fleet, DecisionLog(database), clock).execute(
        "drain", "node-1", actor="control-plane", reason="r"
    )
    fleet.states["node-1"] = serving("node-1")
    clock.now_s = 1005.0

    other = engine_over(fleet, DecisionLog(database), clock)
    decision = other.execute("drain", "node-1", actor="cli:oncall", reason="r")

    assert (decision.outcome, decision.guard) == (Outcome.REFUSED, "cooldown")


def test_an_engine_wide_dry_run_records_but_never_acts_and_cannot_be_overridden(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_over(fleet, log, clock, dry_run=True)

    first = engine.execute("drain", "node-1", actor="cli:oncall", reason="try", dry_run=False)
    clock.now_s = 1005.0
    second = engine.execute("drain", "node-1", actor="cli:oncall", reason="try")

    assert first == decided(
        "drain", "node-1", Outcome.DRY_RUN,
        "try: dry run: would drain node-1 (now serving, healthy); every guard passed",
        actor="cli:oncall", fingerprint=None,
    )
    assert second == decided(
        "drain", "node-1", Outcome.REFUSED,
        "try: drain of node-1 already ran 5 s ago (decision 1, dry_run); the cooldown is 300 s",
        id=2, guard="cooldown", actor="cli:oncall", fingerprint=None, at_s=1005.0,
    )
    assert fleet.calls == []


def test_a_dry_run_still_applies_every_guard(log: DecisionLog, clock: SetClock) -> None:
    fleet = InMemoryFleet([serving("node-0"), node("node-1", "drained")])
    decision = engine_over(fleet, log, clock, dry_run=True).execute(
        "drain", "node-0", actor="a", reason="r"
    )
    assert (decision.outcome, decision.guard) == (Outcome.REFUSED, "disruption-budget")


def test_a_dry_run_does_not_hold_back_a_real_action(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_over(fleet, log, clock)

    rehearsal = engine.execute("drain", "node-1", actor="cli:oncall", reason="r", dry_run=True)
    real = engine.execute("drain", "node-1", actor="cli:oncall", reason="r")

    assert [rehearsal.outcome, real.outcome] == [Outcome.DRY_RUN, Outcome.SUCCEEDED]
    assert fleet.calls == [("drain", "node-1")]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("cooldown_s", -1.0, "cooldown_s must be >= 0, got -1.0"),
        ("min_healthy_nodes", -1, "min_healthy_nodes must be >= 0, got -1"),
        ("verify_timeout_s", -0.5, "verify_timeout_s must be >= 0, got -0.5"),
    ],
    ids=["a negative cooldown", "a negative disruption budget", "a negative verify timeout"],
)
def test_an_engine_with_negative_limits_is_refused(
    option: str, value: float, message: str, fleet: InMemoryFleet, log: DecisionLog
) -> None:
    with pytest.raises(ValueError) as raised:
        RemediationEngine(fleet, log, POLICY, **{option: value})  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_every_decision_is_logged_with_its_outcome(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = engine_over(fleet, log, clock)
    with caplog.at_level(logging.INFO, logger="remediation"):
        engine.execute("drain", "node-1", actor="cli:oncall", reason="r")
        engine.execute("drain", "node-1", actor="cli:oncall", reason="r")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "remediation decision 1: drain node-1 by cli:oncall -> started: r"),
        ("INFO", "remediation decision 1: drain node-1 by cli:oncall -> succeeded: r: node-1 "
                 "is now drained"),
        ("INFO", "remediation decision 2: drain node-1 by cli:oncall -> skipped: r: node-1 is "
                 "already drained; nothing to do"),
    ]


def test_fleet_driver_is_a_runtime_checkable_protocol() -> None:
    assert isinstance(InMemoryFleet(), FleetDriver)
    assert not isinstance(object(), FleetDriver)


def test_the_alerting_packages_own_notification_drives_the_engine(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    alerting = pytest.importorskip("alerting")
    firing = alerting.Alert(
        fingerprint="3f2a", labels={"alertname": "NodeHighErrorRate", "node": "node-2"},
        annotations={"summary": "node-2 answers 5xx"}, state=alerting.AlertState.FIRING,
        active_at_s=990.0, fired_at_s=995.0,
    )
    resolved = alerting.Alert(
        fingerprint="9c1d", labels={"alertname": "NodeDown", "node": "node-0"}, annotations={},
        state=alerting.AlertState.RESOLVED, active_at_s=900.0, fired_at_s=910.0,
        resolved_at_s=980.0,
    )
    body = alerting.alertmanager_payload(
        [firing, resolved], receiver="remediation", group_labels={"alertname": "x"},
        external_url="http://127.0.0.1:8050",
    )

    assert bare(engine_over(fleet, log, clock).handle_notification(body)) == [
        decided("drain", "node-2", Outcome.SUCCEEDED,
                "alert NodeHighErrorRate fired for node-2 (policy drain-unhealthy-node): "
                "node-2 is now drained", alertname="NodeHighErrorRate", fingerprint="3f2a")
    ]
