"""What an alert tells the engine, and what the engine remembers about alerts.

`AlertContext` is the evidence a policy-driven decision reads (labels, annotations, when it
started, the rule's expression from its generator URL) and stores with the decision.
`AlertHistory` keeps each alert's firing/resolved transitions in the database, so flap
detection holds across restarts and processes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class AlertContext:
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str | None = None
    starts_at_s: float | None = None
    expr: str | None = None
    """The alert rule's PromQL, from `generatorURL` (`/graph?g0.expr=...`), when there."""
    node_label: str = "node"

    @classmethod
    def from_evidence(cls, evidence: str, fingerprint: str | None) -> AlertContext | None:
        """The context a pending decision stored, to re-check its guards on approval."""
        try:
            body = json.loads(evidence) if evidence else None
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("labels"), dict):
            return None
        starts = body.get("startsAt")
        return cls(
            labels={str(k): str(v) for k, v in body["labels"].items()},
            annotations={str(k): str(v) for k, v in (body.get("annotations") or {}).items()},
            fingerprint=fingerprint,
            starts_at_s=float(starts) if isinstance(starts, int | float) else None,
            expr=body.get("expr") if isinstance(body.get("expr"), str) else None,
            node_label=str(body.get("node_label", "node")),
        )

    @property
    def alertname(self) -> str | None:
        return self.labels.get("alertname")

    def evidence(self, **extra: object) -> str:
        """JSON text stored with the decision: what it was decided on."""
        body: dict[str, object] = {
            "labels": dict(self.labels), "annotations": dict(self.annotations),
            "startsAt": self.starts_at_s, "expr": self.expr, "node_label": self.node_label,
            **extra,
        }
        return json.dumps(body, sort_keys=True)


def alert_context(
    alert: Mapping[str, Any], labels: Mapping[str, str], node_label: str = "node"
) -> AlertContext:
    """An Alertmanager v4 alert as context; unreadable optional fields are left out."""
    annotations = alert.get("annotations")
    fingerprint = alert.get("fingerprint")
    return AlertContext(
        labels=dict(labels),
        annotations={str(k): str(v) for k, v in annotations.items()}
        if isinstance(annotations, Mapping) else {},
        fingerprint=None if fingerprint is None else str(fingerprint),
        starts_at_s=_rfc3339_s(alert.get("startsAt")),
        expr=_expr_of(alert.get("generatorURL")),
        node_label=node_label,
    )


def _rfc3339_s(value: object) -> float | None:
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _expr_of(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    values = parse_qs(urlsplit(url).query).get("g0.expr")
    return values[0] if values else None


_metadata = sa.MetaData()
_transitions = sa.Table(
    "remediation_alert_transitions",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at_s", sa.Double, nullable=False),
)


class AlertHistory:
    """Firing/resolved transitions per alert fingerprint (repeats of a status are ignored)."""

    def __init__(self, database: sa.Engine) -> None:
        self._engine = database
        _metadata.create_all(database, checkfirst=True)

    def observe(self, fingerprint: str, status: str, *, at_s: float) -> bool:
        """Record `status` if it differs from the alert's last one; True when recorded."""
        with self._engine.begin() as connection:
            last = connection.execute(
                sa.select(_transitions.c.status)
                .where(_transitions.c.fingerprint == fingerprint)
                .order_by(_transitions.c.id.desc()).limit(1)
            ).scalar_one_or_none()
            if last == status:
                return False
            connection.execute(sa.insert(_transitions).values(
                fingerprint=fingerprint, status=status, at_s=at_s))
        return True

    def fired_since(self, fingerprint: str, since_s: float) -> int:
        """How many times the alert started firing at or after `since_s`."""
        with self._engine.connect() as connection:
            return int(connection.execute(
                sa.select(sa.func.count()).select_from(_transitions).where(
                    _transitions.c.fingerprint == fingerprint,
                    _transitions.c.status == "firing",
                    _transitions.c.at_s >= since_s,
                )
            ).scalar_one())
