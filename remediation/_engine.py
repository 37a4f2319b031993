"""Turn alerts and requests into guarded, verified, recorded actions on the fleet.

The same path serves the alert loop and a person at the CLI: read the fleet, check the
guards, record the decision before acting, act, then verify against the fleet's own view.
One lock serialises decisions so the disruption budget is never checked against a fleet
that another decision is changing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._decision_log import Decision, DecisionLog, Outcome
from ._driver import FleetDriver, NodeState
from ._exceptions import FleetDriverError, RemediationError, UnknownNodeError, unknown_node_message
from ._guards import (
    ALERT_WITHOUT_NODE,
    UNKNOWN_NODE,
    already_done,
    cooldown,
    disruption_budget,
    expected,
    reached,
)
from ._policy import ACTIONS, PolicyRule, RemediationPolicy

logger = logging.getLogger("remediation")

VERIFY_POLL_INTERVAL_S = 0.2
"""How often verification re-reads the fleet after an action."""

_ACTED = frozenset({Outcome.SUCCEEDED, Outcome.FAILED})


class RemediationEngine:
    """Guards: disruption budget (`min_healthy_nodes` must stay serving and healthy),
    cooldown (no repeat of an action on a node within `cooldown_s`), unknown node, alert
    without a node label. `dry_run` decides and records but never acts; `clock` stamps
    decisions and measures cooldowns."""

    def __init__(
        self,
        driver: FleetDriver,
        log: DecisionLog,
        policy: RemediationPolicy,
        *,
        dry_run: bool = False,
        cooldown_s: float = 300.0,
        min_healthy_nodes: int = 1,
        verify_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("cooldown_s", cooldown_s), ("min_healthy_nodes", min_healthy_nodes),
            ("verify_timeout_s", verify_timeout_s),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self._driver = driver
        self._log = log
        self._policy = policy
        self._dry_run = dry_run
        self._cooldown_s = cooldown_s
        self._min_healthy_nodes = min_healthy_nodes
        self._verify_timeout_s = verify_timeout_s
        self._clock = clock
        self._lock = threading.Lock()

    def handle_notification(self, payload: Mapping[str, Any]) -> list[Decision]:
        """Act on an Alertmanager version-4 webhook body: every firing alert that a policy
        rule matches yields one decision; resolved and unmatched alerts yield none."""
        alerts = payload.get("alerts")
        if not isinstance(alerts, list):
            raise RemediationError("the notification has no 'alerts' list (expected an "
                                   "Alertmanager version-4 webhook body)")
        decisions: list[Decision] = []
        for index, alert in enumerate(alerts):
            labels = alert.get("labels") if isinstance(alert, Mapping) else None
            if not isinstance(alert, Mapping) or not isinstance(labels, Mapping):
                logger.warning("ignoring alerts[%d] of a notification: it has no labels", index)
                continue
            if alert.get("status") != "firing":
                continue
            labels = {str(key): str(value) for key, value in labels.items()}
            rule = self._policy.match(labels)
            if rule is not None:
                fingerprint = alert.get("fingerprint")
                decisions.append(
                    self._on_alert(rule, labels, None if fingerprint is None else str(fingerprint))
                )
        return decisions

    def execute(
        self,
        action: str,
        node: str,
        *,
        actor: str,
        reason: str,
        alertname: str | None = None,
        alert_fingerprint: str | None = None,
        dry_run: bool | None = None,
    ) -> Decision:
        """Decide, and unless a guard or a dry run says otherwise, act and verify.

        `dry_run=True` forces a dry run; an engine-wide dry run cannot be overridden. A node
        the fleet does not know is recorded as refused, then raised as `UnknownNodeError`.
        """
        if action not in ACTIONS:
            raise RemediationError(
                f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}"
            )
        return self._decide(
            action, node, actor=actor, why=reason, alertname=alertname,
            fingerprint=alert_fingerprint, dry_run=bool(dry_run), raise_unknown=True,
        )

    def history(self, limit: int = 100, *, node: str | None = None) -> list[Decision]:
        """The latest decisions, newest first."""
        return self._log.recent(limit, node=node)

    def _on_alert(
        self, rule: PolicyRule, labels: Mapping[str, str], fingerprint: str | None
    ) -> Decision:
        alertname = labels.get("alertname")
        node = labels.get(rule.node_label, "")
        if not node:
            return self._record(
                action=rule.action, node="", outcome=Outcome.REFUSED, guard=ALERT_WITHOUT_NODE,
                reason=(f"alert {alertname} matched policy {rule.name} but has no "
                        f"{rule.node_label!r} label naming the node"),
                actor=f"policy:{rule.name}", alertname=alertname, alert_fingerprint=fingerprint,
                started_at_s=self._clock(), finished_at_s=self._clock(),
            )
        return self._decide(
            rule.action, node, actor=f"policy:{rule.name}",
            why=f"alert {alertname} fired for {node} (policy {rule.name})",
            alertname=alertname, fingerprint=fingerprint, dry_run=rule.dry_run,
            raise_unknown=False,
        )

    def _decide(
        self, action: str, node: str, *, actor: str, why: str, alertname: str | None,
        fingerprint: str | None, dry_run: bool, raise_unknown: bool,
    ) -> Decision:
        with self._lock:
            now_s = self._clock()

            def decided(outcome: Outcome, reason: str, guard: str | None = None) -> Decision:
                return self._record(
                    action=action, node=node, outcome=outcome, guard=guard,
                    reason=f"{why}: {reason}", actor=actor, alertname=alertname,
                    alert_fingerprint=fingerprint, started_at_s=now_s, finished_at_s=now_s,
                )

            try:
                fleet = self._driver.nodes()
            except FleetDriverError as error:
                return decided(Outcome.FAILED, f"could not read the fleet's nodes: {error}")
            state = next((candidate for candidate in fleet if candidate.name == node), None)
            if state is None:
                known = [candidate.name for candidate in fleet]
                decision = decided(
                    Outcome.REFUSED, unknown_node_message(node, known), UNKNOWN_NODE
                )
                if raise_unknown:
                    raise UnknownNodeError(node, known)
                return decision
            nothing_to_do = already_done(action, state)
            if nothing_to_do is not None:
                return decided(Outcome.SKIPPED, f"{nothing_to_do}; nothing to do")
            dry_run = dry_run or self._dry_run
            previous = self._log.latest(
                action=action, node=node,
                outcomes=(_ACTED | {Outcome.DRY_RUN}) if dry_run else _ACTED,
                since_s=now_s - self._cooldown_s,
            )
            refusal = cooldown(action, node, previous, now_s, self._cooldown_s) or (
                disruption_budget(action, node, fleet, self._min_healthy_nodes)
            )
            if refusal is not None:
                return decided(Outcome.REFUSED, refusal.reason, refusal.guard)
            if dry_run:
                return decided(
                    Outcome.DRY_RUN,
                    f"dry run: would {action} {node} (now {_described(state)}); "
                    "every guard passed",
                )
            return self._act(action, node, actor=actor, why=why, alertname=alertname,
                             fingerprint=fingerprint, started_at_s=now_s)

    def _act(
        self, action: str, node: str, *, actor: str, why: str, alertname: str | None,
        fingerprint: str | None, started_at_s: float,
    ) -> Decision:
        # Stored as failed until verified: if this process dies mid-action, that is the truth.
        # Logged as started, though: a warning that it failed would be false for every action.
        decision = self._log.record(
            action=action, node=node, outcome=Outcome.FAILED, guard=None,
            reason=f"{why}: {action} started; the engine stopped before it knew the outcome",
            actor=actor, alertname=alertname, alert_fingerprint=fingerprint,
            started_at_s=started_at_s, finished_at_s=None,
        )
        logger.info("remediation decision %d: %s %s by %s -> started: %s", decision.id,
                    action, node, actor, why)
        try:
            getattr(self._driver, action)(node)
        except Exception as error:
            if not isinstance(error, FleetDriverError):
                logger.exception("the fleet driver raised while trying to %s %s", action, node)
            return self._finish(decision, Outcome.FAILED, f"{why}: {action} failed: {error}")
        outcome, result = self._verify(action, node)
        return self._finish(decision, outcome, f"{why}: {result}")

    def _verify(self, action: str, node: str) -> tuple[Outcome, str]:
        """Poll the fleet until `node` shows what `action` asked for, or time runs out."""
        deadline = time.monotonic() + self._verify_timeout_s
        while True:
            try:
                state = next((s for s in self._driver.nodes() if s.name == node), None)
                seen = "absent from the fleet" if state is None else _described(state)
            except FleetDriverError as error:
                state, seen = None, f"unreadable: {error}"
            if state is not None and reached(action, state):
                if action == "drain":
                    return Outcome.SUCCEEDED, f"{node} is now {state.status}"
                restarted = "was restarted and " if action == "cycle" else ""
                return Outcome.SUCCEEDED, f"{node} {restarted}is now serving and healthy"
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return Outcome.FAILED, (
                    f"the fleet accepted the {action}, but {node} did not become "
                    f"{expected(action)} within {self._verify_timeout_s:g} s (last seen: {seen})"
                )
            time.sleep(min(VERIFY_POLL_INTERVAL_S, left_s))

    def _record(self, **fields: Any) -> Decision:
        decision = self._log.record(**fields)
        _log_decision(decision)
        return decision

    def _finish(self, decision: Decision, outcome: Outcome, reason: str) -> Decision:
        finished = self._log.finish(decision.id, outcome, reason, self._clock())
        _log_decision(finished)
        return finished


def _described(state: NodeState) -> str:
    return f"{state.status}, {'healthy' if state.healthy else 'unhealthy'}"


def _log_decision(decision: Decision) -> None:
    level = logging.INFO if decision.outcome in (Outcome.SUCCEEDED, Outcome.SKIPPED,
                                                 Outcome.DRY_RUN) else logging.WARNING
    logger.log(level, "remediation decision %d: %s %s by %s -> %s%s: %s", decision.id,
               decision.action, decision.node or "(no node)", decision.actor, decision.outcome,
               f" (guard {decision.guard})" if decision.guard else "", decision.reason)
