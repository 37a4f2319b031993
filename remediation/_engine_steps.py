"""What the engine does once the guards said yes: policy steps, actions, notices, diagnosis
and the recovery watch that rolls back what did not help.

Split from `_engine.py`, which decides; this module acts, and calls back into the engine
(`decide`) for every node step so each one meets the guards.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors import MetricSource

from ._alert_context import AlertContext
from ._decision_log import ACTED, Decision, DecisionLog, Outcome
from ._diagnosis import ProfileTable, diff_profiles, regression_note
from ._driver import FleetDriver, NodeStatus
from ._exceptions import FleetDriverError
from ._fleet_guards import GuardLimits
from ._guards import ALERT_WITHOUT_NODE
from ._incidents import IncidentLog
from ._policy import MESSAGE_STEPS, PolicyRule
from ._verification import await_node_state, watch_recovery

if TYPE_CHECKING:
    from ._engine import RemediationEngine

logger = logging.getLogger("remediation")

HARDWARE_INSPECTION = "hardware-inspection"
_GOES_ON = frozenset({Outcome.SUCCEEDED, Outcome.DRY_RUN, Outcome.SKIPPED,
                      Outcome.PENDING_APPROVAL})
"""After these a policy's next step runs; after a refusal or failure the rest are skipped."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for people: a policy `notify`/`escalate` step, an escalation after a failed
    verification or an escalation ladder, or a `page` when the circuit breaker opens."""

    kind: str
    receiver: str | None
    message: str
    node: str
    incident_id: int | None


NotifyHook = Callable[[Notice], None]


class StepRunner:
    def __init__(
        self, engine: RemediationEngine, *, driver: FleetDriver, log: DecisionLog,
        incidents: IncidentLog, limits: GuardLimits, source: MetricSource | None,
        notify: NotifyHook | None, clock: Callable[[], float], recovery_deadline_s: float,
        recovery_poll_s: float, verify_timeout_s: float,
    ) -> None:
        self._engine = engine
        self._driver = driver
        self._log = log
        self._incidents = incidents
        self._limits = limits
        self._source = source
        self._notify = notify
        self._clock = clock
        self._recovery_deadline_s = recovery_deadline_s
        self._recovery_poll_s = recovery_poll_s
        self._verify_timeout_s = verify_timeout_s
        self._watches: list[threading.Thread] = []
        self._stopping = threading.Event()

    # --- a policy's steps --------------------------------------------------------------

    def run_rule(self, rule: PolicyRule, context: AlertContext) -> list[Decision]:
        alertname, fingerprint = context.alertname, context.fingerprint
        actor = f"policy:{rule.name}"
        node = context.labels.get(rule.node_label, "")
        now_s = self._clock()
        if not node:
            return [self._engine.record(
                action=rule.action, node="", outcome=Outcome.REFUSED, guard=ALERT_WITHOUT_NODE,
                reason=(f"alert {alertname} matched policy {rule.name} but has no "
                        f"{rule.node_label!r} label naming the node"),
                actor=actor, alertname=alertname, alert_fingerprint=fingerprint,
                started_at_s=now_s, finished_at_s=now_s, evidence=context.evidence(),
            )]
        incident_id = self._incidents.open_for(
            node=node, alertname=alertname, fingerprint=fingerprint, at_s=now_s)
        why = f"alert {alertname} fired for {node} (policy {rule.name})"
        decisions: list[Decision] = []
        for step in rule.steps:
            if step.action in MESSAGE_STEPS:
                summary = context.annotations.get("summary", "")
                message = step.params.get("message") or f"{why}{': ' if summary else ''}{summary}"
                decisions.append(self.message(
                    step.action, node, step.params.get("receiver"), message, actor=actor,
                    context=context, incident_id=incident_id))
                continue
            action, params, step_why = step.action, dict(step.params), why
            ladder = self._ladder(node) if action == "cycle" else None
            if ladder is not None:
                action, params["flag"] = "drain", HARDWARE_INSPECTION
                step_why = f"{why}; {ladder}"
            decision = self._engine._decide(
                action, node, actor=actor, why=step_why, context=context, params=params,
                dry_run=rule.mode == "dry-run", approval=rule.mode == "approval",
                raise_unknown=False, incident_id=incident_id, alertname=alertname,
                fingerprint=fingerprint,
            )
            decisions.append(decision)
            if ladder is not None and decision.outcome == Outcome.SUCCEEDED:
                decisions.append(self.message(
                    "escalate", node, None,
                    f"{node} drained and flagged for hardware inspection: {ladder}",
                    actor=actor, context=context, incident_id=incident_id))
            if decision.outcome not in _GOES_ON:
                break
        return decisions

    def _ladder(self, node: str) -> str | None:
        """Why a cycle of `node` becomes a drain: it was cycled too often recently."""
        since_s = self._clock() - self._limits.ladder_window_s
        cycles = self._log.since(since_s, actions=("cycle",), outcomes=ACTED, node=node)
        if len(cycles) < self._limits.escalate_after_cycles:
            return None
        return (f"escalation ladder: {node} was cycled {len(cycles)} times in the last "
                f"{self._limits.ladder_window_s:g} s (limit "
                f"{self._limits.escalate_after_cycles}); draining it instead")

    # --- messages ----------------------------------------------------------------------

    def send(self, notice: Notice) -> Outcome:
        """Hand a notice to the hook; SKIPPED when there is none (it is logged either way)."""
        logger.warning("remediation %s%s: %s", notice.kind,
                       f" to {notice.receiver}" if notice.receiver else "", notice.message)
        if self._notify is None:
            return Outcome.SKIPPED
        try:
            self._notify(notice)
        except Exception:
            logger.exception("the remediation notify hook failed on a %s", notice.kind)
            return Outcome.FAILED
        return Outcome.SUCCEEDED

    def message(
        self, kind: str, node: str, receiver: str | None, text: str, *, actor: str,
        context: AlertContext | None, incident_id: int | None,
    ) -> Decision:
        """Send a notify/escalate notice and record it in the audit trail and incident."""
        outcome = self.send(Notice(kind, receiver, text, node, incident_id))
        now_s = self._clock()
        if incident_id is not None:
            self._incidents.add_note(incident_id, f"{kind}: {text}", at_s=now_s)
        sent = {Outcome.SUCCEEDED: "sent", Outcome.SKIPPED: "logged (no notify hook)",
                Outcome.FAILED: "the notify hook failed"}[outcome]
        return self._engine.record(
            action=kind, node=node, outcome=outcome, reason=f"{text} ({sent})", actor=actor,
            alertname=None if context is None else context.alertname,
            alert_fingerprint=None if context is None else context.fingerprint,
            started_at_s=now_s, finished_at_s=now_s,
            params={"receiver": receiver} if receiver else {},
            evidence="" if context is None else context.evidence(), incident_id=incident_id,
        )

    # --- acting ------------------------------------------------------------------------

    def act(
        self, action: str, node: str, *, actor: str, why: str, alertname: str | None,
        fingerprint: str | None, started_at_s: float, params: Mapping[str, str],
        evidence: str, incident_id: int | None, context: AlertContext | None,
        existing: Decision | None, approved_by: str | None,
    ) -> Decision:
        # Stored as failed until verified: if this process dies mid-action, that is the truth.
        started = f"{why}: {action} started; the engine stopped before it knew the outcome"
        if existing is not None:
            decision = self._log.finish(existing.id, Outcome.FAILED, started, None,
                                        approved_by=approved_by)
        else:
            decision = self._log.record(
                action=action, node=node, outcome=Outcome.FAILED, guard=None, reason=started,
                actor=actor, alertname=alertname, alert_fingerprint=fingerprint,
                started_at_s=started_at_s, finished_at_s=None, params=params,
                evidence=evidence, incident_id=incident_id,
            )
        logger.info("remediation decision %d: %s %s by %s -> started: %s", decision.id,
                    action, node, actor, why)
        try:
            outcome, result = self._perform(action, node, params, incident_id)
        except Exception as error:
            if not isinstance(error, FleetDriverError):
                logger.exception("the fleet driver raised while trying to %s %s", action, node)
            return self._finish(decision, Outcome.FAILED, f"{why}: {action} failed: {error}")
        finished = self._finish(decision, outcome, f"{why}: {result}")
        if (outcome == Outcome.SUCCEEDED and context is not None and self._source is not None
                and action in ("drain", "cycle", "reroute") and context.expr is not None):
            self._start_watch(finished, context)
        return finished

    def _perform(self, action: str, node: str, params: Mapping[str, str],
                 incident_id: int | None) -> tuple[Outcome, str]:
        if action == "reroute":
            weight = float(params.get("weight", "0"))
            self._driver.set_weight(node, weight)
            return Outcome.SUCCEEDED, f"routing weight of {node} set to {weight:g}"
        if action == "profile":
            return Outcome.SUCCEEDED, self._diagnose(node, float(params.get("seconds", "5")),
                                                     incident_id)
        getattr(self._driver, action)(node)
        reached, result = await_node_state(self._driver.nodes, action, node,
                                           self._verify_timeout_s)
        if reached:
            return Outcome.SUCCEEDED, result
        if action == "cycle":
            return Outcome.FAILED, f"{result}; {self._keep_drained(node, incident_id)}"
        return Outcome.FAILED, result

    def _keep_drained(self, node: str, incident_id: int | None) -> str:
        """A node that fails its health check after a cycle stays out of rotation."""
        try:
            self._driver.drain(node)
            done = f"{node} is kept drained"
        except Exception as error:
            done = f"draining {node} failed too ({error})"
        self.message("escalate", node, None,
                     f"{node} failed its health check after a cycle; {done}",
                     actor="engine:verification", context=None, incident_id=incident_id)
        return f"{done} and the failure was escalated"

    def _diagnose(self, node: str, seconds: float, incident_id: int | None) -> str:
        """Profile `node` and a healthy peer at once, diff, attach the diff to the incident."""
        peer = next((s.name for s in self._driver.nodes() if s.name != node
                     and s.status == NodeStatus.SERVING and s.healthy), None)
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="profile") as pool:
            suspect_future = pool.submit(self._driver.profile, node, seconds)
            peer_future = None if peer is None else pool.submit(self._driver.profile, peer,
                                                                seconds)
            suspect: ProfileTable = suspect_future.result()
            peer_table = None if peer_future is None else peer_future.result()
        if peer_table is None:
            top = ", ".join(f"{op.name} {op.share:.1%}" for op in suspect.ops[:5])
            note = f"kernel profile of {node} (no healthy peer to compare): {top}"
            headline = note
        else:
            regressions = diff_profiles(suspect, peer_table)
            note = regression_note(suspect, peer_table, regressions)
            headline = (f"profiled {node} and peer {peer} for {seconds:g} s; " + (
                f"top regressed op: {regressions[0].name} ({regressions[0].peer_share:.1%} -> "
                f"{regressions[0].suspect_share:.1%})" if regressions else
                "no op's share rose"))
        if incident_id is not None:
            self._incidents.add_note(incident_id, note, at_s=self._clock())
        return headline

    def _finish(self, decision: Decision, outcome: Outcome, reason: str) -> Decision:
        from ._engine import log_decision

        finished = self._log.finish(decision.id, outcome, reason, self._clock())
        log_decision(finished)
        return finished

    # --- the recovery watch ------------------------------------------------------------

    def _start_watch(self, decision: Decision, context: AlertContext) -> None:
        thread = threading.Thread(target=self._watch, args=(decision, context),
                                  name=f"remediation-verify-{decision.id}", daemon=True)
        self._watches = [t for t in self._watches if t.is_alive()] + [thread]
        thread.start()

    def wait_watches(self, timeout_s: float) -> None:
        for thread in list(self._watches):
            thread.join(timeout_s)

    def stop_watches(self, timeout_s: float) -> None:
        """End every recovery watch without acting on it (the engine is closing)."""
        self._stopping.set()
        self.wait_watches(timeout_s)

    def _watch(self, decision: Decision, context: AlertContext) -> None:
        try:
            assert self._source is not None
            recovered, result = watch_recovery(
                self._source, context, decision.node, deadline_s=self._recovery_deadline_s,
                clock=self._clock, stop=self._stopping, poll_s=self._recovery_poll_s)
            if recovered is None:
                return
            if recovered:
                if decision.incident_id is not None:
                    self._incidents.add_note(decision.incident_id,
                                             f"verified after decision {decision.id}: {result}",
                                             at_s=self._clock())
                return
            self._not_recovered(decision, result)
        except Exception:
            logger.exception("the recovery watch of decision %d failed", decision.id)

    def _not_recovered(self, decision: Decision, result: str) -> None:
        """Roll a drain back when the node is healthy (draining did not help, and it costs
        capacity); otherwise keep it out. Escalate either way."""
        node = decision.node
        with self._engine._lock:
            state = next((s for s in self._driver.nodes() if s.name == node), None)
            if decision.action == "drain" and state is not None and state.healthy:
                now_s = self._clock()
                self._driver.undrain(node)
                self._log.finish(decision.id, Outcome.ROLLED_BACK,
                                 f"{decision.reason}; rolled back: {result}", now_s)
                self._engine.record(
                    action="undrain", node=node, outcome=Outcome.SUCCEEDED,
                    reason=f"roll back of decision {decision.id}: {result}; {node} is healthy",
                    actor="engine:verification", alertname=decision.alertname,
                    alert_fingerprint=decision.alert_fingerprint, started_at_s=now_s,
                    finished_at_s=now_s, evidence=decision.evidence,
                    incident_id=decision.incident_id,
                )
                text = f"{decision.action} of {node} did not help ({result}); rolled back"
            else:
                kept = "" if state is None else f" ({node} is {state.status})"
                text = f"{decision.action} of {node} did not help ({result}){kept}"
        self.message("escalate", node, None, text, actor="engine:verification",
                     context=AlertContext.from_evidence(decision.evidence,
                                                        decision.alert_fingerprint),
                     incident_id=decision.incident_id)
