"""The checks that stand between a request to act and the action.

Each returns None when the action may go ahead, or a refusal whose reason a person reads
in the audit trail; they look only at the fleet snapshot and the decision history they
are given, so the engine decides the same way for an alert and for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._decision_log import Decision
from ._driver import NodeState, NodeStatus

DISRUPTION_BUDGET = "disruption-budget"
COOLDOWN = "cooldown"
UNKNOWN_NODE = "unknown-node"
ALERT_WITHOUT_NODE = "alert-without-node"

_GERUND = {"drain": "draining", "undrain": "undraining", "cycle": "cycling",
           "reroute": "rerouting"}
_DISRUPTIVE = ("drain", "cycle", "reroute")


@dataclass(frozen=True, slots=True)
class Refusal:
    guard: str
    reason: str


def disruption_budget(
    action: str, node: str, fleet: Sequence[NodeState], min_healthy_nodes: int
) -> Refusal | None:
    """Refuse to take `node` out of rotation when fewer than `min_healthy_nodes` other nodes
    would still be serving and healthy: never drain the last healthy node."""
    if action not in _DISRUPTIVE:
        return None
    remaining = [
        state.name for state in fleet
        if state.name != node and state.status == NodeStatus.SERVING and state.healthy
    ]
    if len(remaining) >= min_healthy_nodes:
        return None
    count = f"{len(remaining)} node{'' if len(remaining) == 1 else 's'}"
    return Refusal(
        DISRUPTION_BUDGET,
        f"{_GERUND[action]} {node} would leave {count} serving and healthy "
        f"({', '.join(remaining) or 'none'}); the disruption budget needs at least "
        f"{min_healthy_nodes}",
    )


def cooldown(
    action: str, node: str, previous: Decision | None, now_s: float, cooldown_s: float
) -> Refusal | None:
    """Refuse to repeat `action` on `node` while `previous` (the latest such decision that
    acted, or would have in a dry run) is younger than `cooldown_s`: no flapping."""
    if previous is None or now_s - previous.started_at_s >= cooldown_s:
        return None
    elapsed_s = round(now_s - previous.started_at_s, 1)
    return Refusal(
        COOLDOWN,
        f"{action} of {node} already ran {elapsed_s:g} s ago (decision {previous.id}, "
        f"{previous.outcome}); the cooldown is {cooldown_s:g} s",
    )


def already_done(action: str, state: NodeState) -> str | None:
    """Why `action` has nothing to do on a node in `state`, or None when it has."""
    if action == "drain" and state.status in (NodeStatus.DRAINING, NodeStatus.DRAINED):
        return f"{state.name} is already {state.status}"
    if action == "undrain" and state.status == NodeStatus.SERVING:
        return f"{state.name} is already serving"
    return None


def reached(action: str, state: NodeState) -> bool:
    """Whether the fleet shows the result `action` asked for."""
    if action == "drain":
        return state.status in (NodeStatus.DRAINING, NodeStatus.DRAINED)
    return state.status == NodeStatus.SERVING and state.healthy


def expected(action: str) -> str:
    """The result `action` waits for, as a person reads it."""
    return "draining or drained" if action == "drain" else "serving and healthy"
