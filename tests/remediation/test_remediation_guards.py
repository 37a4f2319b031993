"""The guards between a request to act and the action: disruption budget, cooldown, and
"nothing to do" — each a pure function of the fleet snapshot and the history it is given."""

from __future__ import annotations

import pytest
from remediation_doubles import node, serving

from remediation import Decision, NodeState, Outcome
from remediation._guards import (
    COOLDOWN,
    DISRUPTION_BUDGET,
    Refusal,
    already_done,
    cooldown,
    disruption_budget,
    expected,
    reached,
)

THREE_SERVING = [serving("node-0"), serving("node-1"), serving("node-2")]


@pytest.mark.parametrize(
    ("action", "target", "fleet", "min_healthy", "refusal"),
    [
        ("drain", "node-0", THREE_SERVING, 1, None),
        (
            "drain", "node-0",
            [serving("node-0"), node("node-1", "drained"), node("node-2", "down", healthy=False)],
            1,
            Refusal(
                DISRUPTION_BUDGET,
                "draining node-0 would leave 0 nodes serving and healthy (none); "
                "the disruption budget needs at least 1",
            ),
        ),
        (
            "drain", "node-0", [serving("node-0")], 1,
            Refusal(
                DISRUPTION_BUDGET,
                "draining node-0 would leave 0 nodes serving and healthy (none); "
                "the disruption budget needs at least 1",
            ),
        ),
        (
            "drain", "node-0",
            [
                serving("node-0"),
                node("node-1", "serving", healthy=False),
                node("node-2", "draining"),
            ],
            1,
            Refusal(
                DISRUPTION_BUDGET,
                "draining node-0 would leave 0 nodes serving and healthy (none); "
                "the disruption budget needs at least 1",
            ),
        ),
        ("drain", "node-0", THREE_SERVING, 2, None),
        (
            "drain", "node-1", [node("node-0", "drained"), serving("node-1"), serving("node-2")], 2,
            Refusal(
                DISRUPTION_BUDGET,
                "draining node-1 would leave 1 node serving and healthy (node-2); "
                "the disruption budget needs at least 2",
            ),
        ),
        (
            "cycle", "node-2", [node("node-0", "down", healthy=False), serving("node-2")], 1,
            Refusal(
                DISRUPTION_BUDGET,
                "cycling node-2 would leave 0 nodes serving and healthy (none); "
                "the disruption budget needs at least 1",
            ),
        ),
        # A node that is already out of rotation costs nothing to drain again or to cycle.
        ("drain", "node-1", [serving("node-0"), node("node-1", "down", healthy=False)], 1, None),
        ("undrain", "node-0", [node("node-0", "drained")], 1, None),
        ("undrain", "node-0", [node("node-0", "drained"), node("node-1", "drained")], 3, None),
        ("drain", "node-0", [serving("node-0")], 0, None),
    ],
    ids=[
        "draining one of three serving nodes goes ahead",
        "draining the last healthy node is refused",
        "draining the only node is refused",
        "unhealthy or draining nodes do not count towards the budget",
        "with min_healthy_nodes 2, draining one of three goes ahead",
        "with min_healthy_nodes 2, draining one of two serving nodes is refused",
        "cycling the last healthy node is refused",
        "draining a node that is down goes ahead while another serves",
        "undraining is never limited by the budget",
        "undraining is allowed even below the budget",
        "min_healthy_nodes 0 switches the budget off",
    ],
)
def test_the_disruption_budget_never_drains_below_min_healthy_nodes(
    action: str, target: str, fleet: list[NodeState], min_healthy: int, refusal: Refusal | None
) -> None:
    assert disruption_budget(action, target, fleet, min_healthy) == refusal


def _decision(started_at_s: float, outcome: Outcome = Outcome.SUCCEEDED) -> Decision:
    return Decision(
        id=7, action="drain", node="node-1", outcome=outcome, reason="r", guard=None,
        actor="policy:p", alertname=None, alert_fingerprint=None, started_at_s=started_at_s,
        finished_at_s=started_at_s,
    )


@pytest.mark.parametrize(
    ("previous", "now_s", "cooldown_s", "refusal"),
    [
        (None, 1000.0, 300.0, None),
        (
            _decision(900.0), 1000.0, 300.0,
            Refusal(COOLDOWN, "drain of node-1 already ran 100 s ago (decision 7, succeeded); "
                              "the cooldown is 300 s"),
        ),
        (
            _decision(987.66, Outcome.FAILED), 1000.0, 60.0,
            Refusal(COOLDOWN, "drain of node-1 already ran 12.3 s ago (decision 7, failed); "
                              "the cooldown is 60 s"),
        ),
        (
            _decision(999.5, Outcome.DRY_RUN), 1000.0, 0.75,
            Refusal(COOLDOWN, "drain of node-1 already ran 0.5 s ago (decision 7, dry_run); "
                              "the cooldown is 0.75 s"),
        ),
        (_decision(700.0), 1000.0, 300.0, None),
        (_decision(600.0), 1000.0, 300.0, None),
        (_decision(1000.0), 1000.0, 0.0, None),
    ],
    ids=[
        "no earlier decision: no cooldown",
        "an action 100 s ago with a 300 s cooldown is refused",
        "elapsed time is shown to a tenth of a second",
        "fractional cooldowns read as written",
        "exactly the cooldown later goes ahead",
        "after the cooldown goes ahead",
        "a cooldown of zero never refuses",
    ],
)
def test_the_cooldown_refuses_a_repeat_while_the_previous_action_is_younger(
    previous: Decision | None, now_s: float, cooldown_s: float, refusal: Refusal | None
) -> None:
    assert cooldown("drain", "node-1", previous, now_s, cooldown_s) == refusal


@pytest.mark.parametrize(
    ("action", "state", "why"),
    [
        ("drain", node("node-1", "draining"), "node-1 is already draining"),
        ("drain", node("node-1", "drained"), "node-1 is already drained"),
        ("drain", serving("node-1"), None),
        ("drain", node("node-1", "down", healthy=False), None),
        ("undrain", serving("node-1"), "node-1 is already serving"),
        ("undrain", node("node-1", "serving", healthy=False), "node-1 is already serving"),
        ("undrain", node("node-1", "drained"), None),
        ("undrain", node("node-1", "down", healthy=False), None),
        ("cycle", serving("node-1"), None),
        ("cycle", node("node-1", "drained"), None),
    ],
    ids=[
        "draining a draining node has nothing to do",
        "draining a drained node has nothing to do",
        "draining a serving node has work",
        "draining a down node has work (takes it out of rotation)",
        "undraining a serving node has nothing to do",
        "undraining a serving but unhealthy node has nothing to do",
        "undraining a drained node has work",
        "undraining a down node has work",
        "cycling always has work",
        "cycling a drained node has work",
    ],
)
def test_already_done_says_why_an_action_has_nothing_to_do(
    action: str, state: NodeState, why: str | None
) -> None:
    assert already_done(action, state) == why


@pytest.mark.parametrize(
    ("action", "state", "done"),
    [
        ("drain", node("node-1", "draining"), True),
        ("drain", node("node-1", "drained"), True),
        ("drain", serving("node-1"), False),
        ("drain", node("node-1", "down", healthy=False), False),
        ("undrain", serving("node-1"), True),
        ("undrain", node("node-1", "serving", healthy=False), False),
        ("undrain", node("node-1", "drained"), False),
        ("cycle", serving("node-1"), True),
        ("cycle", node("node-1", "down", healthy=False), False),
    ],
    ids=[
        "a draining node shows a drain",
        "a drained node shows a drain",
        "a serving node does not show a drain",
        "a down node does not show a drain",
        "a serving healthy node shows an undrain",
        "a serving unhealthy node does not show an undrain",
        "a drained node does not show an undrain",
        "a serving healthy node shows a cycle",
        "a down node does not show a cycle",
    ],
)
def test_reached_reads_the_result_an_action_asked_for(
    action: str, state: NodeState, done: bool
) -> None:
    assert reached(action, state) is done


def test_expected_results_read_as_a_person_says_them() -> None:
    assert [expected(action) for action in ("drain", "undrain", "cycle")] == [
        "draining or drained", "serving and healthy", "serving and healthy",
    ]
