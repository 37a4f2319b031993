"""Incident timelines and the alerts each SLO drives, from the alert store and the audit log.

An incident is everything that happened about one alert, keyed by its fingerprint: when it
went pending, fired and resolved, and every remediation decision taken (or refused) on it,
in order. That is the story an engineer reconstructs after a page; the page tells it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ._records import AlertRecord, DecisionRecord
from ._rows import Incident, IncidentEvent, SloAlert

_STATE_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


def slo_alerts(alerts: Iterable[AlertRecord]) -> dict[str, tuple[SloAlert, ...]]:
    """SLO name -> the alerts labelled `slo=<name>`, each by its latest instance.

    One entry per alert name and severity (a burn-rate rule fires at `page` and `ticket`),
    firing first, then pending, then resolved, then by name.
    """
    latest: dict[tuple[str, str, str | None], AlertRecord] = {}
    for alert in alerts:
        slo = alert.labels.get("slo")
        if slo is None:
            continue
        key = (slo, alert.labels.get("alertname", ""), alert.labels.get("severity"))
        seen = latest.get(key)
        if seen is None or alert.active_at_s > seen.active_at_s:
            latest[key] = alert
    by_slo: dict[str, list[SloAlert]] = defaultdict(list)
    for (slo, alertname, severity), alert in latest.items():
        by_slo[slo].append(SloAlert(alertname=alertname, severity=severity, state=str(alert.state)))
    return {
        slo: tuple(
            sorted(
                entries,
                key=lambda entry: (
                    _STATE_ORDER.get(entry.state, 3),
                    entry.alertname,
                    entry.severity or "",
                ),
            )
        )
        for slo, entries in by_slo.items()
    }


def incidents(alerts: Iterable[AlertRecord], decisions: Iterable[DecisionRecord]) -> list[Incident]:
    """One incident per alert fingerprint that has a decision or an alert instance, plus
    one per decision no alert asked for (a manual drain, say); the most recently active
    incident first (an old alert that fired again comes back to the top)."""
    events: dict[str, list[IncidentEvent]] = defaultdict(list)
    names: dict[str, str | None] = {}
    nodes: dict[str, str | None] = {}
    seen_instances: set[tuple[str, float]] = set()
    for alert in alerts:
        if (alert.fingerprint, alert.active_at_s) in seen_instances:
            continue
        seen_instances.add((alert.fingerprint, alert.active_at_s))
        key = alert.fingerprint
        names[key] = alert.labels.get("alertname")
        nodes.setdefault(key, alert.labels.get("node"))
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        events[key].append(
            IncidentEvent(alert.active_at_s, "pending", _sentence("pending", summary))
        )
        if alert.fired_at_s is not None:
            events[key].append(
                IncidentEvent(alert.fired_at_s, "firing", _sentence("fired", summary))
            )
        if alert.resolved_at_s is not None:
            events[key].append(IncidentEvent(alert.resolved_at_s, "resolved", "resolved"))
    for decision in decisions:
        key = decision.alert_fingerprint or f"decision-{decision.id}"
        names.setdefault(key, decision.alertname)
        nodes.setdefault(key, decision.node)
        guard = f" [guard: {decision.guard}]" if decision.guard else ""
        events[key].append(
            IncidentEvent(
                decision.started_at_s,
                "decision",
                f"{decision.action} {decision.node} by {decision.actor}: "
                f"{decision.outcome}{guard}: {decision.reason}",
                outcome=str(decision.outcome),
            )
        )
    found = [
        Incident(
            key=key,
            alertname=names.get(key),
            node=nodes.get(key),
            # Stable for equal instants: an alert's own transitions before the decisions.
            events=tuple(sorted(timeline, key=lambda event: event.at_s)),
        )
        for key, timeline in events.items()
    ]
    found.sort(key=lambda incident: (-incident.events[-1].at_s, incident.key))
    return found


def _sentence(verb: str, summary: str) -> str:
    return f"{verb}: {summary}" if summary else verb
