"""A control plane killed mid-action neither loses nor repeats the action after a restart.

The "kill" is the state a SIGKILL leaves: a decision stored as started (failed, no finish
time) by one engine; a new engine over the same database is the restarted control plane.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from remediation_doubles import EXAMPLE_POLICY, InMemoryFleet, SetClock, node, serving

from remediation import (
    DecisionLog,
    GuardLimits,
    Outcome,
    RemediationEngine,
    load_remediation_policy,
)

ACTOR = "policy:drain-unhealthy-node"
REASON = "alert NodeHighErrorRate fired for node-1 (policy drain-unhealthy-node)"


def restarted_engine(fleet: InMemoryFleet, log: DecisionLog, clock: SetClock) -> RemediationEngine:
    return RemediationEngine(
        fleet, log, load_remediation_policy(EXAMPLE_POLICY), clock=clock, cooldown_s=300.0,
        verify_timeout_s=1.0, limits=GuardLimits(max_unavailable="100%", breaker_max_share=1.0),
    )


@pytest.fixture
def log(tmp_path: Path) -> DecisionLog:
    return DecisionLog(sa.create_engine(f"sqlite:///{tmp_path / 'decisions.db'}"))


def killed_mid_drain(log: DecisionLog) -> int:
    """What the killed process left: the drain of node-1 started at t=1000, never finished."""
    return log.record(
        action="drain", node="node-1", outcome=Outcome.FAILED, actor=ACTOR,
        reason=f"{REASON}: drain started; the engine stopped before it knew the outcome",
        started_at_s=1000.0, finished_at_s=None, alertname="NodeHighErrorRate",
        alert_fingerprint="f1",
    ).id


def test_a_drain_the_fleet_never_saw_is_started_again_once(log: DecisionLog) -> None:
    interrupted = killed_mid_drain(log)
    fleet = InMemoryFleet()
    clock = SetClock(1003.0)

    settled = restarted_engine(fleet, log, clock).resume_interrupted()

    assert [(d.id, d.action, d.node, d.outcome) for d in settled] == [
        (interrupted, "drain", "node-1", Outcome.INTERRUPTED),
        (interrupted + 1, "drain", "node-1", Outcome.SUCCEEDED),
    ]
    assert settled[0].reason == (
        f"{REASON}; the control plane stopped mid-action and the fleet shows no result"
    )
    assert settled[1].reason.startswith(
        f"resuming decision {interrupted} (interrupted by a restart): "
    )
    assert settled[1].actor == ACTOR
    assert fleet.calls == [("drain", "node-1")]
    assert fleet.status("node-1") == "drained"
    # Nothing is left unfinished, so a second restart does nothing at all.
    assert restarted_engine(fleet, log, clock).resume_interrupted() == []
    assert fleet.calls == [("drain", "node-1")]


def test_a_drain_that_took_effect_before_the_kill_is_recorded_done_not_repeated(
    log: DecisionLog,
) -> None:
    interrupted = killed_mid_drain(log)
    fleet = InMemoryFleet([serving("node-0"), node("node-1", "drained"), serving("node-2")])

    settled = restarted_engine(fleet, log, SetClock(1003.0)).resume_interrupted()

    assert [(d.id, d.outcome, d.finished_at_s) for d in settled] == [
        (interrupted, Outcome.SUCCEEDED, 1003.0)
    ]
    assert settled[0].reason == (
        f"{REASON}; found done after the control plane restarted (node-1 is drained)"
    )
    assert fleet.calls == []


def test_the_interrupted_decision_does_not_hold_the_cooldown_against_its_own_restart(
    log: DecisionLog,
) -> None:
    killed_mid_drain(log)
    fleet = InMemoryFleet()
    # Two seconds after the kill: well inside the 300 s cooldown of a drain that acted.
    settled = restarted_engine(fleet, log, SetClock(1002.0)).resume_interrupted()

    assert [d.outcome for d in settled] == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
    assert [d.guard for d in settled] == [None, None]


def test_a_pending_approval_is_not_mistaken_for_an_interrupted_action(log: DecisionLog) -> None:
    log.record(
        action="drain", node="node-1", outcome=Outcome.PENDING_APPROVAL, actor=ACTOR,
        reason=f"{REASON}: waiting for approval", started_at_s=1000.0, finished_at_s=None,
    )
    fleet = InMemoryFleet()

    assert restarted_engine(fleet, log, SetClock(1003.0)).resume_interrupted() == []
    assert fleet.calls == []
