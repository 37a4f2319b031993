"""The Alertmanager version-4 webhook body, field for field as Alertmanager 0.25 sends it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from ._alert import Alert, AlertState
from ._fingerprint import label_set_string

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero `time.Time`: Alertmanager's `endsAt` of an alert that still fires."""

ROOT_ROUTE_KEY = "{}"
"""The route part of a group key for Alertmanager's root route, the only route here."""

GROUP_BY_ALL = "..."
"""Alertmanager's `group_by: ['...']`: every label is a grouping label."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(at_s: float) -> str:
    """Unix seconds as RFC 3339 in UTC with milliseconds: `2026-11-22T10:26:35.168Z`."""
    millis = round(at_s * 1000)
    moment = _EPOCH + timedelta(milliseconds=millis)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def generator_url(external_url: str, expr: str) -> str:
    """Prometheus's link to the rule's expression in its table view."""
    return f"{external_url.rstrip('/')}/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1"


def group_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    """The grouping labels an alert has (`...` means all of them), as Alertmanager picks."""
    if GROUP_BY_ALL in group_by:
        return dict(sorted(labels.items()))
    return {name: labels[name] for name in sorted(set(group_by)) if name in labels}


def group_key(labels: Mapping[str, str]) -> str:
    """Alertmanager's group key under the root route: `{}:{alertname="X"}`."""
    return f"{ROOT_ROUTE_KEY}:{label_set_string(labels)}"


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {name: value for name, value in common.items() if other.get(name) == value}
    return dict(sorted(common.items()))


def _alert_body(alert: Alert) -> dict[str, Any]:
    if alert.state == AlertState.PENDING:
        raise ValueError(
            f"alert {alert.labels.get('alertname', '?')} ({alert.fingerprint}) is pending: "
            "only firing and resolved alerts are notified"
        )
    resolved = alert.state == AlertState.RESOLVED
    starts_at = alert.fired_at_s if alert.fired_at_s is not None else alert.active_at_s
    ends_at = alert.resolved_at_s if resolved else None
    return {
        "status": "resolved" if resolved else "firing",
        "labels": dict(sorted(alert.labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "startsAt": rfc3339(starts_at),
        "endsAt": ZERO_TIME if ends_at is None else rfc3339(ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def alertmanager_payload(
    alerts: Sequence[Alert],
    *,
    receiver: str,
    group_labels: Mapping[str, str],
    external_url: str,
) -> dict[str, Any]:
    """One group's notification: `status` is `firing` when any alert fires, else `resolved`;
    `commonLabels`/`commonAnnotations` are the pairs every alert shares; alerts keep the
    given order. Pending alerts are refused (`ValueError`): Prometheus never sends them."""
    bodies = [_alert_body(alert) for alert in alerts]
    firing = any(body["status"] == "firing" for body in bodies)
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": bodies,
        "groupLabels": dict(sorted(group_labels.items())),
        "commonLabels": _common([alert.labels for alert in alerts]),
        "commonAnnotations": _common([alert.annotations for alert in alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key(group_labels),
        "truncatedAlerts": 0,
    }
