"""The order the guards are asked in, and what each one reads.

Fleet-wide stops first (kill switch, circuit breaker), then doubts about the evidence (a
stale alert, a flapping alert, a broken scrape), then the node and pool checks (cooldown,
disruption budget, capacity), then the rate limit, and last the breaker's own trip wire.
The kill switch, breaker and rate limit hold back automation; a person acting through the
CLI or the API still meets every node and pool guard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collectors import MetricSource

from ._alert_context import AlertContext, AlertHistory
from ._decision_log import ACTED, DecisionLog, Outcome
from ._driver import NodeState
from ._fleet_guards import (
    CIRCUIT_BREAKER,
    DISRUPTIVE,
    KILL_SWITCH,
    STALE_ALERT,
    GuardLimits,
    breaker_should_open,
    capacity,
    disruption_budget_share,
    flapping,
    rate_limit,
    stale_evidence,
)
from ._guards import Refusal, cooldown, disruption_budget
from ._switches import SwitchBoard
from ._verification import still_firing

logger = logging.getLogger("remediation")

_LABEL_VALUE = re.compile(r'["\\\n]')
KNOWN_TARGET_WINDOW_S = 600
"""A node with no `up` sample in this long is not scraped here (or not labelled by node)."""


@dataclass(frozen=True, slots=True)
class GuardCheck:
    """One request to act, as the guards see it."""

    action: str
    node: str
    state: NodeState
    fleet: Sequence[NodeState]
    context: AlertContext | None
    automated: bool
    dry_run: bool
    now_s: float


class GuardChain:
    """Asks every guard in order; the first refusal wins. `on_breaker_open` is called with
    the reason when this chain trips the breaker (the engine pages someone)."""

    def __init__(
        self, log: DecisionLog, switches: SwitchBoard, alerts: AlertHistory,
        limits: GuardLimits, *, cooldown_s: float, min_healthy_nodes: int,
        source: MetricSource | None, on_breaker_open: Callable[[str], object],
        rehearsal: bool = False,
    ) -> None:
        """`rehearsal`: dry-run decisions count as if they had acted, for the rate limit and
        the circuit breaker too (a backtest must show where those would have stopped it)."""
        self._rehearsal = rehearsal
        self._log = log
        self._switches = switches
        self._alerts = alerts
        self._limits = limits
        self._cooldown_s = cooldown_s
        self._min_healthy_nodes = min_healthy_nodes
        self._source = source
        self._on_breaker_open = on_breaker_open

    def check(self, request: GuardCheck) -> Refusal | None:
        for guard in (self._fleet_stops, self._evidence, self._node_and_pool, self._rate,
                      self._breaker_trip):
            refusal = guard(request)
            if refusal is not None:
                return refusal
        return None

    def _fleet_stops(self, request: GuardCheck) -> Refusal | None:
        if not request.automated:
            return None
        switch = self._switches.kill_switch()
        if switch.paused:
            return Refusal(KILL_SWITCH, f"automation is paused by {switch.actor} "
                                        f"({switch.reason}); resume to act again")
        breaker = self._switches.breaker()
        if breaker.open:
            return Refusal(CIRCUIT_BREAKER, f"the circuit breaker is open: {breaker.reason}")
        return None

    def _evidence(self, request: GuardCheck) -> Refusal | None:
        context = request.context
        if context is None:
            return None
        breaker = self._switches.breaker()
        if (context.starts_at_s is not None and breaker.opened_at_s is not None
                and breaker.closed_at_s is not None
                and breaker.opened_at_s <= context.starts_at_s < breaker.closed_at_s):
            confirmed = (None if self._source is None else
                         still_firing(self._source, context, request.node, request.now_s))
            if not confirmed:
                return Refusal(STALE_ALERT, (
                    "the alert fired while the circuit breaker was open and is not confirmed "
                    "firing now; alerts from that time are not replayed"))
        if context.fingerprint is not None:
            fired = self._alerts.fired_since(
                context.fingerprint, request.now_s - self._limits.flap_window_s)
            refusal = flapping(fired, self._limits.flap_threshold, self._limits.flap_window_s)
            if refusal is not None:
                return refusal
        if self._source is None:
            return None
        evidence = self._scrape_evidence(context.node_label, request.node, request.now_s)
        if evidence is None:
            return None
        up, count = evidence
        return stale_evidence(request.node, request.state, up, count,
                              self._limits.stale_after_s)

    def _scrape_evidence(self, label: str, node: str, now_s: float
                         ) -> tuple[float | None, int] | None:
        """The node's latest `up` and how many `up` samples the stale window holds; None when
        the source has no `up` series for the node at all in `KNOWN_TARGET_WINDOW_S` (its
        targets are not labelled by node, or it is not scraped here): no judgement then."""
        assert self._source is not None
        selector = f'up{{{label}="{_LABEL_VALUE.sub("", node)}"}}'
        window = f"{max(1, round(self._limits.stale_after_s))}s"
        known = f"{max(KNOWN_TARGET_WINDOW_S, round(self._limits.stale_after_s))}s"
        try:
            if not self._source.query(f"count_over_time({selector}[{known}])", now_s):
                return None
            counts = self._source.query(f"count_over_time({selector}[{window}])", now_s)
            latest = self._source.query(f"last_over_time({selector}[{window}])", now_s)
        except Exception as error:
            logger.warning("cannot read the scrape evidence of %s: %s", node, error)
            return None, 0  # evidence that cannot be read is not evidence
        count = int(sum(sample.value for sample in counts))
        up = min((sample.value for sample in latest), default=None)
        return up, count

    def _node_and_pool(self, request: GuardCheck) -> Refusal | None:
        action, node, fleet = request.action, request.node, request.fleet
        outcomes = (ACTED | {Outcome.DRY_RUN}) if request.dry_run else ACTED
        previous = self._log.latest(action=action, node=node, outcomes=outcomes,
                                    since_s=request.now_s - self._cooldown_s)
        return (
            cooldown(action, node, previous, request.now_s, self._cooldown_s)
            or disruption_budget(action, node, fleet, self._min_healthy_nodes)
            or disruption_budget_share(action, node, fleet, self._limits.max_unavailable)
            or capacity(action, node, fleet, self._limits.node_capacity_requests)
        )

    def _counted(self) -> frozenset[Outcome]:
        return ACTED | {Outcome.DRY_RUN} if self._rehearsal else ACTED

    def _rate(self, request: GuardCheck) -> Refusal | None:
        if not request.automated or (request.dry_run and not self._rehearsal):
            return None
        acted = self._log.since(request.now_s - 3600.0, outcomes=self._counted(),
                                actions=(*DISRUPTIVE, "undrain"))
        return rate_limit(acted, self._limits.max_actions_per_hour)

    def _breaker_trip(self, request: GuardCheck) -> Refusal | None:
        if (not request.automated or (request.dry_run and not self._rehearsal)
                or request.action not in DISRUPTIVE):
            return None
        remediated = self._log.since(request.now_s - self._limits.breaker_window_s,
                                     actions=DISRUPTIVE, outcomes=self._counted())
        why = breaker_should_open(request.node, remediated, len(request.fleet),
                                  self._limits.breaker_max_share)
        if why is None:
            return None
        self._switches.open_breaker(reason=why, at_s=request.now_s)
        self._on_breaker_open(why)
        return Refusal(CIRCUIT_BREAKER, f"the circuit breaker opened: {why}")
