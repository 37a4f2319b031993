"""Turn alerts and requests into guarded, verified, recorded actions on the fleet.

The same path serves the alert loop and a person at the CLI or API: read the fleet, ask the
guards (`GuardChain`), record the decision before acting, act, verify against the fleet's
own view, then (for alerts) watch the alert's condition and roll back what did not help.
One lock serialises decisions so a budget is never checked against a fleet that another
decision is changing. Policy steps, notices and diagnosis live in `_engine_steps.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from collectors import MetricSource

from ._alert_context import AlertContext, AlertHistory, alert_context
from ._decision_log import Decision, DecisionLog, Outcome
from ._driver import FleetDriver
from ._engine_steps import Notice, NotifyHook, StepRunner
from ._exceptions import (
    DecisionNotFound,
    FleetDriverError,
    NotPendingApproval,
    RemediationError,
    UnknownNodeError,
    unknown_node_message,
)
from ._fleet_guards import GuardLimits
from ._guard_chain import GuardChain, GuardCheck
from ._guards import UNKNOWN_NODE, already_done
from ._incidents import IncidentLog
from ._policy import ACTIONS, RemediationPolicy
from ._resume import resume_interrupted
from ._switches import BreakerState, KillSwitch, SwitchBoard
from ._verification import described

logger = logging.getLogger("remediation")

VERIFY_POLL_INTERVAL_S = 0.2
"""How often verification re-reads the fleet after an action."""


class RemediationEngine:
    """Guards: see `GuardChain` and `GuardLimits`. `dry_run` decides and records but never
    acts; `clock` stamps decisions and measures cooldowns and windows; `source` (a
    `MetricSource`) lets the engine check scrape freshness and watch an alert's condition
    after acting, for up to `recovery_deadline_s`; `notify` receives pages, escalations and
    policy notify steps; `rehearsal` (backtests) counts dry-run decisions as actions for the
    hourly limit and the circuit breaker too."""

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
        limits: GuardLimits | None = None,
        source: MetricSource | None = None,
        notify: NotifyHook | None = None,
        recovery_deadline_s: float = 60.0,
        recovery_poll_s: float = 1.0,
        rehearsal: bool = False,
    ) -> None:
        for name, value in (
            ("cooldown_s", cooldown_s), ("min_healthy_nodes", min_healthy_nodes),
            ("verify_timeout_s", verify_timeout_s), ("recovery_deadline_s", recovery_deadline_s),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self._driver = driver
        self._log = log
        self._policy = policy
        self._dry_run = dry_run
        self._verify_timeout_s = verify_timeout_s
        self._clock = clock
        self._limits = limits or GuardLimits()
        self._lock = threading.RLock()
        database = log.database
        self.incidents = IncidentLog(database)
        self._switches = SwitchBoard(database)
        self._alerts = AlertHistory(database)
        self._unhealthy_seen_s: float | None = None
        self._firing: dict[str, str] = {}
        """Policy-matched alerts firing now, by fingerprint (the breaker closes without)."""
        self._steps = StepRunner(
            self, driver=driver, log=log, incidents=self.incidents, limits=self._limits,
            source=source, notify=notify, clock=clock, recovery_deadline_s=recovery_deadline_s,
            recovery_poll_s=recovery_poll_s, verify_timeout_s=verify_timeout_s,
        )
        self._guards = GuardChain(
            log, self._switches, self._alerts, self._limits, cooldown_s=cooldown_s,
            min_healthy_nodes=min_healthy_nodes, source=source,
            on_breaker_open=lambda why: self._steps.send(Notice(
                "page", None, f"remediation circuit breaker opened: {why}", "", None)),
            rehearsal=rehearsal,
        )

    # --- alerts in ---------------------------------------------------------------------

    def handle_notification(self, payload: Mapping[str, Any]) -> list[Decision]:
        """Act on an Alertmanager version-4 webhook body: every firing alert that a policy
        rule matches runs the rule's steps (one decision each); resolved alerts move their
        incidents towards closing; unmatched alerts yield nothing."""
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
            labels = {str(key): str(value) for key, value in labels.items()}
            status = str(alert.get("status", ""))
            fingerprint = alert.get("fingerprint")
            if fingerprint is not None and status in ("firing", "resolved"):
                self._alerts.observe(str(fingerprint), status, at_s=self._clock())
            if status == "resolved" and fingerprint is not None:
                self._firing.pop(str(fingerprint), None)
                self.incidents.alert_resolved(str(fingerprint), at_s=self._clock())
            if status != "firing":
                continue
            rule = self._policy.match(labels)
            if rule is not None:
                if fingerprint is not None:
                    self._firing[str(fingerprint)] = labels.get(rule.node_label, "")
                context = alert_context(alert, labels, rule.node_label)
                decisions.extend(self._steps.run_rule(rule, context))
        self._settle_incidents()
        return decisions

    # --- people in ---------------------------------------------------------------------

    def execute(
        self,
        action: str,
        node: str,
        *,
        actor: str,
        reason: str,
        params: Mapping[str, str] | None = None,
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
        incident_id = None
        if alert_fingerprint is not None:
            incident_id = self.incidents.open_for(
                node=node, alertname=alertname, fingerprint=alert_fingerprint, at_s=self._clock(),
                alert_firing=False)
        decision = self._decide(
            action, node, actor=actor, why=reason, context=None, params=params or {},
            dry_run=bool(dry_run), approval=False, raise_unknown=True, incident_id=incident_id,
            alertname=alertname, fingerprint=alert_fingerprint,
        )
        self._settle_incidents()
        return decision

    def approve(self, decision_id: int, *, actor: str) -> Decision:
        """Act on a decision pending approval, after asking every guard again."""
        with self._lock:
            pending = self._pending(decision_id)
            context = AlertContext.from_evidence(pending.evidence, pending.alert_fingerprint)
            return self._decide(
                pending.action, pending.node, actor=pending.actor,
                why=f"{pending.reason}; approved by {actor}", context=context,
                params=pending.params, dry_run=False, approval=False, raise_unknown=False,
                incident_id=pending.incident_id, alertname=pending.alertname,
                fingerprint=pending.alert_fingerprint, existing=pending, approved_by=actor,
            )

    def deny(self, decision_id: int, *, actor: str, reason: str) -> Decision:
        """Record that a person refused a decision pending approval; nothing acts."""
        with self._lock:
            pending = self._pending(decision_id)
            denied = self._log.finish(
                pending.id, Outcome.DENIED,
                f"{pending.reason}; denied by {actor}: {reason or '(no reason given)'}",
                self._clock(),
            )
        log_decision(denied)
        return denied

    def _pending(self, decision_id: int) -> Decision:
        decision = self._log.get(decision_id)
        if decision is None:
            raise DecisionNotFound(decision_id)
        if decision.outcome != Outcome.PENDING_APPROVAL:
            raise NotPendingApproval(decision_id, str(decision.outcome))
        return decision

    def resume_interrupted(self) -> list[Decision]:
        """After a restart: actions a stopped process started are either found done or
        started again (never lost, never repeated); see `_resume`."""
        return resume_interrupted(self, self._log, self._driver, self._clock)

    def restart_action(self, interrupted: Decision) -> Decision:
        """Start `interrupted`'s action again, as its own actor, through every guard."""
        context = (AlertContext.from_evidence(interrupted.evidence, interrupted.alert_fingerprint)
                   if interrupted.evidence else None)
        return self._decide(
            interrupted.action, interrupted.node, actor=interrupted.actor,
            why=f"resuming decision {interrupted.id} (interrupted by a restart)",
            context=context, params=interrupted.params, dry_run=False, approval=False,
            raise_unknown=False, incident_id=interrupted.incident_id,
            alertname=interrupted.alertname, fingerprint=interrupted.alert_fingerprint,
        )

    # --- switches ----------------------------------------------------------------------

    def pause(self, *, actor: str, reason: str) -> KillSwitch:
        """Stop every automated action (stored: holds across restarts and processes)."""
        switch = self._switches.pause(actor=actor, reason=reason, at_s=self._clock())
        logger.warning("remediation paused by %s: %s", actor, reason)
        return switch

    def resume(self, *, actor: str) -> KillSwitch:
        switch = self._switches.resume(actor=actor, at_s=self._clock())
        logger.warning("remediation resumed by %s", actor)
        return switch

    def kill_switch(self) -> KillSwitch:
        return self._switches.kill_switch()

    def breaker(self) -> BreakerState:
        return self._switches.breaker()

    def tick(self) -> BreakerState:
        """Called every evaluation round: an open breaker closes once the fleet has been
        healthy (every serving node healthy, no policy alert firing on a node in rotation)
        for `breaker_close_after_s`."""
        state = self._switches.breaker()
        if not state.open:
            return state
        now_s = self._clock()
        try:
            fleet = self._driver.nodes()
        except FleetDriverError:
            fleet = None
        out_of_rotation = {node.name for node in fleet or () if node.status != "serving"}
        healthy = fleet is not None and all(
            node.healthy for node in fleet if node.status == "serving"
        ) and all(node in out_of_rotation for node in list(self._firing.values()))
        if not healthy:
            self._unhealthy_seen_s = now_s
        since = max(state.opened_at_s or now_s, self._unhealthy_seen_s or 0.0)
        if now_s - since >= self._limits.breaker_close_after_s:
            state = self._switches.close_breaker(at_s=now_s)
            logger.warning("remediation circuit breaker closed: the fleet was healthy for "
                           "%g s", self._limits.breaker_close_after_s)
        return state

    def history(self, limit: int = 100, *, node: str | None = None) -> list[Decision]:
        """The latest decisions, newest first."""
        return self._log.recent(limit, node=node)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the background recovery watches (they neither roll back nor escalate)."""
        self._steps.stop_watches(timeout_s)

    def wait_verifications(self, timeout_s: float = 120.0) -> None:
        """Block until every background recovery watch has ended (tests, shutdown)."""
        self._steps.wait_watches(timeout_s)

    # --- deciding ----------------------------------------------------------------------

    def _decide(
        self, action: str, node: str, *, actor: str, why: str, context: AlertContext | None,
        params: Mapping[str, str], dry_run: bool, approval: bool, raise_unknown: bool,
        incident_id: int | None, alertname: str | None, fingerprint: str | None,
        existing: Decision | None = None, approved_by: str | None = None,
    ) -> Decision:
        """One decision: guards, then record, act and verify. `existing`: the pending
        decision being approved (its row is updated instead of a new one written)."""
        with self._lock:
            now_s = self._clock()
            evidence = context.evidence() if context is not None else ""

            def decided(outcome: Outcome, reason: str, guard: str | None = None) -> Decision:
                if existing is not None:
                    finished = self._log.finish(existing.id, outcome, f"{why}: {reason}", now_s,
                                                guard=guard, approved_by=approved_by)
                    log_decision(finished)
                    return finished
                return self.record(
                    action=action, node=node, outcome=outcome, guard=guard,
                    reason=f"{why}: {reason}", actor=actor, alertname=alertname,
                    alert_fingerprint=fingerprint, started_at_s=now_s,
                    finished_at_s=None if outcome == Outcome.PENDING_APPROVAL else now_s,
                    params=params, evidence=evidence, incident_id=incident_id,
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
            refusal = self._guards.check(GuardCheck(
                action=action, node=node, state=state, fleet=fleet, context=context,
                automated=actor.startswith("policy:"), dry_run=dry_run or approval,
                now_s=now_s,
            ))
            if refusal is not None:
                return decided(Outcome.REFUSED, refusal.reason, refusal.guard)
            if dry_run:
                return decided(
                    Outcome.DRY_RUN,
                    f"dry run: would {action} {node} (now {described(state)}); "
                    "every guard passed",
                )
            if approval:
                return decided(
                    Outcome.PENDING_APPROVAL,
                    f"waiting for approval to {action} {node} (now {described(state)}); "
                    "every guard passed",
                )
            started = existing if existing is not None else None
            return self._steps.act(
                action, node, actor=actor, why=why, alertname=alertname,
                fingerprint=fingerprint, started_at_s=now_s, params=params, evidence=evidence,
                incident_id=incident_id, context=context, existing=started,
                approved_by=approved_by,
            )

    def record(self, **fields: Any) -> Decision:
        decision = self._log.record(**fields)
        log_decision(decision)
        return decision

    def _settle_incidents(self) -> None:
        if not self.incidents.awaiting_close():
            return
        try:
            fleet = self._driver.nodes()
        except FleetDriverError:
            return
        serving = {node.name for node in fleet if node.status == "serving" and node.healthy}
        for incident_id in self.incidents.close_settled(serving, at_s=self._clock()):
            logger.info("incident %d closed: its alert resolved and its node serves", incident_id)


def log_decision(decision: Decision) -> None:
    level = logging.INFO if decision.outcome in (
        Outcome.SUCCEEDED, Outcome.SKIPPED, Outcome.DRY_RUN, Outcome.PENDING_APPROVAL,
    ) else logging.WARNING
    logger.log(level, "remediation decision %d: %s %s by %s -> %s%s: %s", decision.id,
               decision.action, decision.node or "(no node)", decision.actor, decision.outcome,
               f" (guard {decision.guard})" if decision.guard else "", decision.reason)
