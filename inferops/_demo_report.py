"""The demo's record of an incident: the live timeline, the JSON report and the verdict.

Kept apart from the orchestration in `_demo.py` so the report's shape and the rule for
"the loop closed" can be read, and tested, without starting a fleet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from alerting import Alert, AlertState
from remediation import Decision, Outcome

from ._load import RequestRecord

POST_MITIGATION_GRACE_S = 1.0
"""Requests started this long after the drain finished must all succeed."""


class Timeline:
    """Prints each event once, with seconds since the demo started."""

    def __init__(self, out: Callable[[str], None], started_at_s: float) -> None:
        self._out = out
        self._started = started_at_s
        self._seen: set[tuple[str, ...]] = set()

    def say(self, text: str, at_s: float | None = None) -> None:
        offset = (at_s if at_s is not None else time.time()) - self._started
        self._out(f"  +{offset:6.1f}s  {text}")

    def alert(self, alert: Alert) -> None:
        labels = " ".join(
            f"{k}={v}" for k, v in sorted(alert.labels.items()) if k in ("node", "slo", "severity")
        )
        name = alert.labels.get("alertname", "?")
        if alert.fired_at_s is not None and self._once(
            "firing", alert.fingerprint, str(alert.fired_at_s)
        ):
            self.say(f"ALERT firing    {name} {labels}", alert.fired_at_s)
        if (
            alert.state == AlertState.RESOLVED
            and alert.fired_at_s is not None
            and alert.resolved_at_s is not None
            and self._once("resolved", alert.fingerprint, str(alert.resolved_at_s))
        ):
            self.say(f"ALERT resolved  {name} {labels}", alert.resolved_at_s)

    def decision(self, decision: Decision) -> None:
        if decision.finished_at_s is None and decision.outcome not in (
            Outcome.REFUSED,
            Outcome.DRY_RUN,
            Outcome.SKIPPED,
        ):
            return
        if self._once("decision", str(decision.id)):
            guard = f" [guard: {decision.guard}]" if decision.guard else ""
            self.say(
                f"REMEDIATION     {decision.action} {decision.node} -> {decision.outcome}{guard}: "
                f"{decision.reason}",
                decision.finished_at_s or decision.started_at_s,
            )

    def _once(self, *key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def build_report(
    *,
    fault: str,
    node: str,
    injected_at_s: float,
    alerts: list[Alert],
    decisions: list[Decision],
    records: list[RequestRecord],
    slo_statuses: list[dict[str, Any]],
) -> dict[str, Any]:
    """The demo report (unix-second timestamps), as the README documents it."""
    detections = sorted(
        (
            a
            for a in alerts
            if a.labels.get("node") == node
            and a.fired_at_s is not None
            and a.fired_at_s >= injected_at_s
        ),
        key=lambda a: a.fired_at_s or 0.0,
    )
    detection = detections[0] if detections else None
    after = sorted((d for d in decisions if d.started_at_s >= injected_at_s), key=lambda d: d.id)
    mitigation = next(
        (
            d
            for d in after
            if d.node == node
            and d.action == "drain"
            and d.outcome == Outcome.SUCCEEDED
            and d.finished_at_s is not None
        ),
        None,
    )
    return {
        "fault": {"kind": fault, "node": node, "injected_at": injected_at_s},
        "detection": None
        if detection is None
        else {
            "alert": detection.labels.get("alertname"),
            "node": node,
            "fired_at": detection.fired_at_s,
        },
        "remediation": [
            {
                "action": d.action,
                "node": d.node,
                "started_at": d.started_at_s,
                "finished_at": d.finished_at_s,
                "outcome": str(d.outcome),
            }
            for d in after
        ],
        "requests": {
            "total": len(records),
            "succeeded": sum(r.ok for r in records),
            "failed": sum(not r.ok for r in records),
        },
        "slos": slo_statuses,
        "time_to_detect_s": None
        if detection is None or detection.fired_at_s is None
        else round(detection.fired_at_s - injected_at_s, 3),
        "time_to_mitigate_s": None
        if mitigation is None or mitigation.finished_at_s is None
        else round(mitigation.finished_at_s - injected_at_s, 3),
    }


def loop_closed(report: dict[str, Any], records: list[RequestRecord]) -> tuple[bool, str]:
    """The demo's verdict: detected, the faulted node drained, no healthy node drained, and
    requests started after mitigation all succeeded."""
    node = report["fault"]["node"]
    if report["detection"] is None:
        return False, f"no alert named {node} after the fault was injected"
    if report["time_to_mitigate_s"] is None:
        return False, f"{node} was not drained"
    wrongly = sorted(
        {
            r["node"]
            for r in report["remediation"]
            if r["node"] != node
            and r["outcome"] == "succeeded"
            and r["action"] in ("drain", "cycle")
        }
    )
    if wrongly:
        return False, f"healthy node(s) {', '.join(wrongly)} were drained"
    mitigated_at = report["fault"]["injected_at"] + report["time_to_mitigate_s"]
    later = [r for r in records if r.started_at_s >= mitigated_at + POST_MITIGATION_GRACE_S]
    failed = [r for r in later if not r.ok]
    if not later:
        return False, "no requests were sent after mitigation"
    if failed:
        return (
            False,
            f"{len(failed)} of {len(later)} requests after mitigation failed ({failed[0].error})",
        )
    return True, f"{len(later)} requests after mitigation, all succeeded"


def print_summary(
    out: Callable[[str], None], report: dict[str, Any], closed: bool, why: str
) -> None:
    """The incident summary a person reads at the end of the demo."""
    out("")
    out("Incident summary")
    fault = report["fault"]
    out(f"  fault:        {fault['kind']} on {fault['node']}")
    detection = report["detection"]
    out(
        f"  detected by:  {detection['alert']} after {report['time_to_detect_s']:.1f} s"
        if detection
        else "  detected by:  nothing"
    )
    out(
        f"  mitigated:    drained {fault['node']} after {report['time_to_mitigate_s']:.1f} s"
        if report["time_to_mitigate_s"] is not None
        else "  mitigated:    no"
    )
    req = report["requests"]
    out(
        f"  requests:     {req['total']} sent, {req['succeeded']} succeeded, {req['failed']} failed"
    )
    for slo in report["slos"]:
        budget = slo["budget_remaining"]
        sli = slo["sli"]
        out(
            f"  SLO {slo['name']}: objective {slo['objective']:.2%}, SLI "
            f"{'n/a' if sli is None else f'{sli:.3%}'}, error budget remaining "
            f"{'n/a' if budget is None else f'{budget:.1%}'}"
        )
    out(f"  verdict:      {'loop closed' if closed else 'loop NOT closed'}: {why}")
