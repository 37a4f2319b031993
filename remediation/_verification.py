"""Did the action work? The fleet's own view first, then the alert's condition.

Right after an action the engine polls the fleet until the node shows the result asked for
(`await_node_state`). Then, for alert-driven actions, a background watch re-evaluates the
alert's own expression until it stops returning the node (recovered) or a deadline passes
(not recovered: the engine rolls back when safe and escalates).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from collectors import MetricSource

from ._alert_context import AlertContext
from ._driver import NodeState
from ._exceptions import FleetDriverError
from ._guards import expected, reached

POLL_INTERVAL_S = 0.2


def described(state: NodeState) -> str:
    return f"{state.status}, {'healthy' if state.healthy else 'unhealthy'}"


def await_node_state(
    nodes: Callable[[], Sequence[NodeState]], action: str, node: str, timeout_s: float,
    *, poll_s: float = POLL_INTERVAL_S,
) -> tuple[bool, str]:
    """Poll the fleet until `node` shows what `action` asked for, or time runs out; returns
    (reached, what a person reads)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            state = next((s for s in nodes() if s.name == node), None)
            seen = "absent from the fleet" if state is None else described(state)
        except FleetDriverError as error:
            state, seen = None, f"unreadable: {error}"
        if state is not None and reached(action, state):
            if action == "drain":
                return True, f"{node} is now {state.status}"
            restarted = "was restarted and " if action == "cycle" else ""
            return True, f"{node} {restarted}is now serving and healthy"
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            return False, (
                f"the fleet accepted the {action}, but {node} did not become "
                f"{expected(action)} within {timeout_s:g} s (last seen: {seen})"
            )
        time.sleep(min(poll_s, left_s))


def still_firing(source: MetricSource, context: AlertContext, node: str, at_s: float
                 ) -> bool | None:
    """Whether the alert's expression still returns a sample for `node` (or, for an alert
    without a node label in its result, any sample); None when it cannot be told."""
    if context.expr is None:
        return None
    try:
        samples = source.query(context.expr, at_s)
    except Exception:
        return None
    return any(
        sample.labels.get(context.node_label, node) == node for sample in samples
    )


def watch_recovery(
    source: MetricSource, context: AlertContext, node: str, *, deadline_s: float,
    clock: Callable[[], float], stop: threading.Event, poll_s: float = 1.0,
) -> tuple[bool | None, str]:
    """Re-evaluate the alert's condition until it clears (True) or `deadline_s` passes
    (False); None when `stop` was set first (the engine is closing)."""
    ends = time.monotonic() + deadline_s
    while True:
        firing = still_firing(source, context, node, clock())
        if firing is False:
            return True, f"the alert's condition cleared for {node}"
        if time.monotonic() >= ends:
            how = "could not be evaluated" if firing is None else "still holds"
            return False, (f"the alert's condition {how} for {node} {deadline_s:g} s after "
                           "the action")
        if stop.wait(poll_s):
            return None, "the engine stopped watching"
