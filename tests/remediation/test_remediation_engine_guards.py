"""The fleet-wide guards inside the engine: kill switch, circuit breaker (it opens, pages,
refuses, closes by itself, and never replays stale alerts), escalation ladder, flap detection
and stale scrape evidence read from a real `StoreSource` over a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from remediation_doubles import InMemoryFleet, SetClock, alert, node, serving, webhook

from collectors import SampleStore, ScrapedSample, StoreSource
from remediation import (
    DecisionLog,
    GuardLimits,
    Notice,
    Outcome,
    PolicyRule,
    PolicyStep,
    RemediationEngine,
    RemediationPolicy,
)

DRAIN_ON_NODE_DOWN = RemediationPolicy(rules=(
    PolicyRule("drain-down", {"alertname": "NodeDown"}, {}, "drain"),
    PolicyRule("cycle-xid", {"alertname": "GpuXidError"}, {}, steps=(PolicyStep("cycle"),)),
))


def firing(name: str, target: str, fingerprint: str, starts_at_s: float,
           status: str = "firing") -> dict[str, Any]:
    one = alert(name, node=target, fingerprint=fingerprint, status=status)
    one["startsAt"] = datetime.fromtimestamp(starts_at_s, UTC).isoformat().replace("+00:00", "Z")
    return one


def engine_with(fleet: InMemoryFleet, log: DecisionLog, clock: SetClock,
                notices: list[Notice] | None = None, **options: Any) -> RemediationEngine:
    options.setdefault("cooldown_s", 0.0)
    options.setdefault("verify_timeout_s", 0.5)
    return RemediationEngine(fleet, log, options.pop("policy", DRAIN_ON_NODE_DOWN), clock=clock,
                             notify=None if notices is None else notices.append, **options)


def outcomes(decisions: list[Any]) -> list[tuple[str, str, str, str | None]]:
    return [(d.action, d.node, str(d.outcome), d.guard) for d in decisions]


def test_a_paused_engine_refuses_every_alert_but_not_a_person_and_the_pause_survives(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_with(fleet, log, clock)
    switch = engine.pause(actor="cli:alice", reason="maintenance window")
    assert (switch.paused, switch.since_s, switch.actor, switch.reason) == (
        True, 1000.0, "cli:alice", "maintenance window")

    refused = engine.handle_notification(webhook(firing("NodeDown", "node-1", "a1", 990.0)))
    manual = engine.execute("drain", "node-2", actor="cli:bob", reason="by hand")
    restarted = engine_with(fleet, log, clock)  # a new process over the same database

    assert [(d.outcome, d.guard, d.reason) for d in refused] == [(
        Outcome.REFUSED, "kill-switch",
        "alert NodeDown fired for node-1 (policy drain-down): automation is paused by "
        "cli:alice (maintenance window); resume to act again")]
    assert manual.outcome == Outcome.SUCCEEDED
    assert restarted.kill_switch() == switch
    restarted.resume(actor="cli:alice")
    assert restarted.kill_switch().paused is False
    again = restarted.handle_notification(webhook(firing("NodeDown", "node-1", "a1", 990.0)))
    assert outcomes(again) == [("drain", "node-1", "succeeded", None)]


def test_the_circuit_breaker_opens_pages_closes_when_healthy_and_never_replays(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    notices: list[Notice] = []
    limits = GuardLimits(breaker_max_share=0.5, breaker_window_s=600.0,
                         breaker_close_after_s=300.0)
    engine = engine_with(fleet, log, clock, notices, limits=limits)

    first = engine.handle_notification(webhook(firing("NodeDown", "node-0", "a0", 995.0)))
    clock.now_s = 1010.0
    tripped = engine.handle_notification(webhook(firing("NodeDown", "node-1", "a1", 1005.0)))
    clock.now_s = 1020.0
    held = engine.handle_notification(webhook(firing("NodeDown", "node-2", "a2", 1015.0)))

    assert outcomes(first + tripped + held) == [
        ("drain", "node-0", "succeeded", None),
        ("drain", "node-1", "refused", "circuit-breaker"),
        ("drain", "node-2", "refused", "circuit-breaker"),
    ]
    why = ("remediating node-1 would make 2 of 3 nodes (node-0, node-1) remediated within the "
           "window, more than 50% of the pool")
    assert tripped[0].reason == (
        f"alert NodeDown fired for node-1 (policy drain-down): the circuit breaker opened: {why}")
    assert held[0].reason == (
        f"alert NodeDown fired for node-2 (policy drain-down): the circuit breaker is open: {why}")
    assert notices == [Notice("page", None, f"remediation circuit breaker opened: {why}", "",
                              None)]
    assert (engine.breaker().open, engine.breaker().opened_at_s) == (True, 1010.0)

    clock.now_s = 1100.0
    assert engine.tick().open is True  # node-1 and node-2 still have firing alerts
    engine.handle_notification(webhook(firing("NodeDown", "node-1", "a1", 1005.0, "resolved"),
                                       firing("NodeDown", "node-2", "a2", 1015.0, "resolved")))
    clock.now_s = 1399.0
    assert engine.tick().open is True  # healthy since 1100: 299 s of the 300 needed
    clock.now_s = 1400.0
    assert engine.breaker().open is True
    closed = engine.tick()
    assert (closed.open, closed.closed_at_s) == (False, 1400.0)

    # A notification about an alert that started while the breaker was open, delivered now,
    # is stale: with no metric source to confirm it still fires, it is not acted on.
    clock.now_s = 1410.0
    stale = engine.handle_notification(webhook(firing("NodeDown", "node-1", "a1b", 1015.0)))
    assert [(d.outcome, d.guard, d.reason) for d in stale] == [(
        Outcome.REFUSED, "stale-alert",
        "alert NodeDown fired for node-1 (policy drain-down): the alert fired while the "
        "circuit breaker was open and is not confirmed firing now; alerts from that time are "
        "not replayed")]
    # A fresh alert after the window acts again.
    clock.now_s = 1700.0
    fresh = engine.handle_notification(webhook(firing("NodeDown", "node-1", "a1c", 1690.0)))
    assert outcomes(fresh) == [("drain", "node-1", "succeeded", None)]
    assert fleet.calls == [("drain", "node-0"), ("drain", "node-1")]


def test_the_escalation_ladder_drains_a_node_cycled_too_often_and_flags_it(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    notices: list[Notice] = []
    engine = engine_with(fleet, log, clock, notices,
                         limits=GuardLimits(escalate_after_cycles=2, ladder_window_s=3600.0))
    decisions = []
    for index, at_s in enumerate((1000.0, 1600.0, 2200.0)):
        clock.now_s = at_s
        decisions += engine.handle_notification(
            webhook(firing("GpuXidError", "node-1", f"x{index}", at_s - 5)))

    ladder = ("escalation ladder: node-1 was cycled 2 times in the last 3600 s (limit 2); "
              "draining it instead")
    assert outcomes(decisions) == [
        ("cycle", "node-1", "succeeded", None),
        ("cycle", "node-1", "succeeded", None),
        ("drain", "node-1", "succeeded", None),
        ("escalate", "node-1", "succeeded", None),
    ]
    assert decisions[2].params == {"flag": "hardware-inspection"}
    assert decisions[2].reason == (
        f"alert GpuXidError fired for node-1 (policy cycle-xid); {ladder}: node-1 is now drained")
    assert notices == [Notice(
        "escalate", None, f"node-1 drained and flagged for hardware inspection: {ladder}",
        "node-1", decisions[2].incident_id)]
    assert fleet.calls == [("cycle", "node-1"), ("cycle", "node-1"), ("drain", "node-1")]


def test_an_alert_that_flaps_is_not_acted_on(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_with(fleet, log, clock,
                         limits=GuardLimits(flap_threshold=3, flap_window_s=600.0))
    seen = []
    for step in range(3):
        clock.now_s = 1000.0 + 60 * step
        engine.execute("undrain", "node-1", actor="cli:oncall", reason="put back")
        seen += engine.handle_notification(webhook(firing("NodeDown", "node-1", "f1", 990.0)))
        clock.now_s += 30
        engine.handle_notification(webhook(firing("NodeDown", "node-1", "f1", 990.0,
                                                  "resolved")))
    assert outcomes(seen) == [
        ("drain", "node-1", "succeeded", None),
        ("drain", "node-1", "succeeded", None),
        ("drain", "node-1", "refused", "flapping"),
    ]
    assert seen[2].reason == (
        "alert NodeDown fired for node-1 (policy drain-down): the alert fired 3 times in the "
        "last 600 s (flap threshold 3); fix the alert or the node by hand")


@pytest.mark.parametrize(
    ("up_samples", "state", "result"),
    [
        ([(990.0, 1.0), (995.0, 1.0), (1000.0, 1.0)], serving("node-1"),
         ("drain", "node-1", "succeeded", None)),
        ([(990.0, 1.0), (995.0, 0.0), (1000.0, 0.0)], serving("node-1"),
         ("drain", "node-1", "refused", "stale-evidence")),
        ([(900.0, 1.0)], serving("node-1"), ("drain", "node-1", "refused", "stale-evidence")),
        ([(995.0, 0.0), (1000.0, 0.0)], node("node-1", "down", healthy=False),
         ("drain", "node-1", "succeeded", None)),
        ([], serving("node-1"), ("drain", "node-1", "succeeded", None)),
    ],
    ids=["fresh scrapes of a healthy node: act", "the scrape fails but the node is fine: refuse",
         "the last scrape is 100 s old: refuse", "the node is really down: act",
         "no up series names the node: the guard cannot judge and stands aside"],
)
def test_evidence_from_a_broken_scrape_is_not_acted_on(
    up_samples: list[tuple[float, float]], state: Any, result: tuple[str, str, str, str | None],
    database: sa.Engine, log: DecisionLog, clock: SetClock,
) -> None:
    store = SampleStore(database)
    store.append([ScrapedSample("up", {"job": "nodes", "node": "node-1"}, value, at_s)
                  for at_s, value in up_samples])
    fleet = InMemoryFleet([serving("node-0"), state, serving("node-2")])
    engine = engine_with(fleet, log, clock, source=StoreSource(store),
                         limits=GuardLimits(stale_after_s=15.0))

    decisions = engine.handle_notification(webhook(firing("NodeDown", "node-1", "s1", 995.0)))
    assert outcomes(decisions) == [result]


def test_automation_stops_at_the_hourly_action_limit_but_a_person_does_not(
    fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    engine = engine_with(fleet, log, clock, limits=GuardLimits(max_actions_per_hour=2))
    engine.execute("drain", "node-0", actor="cli:oncall", reason="r")
    engine.execute("undrain", "node-0", actor="cli:oncall", reason="r")
    clock.now_s = 1010.0

    (refused,) = engine.handle_notification(webhook(firing("NodeDown", "node-1", "r1", 1005.0)))
    manual = engine.execute("drain", "node-1", actor="cli:oncall", reason="by hand")

    assert (refused.outcome, refused.guard, refused.reason) == (
        Outcome.REFUSED, "rate-limit",
        "alert NodeDown fired for node-1 (policy drain-down): 2 actions ran in the last hour "
        "(decisions 1, 2...); the limit is 2 per hour")
    assert manual.outcome == Outcome.SUCCEEDED
    clock.now_s = 4700.0  # an hour later the window is empty again
    (later,) = engine.handle_notification(webhook(firing("NodeDown", "node-2", "r2", 4695.0)))
    assert later.outcome == Outcome.SUCCEEDED


def test_an_alert_from_the_open_breaker_acts_when_the_source_shows_it_still_firing(
    database: sa.Engine, fleet: InMemoryFleet, log: DecisionLog, clock: SetClock
) -> None:
    store = SampleStore(database)
    store.append([ScrapedSample("up", {"job": "nodes", "node": "node-1"}, 1.0, at_s)
                  for at_s in (1990.0, 1995.0, 2000.0)])
    engine = engine_with(fleet, log, clock, source=StoreSource(store),
                         limits=GuardLimits(breaker_max_share=0.5, breaker_close_after_s=300.0))
    engine.handle_notification(webhook(firing("NodeDown", "node-0", "b0", 995.0)))
    clock.now_s = 1010.0
    engine.handle_notification(webhook(firing("NodeDown", "node-1", "b1", 1005.0)))
    clock.now_s = 1400.0
    engine.handle_notification(webhook(firing("NodeDown", "node-1", "b1", 1005.0, "resolved")))
    clock.now_s = 1700.0
    assert engine.tick().open is False
    clock.now_s = 2000.0
    # the generator URL of the test alert evaluates `vector(1)`: it still fires now
    (decision,) = engine.handle_notification(webhook(firing("NodeDown", "node-1", "b1b",
                                                            1020.0)))
    assert (decision.outcome, decision.guard) == (Outcome.SUCCEEDED, None)
