"""Fleet-wide guards: what stops an engine that is right about each node from being wrong
about the fleet.

Like the node guards in `_guards.py`, each is a pure function over a fleet snapshot and the
decision history it is given, returning None (go ahead) or a `Refusal` whose reason a
person reads in the audit trail. `GuardLimits` holds their settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._decision_log import Decision
from ._driver import NodeState, NodeStatus
from ._guards import Refusal

KILL_SWITCH = "kill-switch"
CIRCUIT_BREAKER = "circuit-breaker"
MAX_UNAVAILABLE = "disruption-budget"
CAPACITY = "capacity"
RATE_LIMIT = "rate-limit"
FLAPPING = "flapping"
STALE_EVIDENCE = "stale-evidence"
STALE_ALERT = "stale-alert"

DISRUPTIVE = ("drain", "cycle", "reroute")
"""Actions that take a node (or part of it) out of rotation."""


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Every fleet guard's setting. `max_unavailable`: nodes (`"1"`) or a share of the pool
    (`"34%"`) that may be out of rotation at once; `node_capacity_requests`: the concurrent
    requests one node serves well (the capacity check compares the remaining nodes' total
    with the requests in flight); `escalate_after_cycles` cycles of one node within
    `ladder_window_s` turn the next cycle into a drain flagged for hardware inspection.
    The breaker and the share budget default to off here (a library default must not change
    what an existing caller's engine does); the settings' defaults turn them on (50%)."""

    breaker_max_share: float = 1.0
    breaker_window_s: float = 600.0
    breaker_close_after_s: float = 300.0
    max_unavailable: str = "100%"
    node_capacity_requests: int = 64
    max_actions_per_hour: int = 20
    flap_threshold: int = 4
    flap_window_s: float = 600.0
    stale_after_s: float = 15.0
    escalate_after_cycles: int = 2
    ladder_window_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.breaker_max_share <= 1:
            raise ValueError(f"breaker_max_share must be in (0, 1], got {self.breaker_max_share}")
        max_unavailable_nodes(self.max_unavailable, 1)
        for name in ("node_capacity_requests", "max_actions_per_hour", "flap_threshold",
                     "escalate_after_cycles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


def max_unavailable_nodes(limit: str, pool_size: int) -> int:
    """`"2"` -> 2; `"34%"` of 3 nodes -> 1: a percentage rounds down, the safe side of a
    budget (Kubernetes rounds a PDB's maxUnavailable percentage up)."""
    text = limit.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return math.floor(pool_size * share / 100 + 1e-9)
        count = int(text)
        if count < 0:
            raise ValueError
        return count
    except ValueError:
        raise ValueError(
            f"max_unavailable must be a node count (2) or a percentage (34%), got {limit!r}"
        ) from None


def _available(state: NodeState) -> bool:
    return state.status == NodeStatus.SERVING and state.healthy


def disruption_budget_share(
    action: str, node: str, fleet: Sequence[NodeState], max_unavailable: str
) -> Refusal | None:
    """Refuse a disruptive action when it would leave more nodes of the pool out of rotation
    (not serving and healthy) than `max_unavailable` allows."""
    if action not in DISRUPTIVE:
        return None
    unavailable = sorted({s.name for s in fleet if not _available(s)} | {node})
    allowed = max_unavailable_nodes(max_unavailable, len(fleet))
    if len(unavailable) <= allowed:
        return None
    return Refusal(
        MAX_UNAVAILABLE,
        f"{action} of {node} would leave {len(unavailable)} of {len(fleet)} nodes out of "
        f"rotation ({', '.join(unavailable)}); max_unavailable {max_unavailable} allows "
        f"{allowed}",
    )


def capacity(
    action: str, node: str, fleet: Sequence[NodeState], node_capacity_requests: int
) -> Refusal | None:
    """Refuse a drain or cycle when the nodes left serving could not carry the requests in
    flight across the fleet now."""
    if action not in ("drain", "cycle"):
        return None
    remaining = [s for s in fleet if s.name != node and _available(s)]
    demand = sum(s.in_flight for s in fleet)
    supply = len(remaining) * node_capacity_requests
    if demand <= supply:
        return None
    return Refusal(
        CAPACITY,
        f"{action} of {node} would leave {len(remaining)} serving node(s) with capacity for "
        f"{supply} concurrent requests, but {demand} are in flight",
    )


def rate_limit(acted_last_hour: Sequence[Decision], max_per_hour: int) -> Refusal | None:
    """Refuse once `max_per_hour` actions touched the fleet in the last hour."""
    if len(acted_last_hour) < max_per_hour:
        return None
    return Refusal(
        RATE_LIMIT,
        f"{len(acted_last_hour)} actions ran in the last hour (decisions "
        f"{', '.join(str(d.id) for d in acted_last_hour[-5:])}...); the limit is "
        f"{max_per_hour} per hour",
    )


def breaker_should_open(
    node: str, remediated: Sequence[Decision], pool_size: int, max_share: float
) -> str | None:
    """Why the breaker opens if `node` is remediated now: the distinct nodes remediated in the
    window, with it, would exceed `max_share` of the pool. None when within the share."""
    nodes = sorted({d.node for d in remediated} | {node})
    if pool_size <= 0 or len(nodes) / pool_size <= max_share:
        return None
    return (
        f"remediating {node} would make {len(nodes)} of {pool_size} nodes "
        f"({', '.join(nodes)}) remediated within the window, more than "
        f"{max_share:.0%} of the pool"
    )


def flapping(fired_in_window: int, threshold: int, window_s: float) -> Refusal | None:
    """Refuse to act on an alert that fired `threshold` times or more within the window: the
    alert (or its threshold) is the problem, not a node."""
    if fired_in_window < threshold:
        return None
    return Refusal(
        FLAPPING,
        f"the alert fired {fired_in_window} times in the last {window_s:g} s "
        f"(flap threshold {threshold}); fix the alert or the node by hand",
    )


def stale_evidence(
    node: str, state: NodeState, up_value: float | None, samples_in_window: int,
    stale_after_s: float,
) -> Refusal | None:
    """Refuse when the node's scrape target is down or stale while the fleet's own health
    check says the node is fine: the monitoring is broken, not the node."""
    if not state.healthy:
        return None
    if samples_in_window == 0 or up_value is None:
        problem = f"no scrape of {node} in the last {stale_after_s:g} s"
    elif up_value == 0:
        problem = f"the scrape target of {node} is down (up == 0)"
    else:
        return None
    return Refusal(
        STALE_EVIDENCE,
        f"{problem}, but the fleet's health check says {node} is {state.status} and healthy: "
        "the monitoring, not the node, looks broken",
    )
