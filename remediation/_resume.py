"""Finishing what a stopped control plane started: no action lost, none repeated.

An action is stored as started (outcome `failed`, no finish time) before the engine touches
the fleet. After a kill -9 such a decision is the only trace of it. On restart the engine
asks the fleet: an action whose result shows was done, and is recorded as such; one whose
result does not show is marked `interrupted` and started again through every guard (an
interrupted decision counts for no cooldown or limit, so the guard that would otherwise
refuse the repeat - "already ran 3 s ago" - does not lose the action).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._decision_log import Decision, DecisionLog, Outcome
from ._driver import FleetDriver
from ._exceptions import FleetDriverError
from ._guards import reached

if TYPE_CHECKING:
    from ._engine import RemediationEngine

logger = logging.getLogger("remediation")

_RESULT_SHOWS = frozenset({"drain", "undrain", "cycle"})
"""Actions whose result the fleet shows (`reached`); `reroute` is re-applied (it is
idempotent) and an interrupted `profile` is not worth repeating."""


def resume_interrupted(
    engine: RemediationEngine,
    log: DecisionLog,
    driver: FleetDriver,
    clock: Callable[[], float],
) -> list[Decision]:
    """Settle every unfinished decision; returns the decisions written or finished."""
    unfinished = log.unfinished()
    if not unfinished:
        return []
    try:
        fleet = {state.name: state for state in driver.nodes()}
    except FleetDriverError as error:
        logger.warning("cannot settle %d interrupted remediation decision(s) yet: %s",
                       len(unfinished), error)
        return []
    settled: list[Decision] = []
    for decision in unfinished:
        now_s = clock()
        state = fleet.get(decision.node)
        if decision.action in _RESULT_SHOWS and state is not None and reached(
            decision.action, state
        ):
            settled.append(log.finish(
                decision.id, Outcome.SUCCEEDED,
                f"{_why(decision)}; found done after the control plane restarted "
                f"({decision.node} is {state.status})", now_s,
            ))
            continue
        settled.append(log.finish(
            decision.id, Outcome.INTERRUPTED,
            f"{_why(decision)}; the control plane stopped mid-action and the fleet shows no "
            "result", now_s,
        ))
        if decision.action == "profile" or state is None:
            continue
        settled.append(engine.restart_action(decision))
    for decision in settled:
        logger.warning("remediation decision %d after restart: %s %s -> %s", decision.id,
                       decision.action, decision.node, decision.outcome)
    return settled


def _why(decision: Decision) -> str:
    return decision.reason.split(": ", 1)[0] if ": " in decision.reason else decision.reason
