"""The fleet-wide guards as pure functions: every refusal sentence a person reads in the audit
trail, and the cases where each guard lets the action through."""

from __future__ import annotations

import pytest
from remediation_doubles import node, serving

from remediation import Decision, GuardLimits, NodeState, Outcome
from remediation._fleet_guards import (
    breaker_should_open,
    capacity,
    disruption_budget_share,
    flapping,
    max_unavailable_nodes,
    rate_limit,
    stale_evidence,
)
from remediation._guards import Refusal


def acted(decision_id: int, target: str, action: str = "drain") -> Decision:
    return Decision(id=decision_id, action=action, node=target, outcome=Outcome.SUCCEEDED,
                    reason="r", guard=None, actor="policy:p", alertname=None,
                    alert_fingerprint=None, started_at_s=1000.0, finished_at_s=1000.0)


def busy(name: str, in_flight: int, status: str = "serving", healthy: bool = True) -> NodeState:
    return NodeState(name, node(name, status).status, healthy=healthy, in_flight=in_flight)


THREE = [serving("node-0"), serving("node-1"), serving("node-2")]


@pytest.mark.parametrize(
    ("limit", "pool", "allowed"),
    [("2", 3, 2), ("0", 3, 0), ("34%", 3, 1), ("50%", 3, 1), ("50%", 2, 1), ("100%", 3, 3),
     ("33%", 3, 0), ("25%", 8, 2)],
)
def test_max_unavailable_reads_counts_and_rounds_percentages_down(
    limit: str, pool: int, allowed: int
) -> None:
    assert max_unavailable_nodes(limit, pool) == allowed


@pytest.mark.parametrize("limit", ["-1", "half", "150%", "", "1.5"])
def test_a_max_unavailable_that_is_neither_a_count_nor_a_percentage_is_refused(
    limit: str
) -> None:
    with pytest.raises(ValueError) as raised:
        max_unavailable_nodes(limit, 3)
    assert str(raised.value) == (
        f"max_unavailable must be a node count (2) or a percentage (34%), got {limit!r}"
    )


@pytest.mark.parametrize(
    ("action", "fleet", "limit", "refusal"),
    [
        ("drain", THREE, "50%", None),
        ("drain", [serving("node-0"), node("node-1", "drained"), serving("node-2")], "50%",
         Refusal("disruption-budget", "drain of node-2 would leave 2 of 3 nodes out of "
                 "rotation (node-1, node-2); max_unavailable 50% allows 1")),
        ("cycle", [node("node-0", "down", healthy=False), serving("node-1"), serving("node-2")],
         "1", Refusal("disruption-budget", "cycle of node-2 would leave 2 of 3 nodes out of "
                      "rotation (node-0, node-2); max_unavailable 1 allows 1")),
        ("drain", [node("node-0", "down", healthy=False), serving("node-1"), serving("node-2")],
         "2", None),
        ("undrain", [node("node-0", "drained"), node("node-1", "drained"), serving("node-2")],
         "0", None),
        ("reroute", THREE, "0", Refusal("disruption-budget", "reroute of node-2 would leave 1 "
                                        "of 3 nodes out of rotation (node-2); max_unavailable 0 "
                                        "allows 0")),
    ],
    ids=["the first drain of three fits 50%", "a second node out of three exceeds 50%",
         "a down node counts against the budget", "a budget of two allows a second",
         "undrain never spends the budget", "rerouting to weight 0 spends it too"],
)
def test_the_disruption_budget_counts_nodes_out_of_rotation(
    action: str, fleet: list[NodeState], limit: str, refusal: Refusal | None
) -> None:
    assert disruption_budget_share(action, "node-2", fleet, limit) == refusal


@pytest.mark.parametrize(
    ("action", "fleet", "refusal"),
    [
        ("drain", [busy("node-0", 10), busy("node-1", 20), busy("node-2", 30)], None),
        ("drain", [busy("node-0", 60), busy("node-1", 50), busy("node-2", 40)],
         Refusal("capacity", "drain of node-2 would leave 2 serving node(s) with capacity for "
                 "128 concurrent requests, but 150 are in flight")),
        ("cycle", [busy("node-0", 70), busy("node-1", 0, "drained"), busy("node-2", 0)],
         Refusal("capacity", "cycle of node-2 would leave 1 serving node(s) with capacity for "
                 "64 concurrent requests, but 70 are in flight")),
        ("undrain", [busy("node-0", 500), busy("node-1", 0), busy("node-2", 0)], None),
    ],
    ids=["demand well within the remaining capacity", "demand above what two nodes carry",
         "a drained node carries nothing", "undrain adds capacity: never refused"],
)
def test_the_capacity_check_compares_remaining_nodes_with_demand(
    action: str, fleet: list[NodeState], refusal: Refusal | None
) -> None:
    assert capacity(action, "node-2", fleet, 64) == refusal


def test_the_rate_limit_refuses_the_action_that_would_exceed_it() -> None:
    assert rate_limit([acted(i, "node-0") for i in range(1, 3)], 3) is None
    assert rate_limit([acted(i, "node-0") for i in range(1, 4)], 3) == Refusal(
        "rate-limit", "3 actions ran in the last hour (decisions 1, 2, 3...); the limit is 3 "
                      "per hour")


@pytest.mark.parametrize(
    ("remediated", "share", "why"),
    [
        ([], 0.5, None),
        ([acted(1, "node-0")], 0.5,
         "remediating node-2 would make 2 of 3 nodes (node-0, node-2) remediated within the "
         "window, more than 50% of the pool"),
        ([acted(1, "node-2"), acted(2, "node-2", "cycle")], 0.5, None),
        ([acted(1, "node-0")], 0.7, None),
    ],
    ids=["one node of three stays under half", "a second node of three trips it",
         "the same node again counts once", "a higher share lets the second through"],
)
def test_the_circuit_breaker_trips_on_the_share_of_the_pool_remediated(
    remediated: list[Decision], share: float, why: str | None
) -> None:
    assert breaker_should_open("node-2", remediated, 3, share) == why


def test_flapping_refuses_at_the_threshold() -> None:
    assert flapping(3, 4, 600) is None
    assert flapping(4, 4, 600) == Refusal(
        "flapping", "the alert fired 4 times in the last 600 s (flap threshold 4); fix the "
                    "alert or the node by hand")


@pytest.mark.parametrize(
    ("state", "up", "samples", "refusal"),
    [
        (serving("node-1"), 1.0, 12, None),
        (serving("node-1"), 0.0, 12,
         Refusal("stale-evidence", "the scrape target of node-1 is down (up == 0), but the "
                 "fleet's health check says node-1 is serving and healthy: the monitoring, not "
                 "the node, looks broken")),
        (serving("node-1"), None, 0,
         Refusal("stale-evidence", "no scrape of node-1 in the last 15 s, but the fleet's "
                 "health check says node-1 is serving and healthy: the monitoring, not the "
                 "node, looks broken")),
        (node("node-1", "down", healthy=False), 0.0, 12, None),
        (node("node-1", "down", healthy=False), None, 0, None),
    ],
    ids=["a fresh scrape of a healthy node is evidence", "a down target on a healthy node is not",
         "no recent scrape of a healthy node is not", "a down target on a down node is",
         "a silent down node is too"],
)
def test_stale_evidence_refuses_when_only_the_monitoring_is_broken(
    state: NodeState, up: float | None, samples: int, refusal: Refusal | None
) -> None:
    assert stale_evidence("node-1", state, up, samples, 15.0) == refusal


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"breaker_max_share": 0.0}, "breaker_max_share must be in (0, 1], got 0.0"),
        ({"max_unavailable": "most"},
         "max_unavailable must be a node count (2) or a percentage (34%), got 'most'"),
        ({"flap_threshold": 0}, "flap_threshold must be >= 1, got 0"),
    ],
)
def test_impossible_guard_limits_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        GuardLimits(**options)  # type: ignore[arg-type]
    assert str(raised.value) == message
