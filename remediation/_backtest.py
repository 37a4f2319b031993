"""Policy backtest: replay stored alert history through the engine in dry run, and say what it
would have done, when, and which guard would have stopped it.

This is how a team gains the trust to turn automation on. Each firing and resolution of a
stored alert is replayed in time order as an Alertmanager v4 body, with the engine's clock set
to the moment it happened, against a `HistoricalFleet` that reads node states from the stored
router and scrape series at that moment (what the fleet looked like, not what it looks like
now). The engine writes into its own in-memory database, so the backtest sees a fresh kill
switch and breaker, never touches the real audit trail, and never acts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from alerting import rfc3339
from collectors import MetricSource

from ._decision_log import DecisionLog
from ._driver import NodeState, NodeStatus
from ._engine import RemediationEngine
from ._exceptions import FleetDriverError
from ._fleet_guards import GuardLimits
from ._policy import RemediationPolicy

if TYPE_CHECKING:
    from ._diagnosis import ProfileTable

logger = logging.getLogger("remediation.backtest")

NODE_UP = 'max by (node) (up{node!=""})'
ROUTER_HEALTHY = "max by (node) (inferops_router_node_healthy)"
ROUTER_DRAINING = "max by (node) (inferops_router_node_draining)"
ROUTER_IN_FLIGHT = "sum by (node) (inferops_router_in_flight)"


@dataclass(frozen=True, slots=True)
class HistoricAlert:
    """One stored alert instance that fired (from the alert store)."""

    fingerprint: str
    labels: Mapping[str, str]
    fired_at_s: float
    resolved_at_s: float | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    generator_url: str = ""


@dataclass(frozen=True, slots=True)
class BacktestRow:
    """What the policy would have done about one alert firing (one row per decision)."""

    at_s: float
    alertname: str
    node: str
    action: str
    outcome: str
    guard: str | None
    reason: str


class HistoricalFleet:
    """A `FleetDriver` that reads the fleet as the store saw it at `clock()`; it never acts.

    Status mirrors the router's: a failed scrape (`up` 0) is down; drained by an admin is
    draining while requests are in flight, then drained; unhealthy is down."""

    def __init__(self, source: MetricSource, clock: Callable[[], float]) -> None:
        self._source = source
        self._clock = clock

    def _by_node(self, expr: str, at_s: float) -> dict[str, float]:
        try:
            samples = self._source.query(expr, at_s)
        except Exception as error:
            raise FleetDriverError(f"cannot read the stored fleet history ({expr}): {error}"
                                   ) from None
        return {s.labels["node"]: s.value for s in samples if "node" in s.labels}

    def nodes(self) -> list[NodeState]:
        at_s = self._clock()
        up = self._by_node(NODE_UP, at_s)
        healthy = self._by_node(ROUTER_HEALTHY, at_s)
        draining = self._by_node(ROUTER_DRAINING, at_s)
        in_flight = self._by_node(ROUTER_IN_FLIGHT, at_s)
        states = []
        for name in sorted(set(up) | set(healthy) | set(draining)):
            is_healthy = healthy.get(name, 1.0) > 0 and up.get(name, 1.0) > 0
            if up.get(name, 1.0) <= 0 or not is_healthy:
                status = NodeStatus.DOWN
            elif draining.get(name, 0.0) > 0:
                status = (NodeStatus.DRAINING if in_flight.get(name, 0.0) > 0
                          else NodeStatus.DRAINED)
            else:
                status = NodeStatus.SERVING
            states.append(NodeState(name, status, healthy=is_healthy,
                                    in_flight=int(in_flight.get(name, 0.0))))
        return states

    def _never(self, action: str) -> FleetDriverError:
        return FleetDriverError(f"a backtest never acts (asked to {action})")

    def drain(self, node: str) -> None:
        raise self._never("drain")

    def undrain(self, node: str) -> None:
        raise self._never("undrain")

    def cycle(self, node: str) -> None:
        raise self._never("cycle")

    def set_weight(self, node: str, weight: float) -> None:
        raise self._never("reroute")

    def profile(self, node: str, seconds: float) -> ProfileTable:
        raise self._never("profile")


class _ReplayClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def _body(alert: HistoricAlert, status: str) -> dict[str, Any]:
    """The Alertmanager v4 webhook body the engine would have received."""
    ends = rfc3339(alert.resolved_at_s) if status == "resolved" and alert.resolved_at_s \
        else "0001-01-01T00:00:00Z"
    return {
        "version": "4", "status": status, "receiver": "backtest",
        "groupKey": "{}:{}", "truncatedAlerts": 0, "externalURL": "",
        "groupLabels": {}, "commonLabels": dict(alert.labels), "commonAnnotations": {},
        "alerts": [{
            "status": status, "labels": dict(alert.labels),
            "annotations": dict(alert.annotations), "startsAt": rfc3339(alert.fired_at_s),
            "endsAt": ends, "generatorURL": alert.generator_url,
            "fingerprint": alert.fingerprint,
        }],
    }


def backtest(
    policy: RemediationPolicy,
    alerts: Iterable[HistoricAlert],
    source: MetricSource,
    *,
    since_s: float,
    until_s: float,
    cooldown_s: float = 300.0,
    min_healthy_nodes: int = 1,
    limits: GuardLimits | None = None,
    check_freshness: bool = True,
) -> list[BacktestRow]:
    """Replay the alerts that fired in [since_s, until_s] through `policy` with the engine's
    guards; rows in time order. `check_freshness`: give the engine `source` so the
    stale-evidence guard judges the scrape targets as they were."""
    events: list[tuple[float, int, str, HistoricAlert]] = []
    for alert in alerts:
        if not since_s <= alert.fired_at_s <= until_s:
            continue
        events.append((alert.fired_at_s, 1, "firing", alert))
        if alert.resolved_at_s is not None and alert.resolved_at_s <= until_s:
            events.append((alert.resolved_at_s, 0, "resolved", alert))
    events.sort(key=lambda event: (event[0], event[1], event[3].fingerprint))
    clock = _ReplayClock(since_s)
    database = sa.create_engine("sqlite://", poolclass=StaticPool,
                                connect_args={"check_same_thread": False})
    engine = RemediationEngine(
        HistoricalFleet(source, clock), DecisionLog(database), policy, dry_run=True,
        cooldown_s=cooldown_s, min_healthy_nodes=min_healthy_nodes, clock=clock,
        limits=limits, source=source if check_freshness else None, rehearsal=True,
    )
    rows: list[BacktestRow] = []
    try:
        for at_s, _, status, alert in events:
            clock.now_s = at_s
            engine.tick()
            for decision in engine.handle_notification(_body(alert, status)):
                rows.append(BacktestRow(
                    at_s=decision.started_at_s, alertname=decision.alertname or "",
                    node=decision.node, action=decision.action,
                    outcome=str(decision.outcome), guard=decision.guard,
                    reason=decision.reason,
                ))
    finally:
        engine.close()
        database.dispose()
    return rows
