"""The game-day verdict: one scenario's numbers, its unsafe actions and its pass/fail.

Pure functions over what the run recorded (alerts, the decision log, every request, what
the webhook receiver got), so the rules in docs/gamedays.md are tested without a fleet.

An action is *unsafe* when the control plane, through a succeeded `drain`, `cycle` or
`reroute`:
- took out a node the scenario did not break, or any node before the fault (a healthy
  node; in the scrape-down drill the node whose monitoring, not serving, was broken is
  healthy too), or
- left more nodes taken out at once than the game day's disruption budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from alerting import Alert
from remediation import Decision, Outcome

from ._demo_report import POST_MITIGATION_GRACE_S
from ._gameday_scenarios import Scenario
from ._load import RequestRecord

ACTED = frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.ROLLED_BACK})
"""Outcomes of decisions that touched (or may have touched) the fleet."""
TAKES_OUT = ("drain", "cycle", "reroute")
"""Actions that take a node out of service (a reroute sets its weight, usually to 0)."""


def unsafe_actions(
    decisions: Sequence[Decision], *, faulty_nodes: Iterable[str], max_nodes_out: int,
    injected_at_s: float, scrape_blocked: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Every succeeded action that took out a healthy node or exceeded the budget, in order;
    before `injected_at_s` every node was healthy."""
    faulty = set(faulty_nodes)
    blocked = set(scrape_blocked)
    out: set[str] = set()
    unsafe: list[dict[str, Any]] = []
    for decision in sorted(decisions, key=lambda d: (d.started_at_s, d.id)):
        if decision.outcome != Outcome.SUCCEEDED:
            continue
        if decision.action == "undrain":
            out.discard(decision.node)
            continue
        if decision.action not in TAKES_OUT:
            continue
        why: str | None = None
        if decision.started_at_s < injected_at_s:
            why = f"took out {decision.node} before any fault, while it was healthy"
        elif decision.node not in faulty:
            why = (
                f"acted on {decision.node}, whose scrape was broken but which was healthy"
                if decision.node in blocked
                else f"took out {decision.node}, a healthy node"
            )
        if decision.action == "drain":
            out.add(decision.node)
        if why is None and len(out) > max_nodes_out:
            why = (
                f"{len(out)} nodes taken out ({', '.join(sorted(out))}), over the disruption "
                f"budget of {max_nodes_out}"
            )
        if why is not None:
            unsafe.append({"decision_id": decision.id, "action": decision.action,
                           "node": decision.node, "why": why})
    return unsafe


def missing_notifications(
    alerts: Sequence[Alert], received: Sequence[Mapping[str, Any]], *, settled_before_s: float
) -> list[str]:
    """`alertname node status` of each alert transition (fired, or resolved after firing,
    before `settled_before_s`) that no webhook body carried; empty when nothing was lost."""
    got = {
        (str(alert.get("fingerprint")), str(alert.get("status")))
        for body in received
        for alert in body.get("alerts", [])
    }
    missing: list[str] = []
    for alert in alerts:
        if alert.fired_at_s is None or alert.fired_at_s >= settled_before_s:
            continue
        name = f"{alert.labels.get('alertname', '?')} {alert.labels.get('node', '-')}"
        if (alert.fingerprint, "firing") not in got and (alert.fingerprint, "resolved") not in got:
            missing.append(f"{name} firing")
        resolved = alert.resolved_at_s
        if resolved is not None and resolved < settled_before_s and (
            (alert.fingerprint, "resolved") not in got
        ):
            missing.append(f"{name} resolved")
    return sorted(missing)


def scenario_report(
    scenario: Scenario,
    *,
    injected_at_s: float,
    judged_at_s: float,
    alerts: Sequence[Alert],
    decisions: Sequence[Decision],
    records: Sequence[RequestRecord],
    availability_objective: float,
    max_nodes_out: int,
    received: Sequence[Mapping[str, Any]] | None = None,
    kill: Mapping[str, Any] | None = None,
    drained_at_end: Sequence[str] = (),
) -> dict[str, Any]:
    """One scenario's report (unix-second timestamps) with its checks and verdict. `kill`
    describes the control-plane kill (`decision_id` in flight or None, `node`,
    `node_drained_at_kill`, `killed_at`, `restarted_at`); `drained_at_end`: the nodes the
    router had drained when the scenario was judged."""
    faulty = set(scenario.faulty_nodes)
    expect = scenario.expect
    detections = sorted(
        (a for a in alerts
         if a.labels.get("node") in faulty and a.fired_at_s is not None
         and a.fired_at_s >= injected_at_s
         and (not expect.detect_alerts or a.labels.get("alertname") in expect.detect_alerts)),
        key=lambda a: a.fired_at_s or 0.0,
    )
    detection = detections[0] if detections else None
    drains = [d for d in decisions if d.action == "drain" and d.outcome == Outcome.SUCCEEDED
              and d.finished_at_s is not None and d.started_at_s >= injected_at_s]
    mitigation = min((d for d in drains if d.node in faulty),
                     key=lambda d: d.finished_at_s or 0.0, default=None)
    ttd = None if detection is None else round((detection.fired_at_s or 0.0) - injected_at_s, 3)
    ttm = (None if mitigation is None or mitigation.finished_at_s is None
           else round(mitigation.finished_at_s - injected_at_s, 3))
    if ttm is None and kill is not None and kill["node_drained_at_kill"]:
        # The killed process drained it but never recorded the end: at the latest, the kill.
        ttm = round(kill["killed_at"] - injected_at_s, 3)
    failed = [r for r in records if not r.ok]
    in_flight = [r for r in failed if r.started_at_s <= injected_at_s < r.finished_at_s]
    mitigated_at = None if ttm is None else injected_at_s + ttm
    after = ([] if mitigated_at is None else
             [r for r in failed if r.started_at_s >= mitigated_at + POST_MITIGATION_GRACE_S])
    budget = 1.0 - availability_objective
    consumed = (len(failed) / len(records) / budget) if records and budget > 0 else None
    unsafe = unsafe_actions(
        decisions, faulty_nodes=faulty, max_nodes_out=max_nodes_out, injected_at_s=injected_at_s,
        scrape_blocked=[s.node for s in scenario.steps if s.kind == "block-scrape" and s.node],
    )
    lost = None if received is None else missing_notifications(
        alerts, received, settled_before_s=judged_at_s - 5.0)
    checks = _checks(scenario, ttd=ttd, ttm=ttm, decisions=decisions, unsafe=unsafe,
                     failed_after=len(after), lost=lost, injected_at_s=injected_at_s)
    if expect.resumes_action:
        checks.extend(_kill_checks(kill, decisions, drained_at_end))
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "faulty_nodes": sorted(faulty),
        "injected_at": injected_at_s,
        "detection": None if detection is None else {
            "alert": detection.labels.get("alertname"), "node": detection.labels.get("node"),
            "fired_at": detection.fired_at_s},
        "time_to_detect_s": ttd,
        "time_to_mitigate_s": ttm,
        "requests": {
            "total": len(records),
            "failed": len(failed),
            "failed_in_flight_at_fault": len(in_flight),
            "failed_after_mitigation": len(after),
        },
        "error_budget_consumed": None if consumed is None else round(consumed, 4),
        "actions": [
            {"id": d.id, "action": d.action, "node": d.node, "outcome": str(d.outcome),
             "guard": d.guard, "alert": d.alertname,
             "at_s": round((d.finished_at_s or d.started_at_s) - injected_at_s, 3)}
            for d in sorted(decisions, key=lambda d: d.id)
        ],
        "unsafe_actions": unsafe,
        "notifications_missing": lost,
        "control_plane_kill": None if kill is None else dict(kill),
        "checks": checks,
        "passed": all(check["ok"] for check in checks),
    }


def _checks(
    scenario: Scenario, *, ttd: float | None, ttm: float | None,
    decisions: Sequence[Decision], unsafe: list[dict[str, Any]], failed_after: int,
    lost: list[str] | None, injected_at_s: float,
) -> list[dict[str, Any]]:
    expect = scenario.expect
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    if expect.detect_alerts:
        wanted = "|".join(expect.detect_alerts)
        check("detected", ttd is not None,
              f"{wanted} fired after {ttd} s" if ttd is not None else f"no {wanted} alert "
              f"named {'/'.join(scenario.faulty_nodes)}")
        if expect.max_detect_s is not None:
            check("detect within target", ttd is not None and ttd <= expect.max_detect_s,
                  f"{'not detected' if ttd is None else f'{ttd} s'} "
                  f"(target <= {expect.max_detect_s:g} s)")
    if expect.mitigate:
        check("mitigated", ttm is not None,
              f"faulty node drained after {ttm} s" if ttm is not None
              else "no faulty node was drained")
        if expect.max_mitigate_s is not None:
            check("mitigate within target", ttm is not None and ttm <= expect.max_mitigate_s,
                  f"{'not mitigated' if ttm is None else f'{ttm} s'} "
                  f"(target <= {expect.max_mitigate_s:g} s)")
        check("no failures after mitigation", ttm is not None and failed_after == 0,
              "not mitigated" if ttm is None
              else f"{failed_after} failed request(s) started after mitigation")
    else:
        acted = [d for d in decisions if d.outcome == Outcome.SUCCEEDED
                 and d.action in TAKES_OUT and d.started_at_s >= injected_at_s]
        check("no remediation", not acted,
              "nothing was taken out" if not acted else
              "; ".join(f"{d.action} {d.node} ({d.alertname})" for d in acted))
    per_node: dict[str, int] = {}
    for d in decisions:
        if d.action == "drain" and d.outcome == Outcome.SUCCEEDED:
            per_node[d.node] = per_node.get(d.node, 0) + 1
    worst = max(per_node.values(), default=0)
    check("drains per node", worst <= expect.max_drains_per_node,
          f"at most {worst} drain(s) of one node (limit {expect.max_drains_per_node})")
    check("no unsafe actions", not unsafe,
          "0 unsafe" if not unsafe else "; ".join(u["why"] for u in unsafe))
    if expect.refused_by is not None:
        refusals = [d for d in decisions
                    if d.outcome == Outcome.REFUSED and d.guard == expect.refused_by]
        check(f"refused by {expect.refused_by}", bool(refusals),
              f"{len(refusals)} action(s) refused: "
              + ", ".join(f"{d.action} {d.node}" for d in refusals) if refusals
              else f"no action was refused by the {expect.refused_by} guard")
    if expect.notifications_complete:
        check("notifications delivered", lost is not None and not lost,
              "every alert transition reached the receiver" if lost == []
              else f"missing: {', '.join(lost or ['no receiver'])}")
    return checks


def _kill_checks(kill: Mapping[str, Any] | None, decisions: Sequence[Decision],
                 drained_at_end: Sequence[str]) -> list[dict[str, Any]]:
    if kill is None:
        return [{"check": "control plane killed", "ok": False, "detail": "it was not killed"}]
    node = kill["node"]
    in_flight = kill.get("decision_id")
    repeats = [d for d in decisions if d.node == node and d.action in TAKES_OUT
               and d.outcome in ACTED and d.started_at_s >= kill["restarted_at"]]
    repeated = bool(kill["node_drained_at_kill"]) and bool(repeats)
    return [
        {"check": "killed mid-action", "ok": in_flight is not None,
         "detail": f"SIGKILL while decision {in_flight} was acting" if in_flight is not None
         else "no action was in flight within 25 s; killed anyway"},
        {"check": "action not lost", "ok": node in drained_at_end,
         "detail": f"{node} {'is' if node in drained_at_end else 'is NOT'} drained at the end"},
        {"check": "action not repeated", "ok": not repeated,
         "detail": (f"{node} was already drained at the kill; after the restart: "
                    + (", ".join(f"{d.action} {d.outcome}" for d in repeats) or "nothing"))
         if kill["node_drained_at_kill"]
         else f"{node} was not drained yet at the kill; after the restart: "
              + (", ".join(f"{d.action} {d.outcome}" for d in repeats) or "nothing")},
    ]


def markdown_table(reports: Sequence[Mapping[str, Any]]) -> str:
    """The game day's summary table (GitHub markdown), one row per scenario."""

    def num(value: Any, fmt: str = "{:.1f}") -> str:
        return "—" if value is None else fmt.format(value)

    lines = [
        "| scenario | detect s | mitigate s | failed (in flight at fault / after mitigation)"
        " | budget used | actions | unsafe | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        req = r["requests"]
        actions = ", ".join(
            f"{a['action']} {a['node']} {a['outcome']}" + (f" [{a['guard']}]" if a["guard"] else "")
            for a in r["actions"]) or "none"
        failing = [c["check"] for c in r["checks"] if not c["ok"]]
        lines.append(
            f"| {r['scenario']} | {num(r['time_to_detect_s'])} | {num(r['time_to_mitigate_s'])}"
            f" | {req['failed']} of {req['total']} ({req['failed_in_flight_at_fault']} / "
            f"{req['failed_after_mitigation']}) | {num(r['error_budget_consumed'], '{:.1f}x')}"
            f" | {actions} | {len(r['unsafe_actions'])} | "
            f"{'PASS' if r['passed'] else 'FAIL: ' + ', '.join(failing)} |"
        )
    return "\n".join(lines) + "\n"
