"""Incidents: the decisions about one alert on one node, grouped into a timeline.

An incident opens with the first decision about an alert (by fingerprint, else by node and
alert name) and stays open until the alert has resolved and the node serves again, so a
drain, the profile diff that explains it and the undrain that ends it read as one story.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

import sqlalchemy as sa

from ._decision_log import Decision, DecisionLog


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    title: str
    node: str
    alertname: str | None
    alert_fingerprint: str | None
    opened_at_s: float
    closed_at_s: float | None
    decisions: tuple[Decision, ...]
    notes: tuple[str, ...]
    """Findings in the order they were added, e.g. the kernel-profile diff."""


_metadata = sa.MetaData()
_incidents = sa.Table(
    "remediation_incidents",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("node", sa.String(255), nullable=False),
    sa.Column("alertname", sa.String(255), nullable=True),
    sa.Column("alert_fingerprint", sa.String(64), nullable=True),
    sa.Column("opened_at_s", sa.Double, nullable=False),
    sa.Column("alert_resolved_at_s", sa.Double, nullable=True),
    sa.Column("closed_at_s", sa.Double, nullable=True),
)
_notes = sa.Table(
    "remediation_incident_notes",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, nullable=False, index=True),
    sa.Column("at_s", sa.Double, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)


class IncidentLog:
    """Incidents in tables `remediation_incidents` and `remediation_incident_notes`."""

    def __init__(self, database: sa.Engine) -> None:
        self._engine = database
        self._decisions = DecisionLog(database)
        _metadata.create_all(database, checkfirst=True)

    def list(self, limit: int = 50) -> list[Incident]:
        """The latest incidents, newest first."""
        query = sa.select(_incidents).order_by(_incidents.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            rows = list(connection.execute(query))
        return [self._incident(row._mapping) for row in rows]

    def get(self, incident_id: int) -> Incident | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(_incidents).where(_incidents.c.id == incident_id)
            ).one_or_none()
        return None if row is None else self._incident(row._mapping)

    def open_for(
        self, *, node: str, alertname: str | None, fingerprint: str | None, at_s: float,
        alert_firing: bool = True,
    ) -> int:
        """The id of the open incident about this alert (by fingerprint, else node and alert
        name), opening one when there is none. A resolved alert that fires again keeps the
        incident open (`alert_firing`); a person acting on it later does not."""
        where = (
            _incidents.c.alert_fingerprint == fingerprint if fingerprint is not None
            else sa.and_(_incidents.c.node == node, _incidents.c.alertname == alertname)
        )
        with self._engine.begin() as connection:
            row = connection.execute(
                sa.select(_incidents.c.id)
                .where(where, _incidents.c.closed_at_s.is_(None))
                .order_by(_incidents.c.id.desc())
                .limit(1)
            ).one_or_none()
            if row is not None and alert_firing:
                connection.execute(
                    sa.update(_incidents).where(_incidents.c.id == row.id)
                    .values(alert_resolved_at_s=None)
                )
            if row is not None:
                return int(row.id)
            title = f"{alertname or 'manual'} on {node or '(no node)'}"
            result = connection.execute(
                sa.insert(_incidents).values(
                    title=title, node=node, alertname=alertname, alert_fingerprint=fingerprint,
                    opened_at_s=at_s,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def add_note(self, incident_id: int, text: str, *, at_s: float) -> None:
        with self._engine.begin() as connection:
            connection.execute(sa.insert(_notes).values(incident_id=incident_id, at_s=at_s,
                                                        text=text))

    def alert_resolved(self, fingerprint: str, *, at_s: float) -> builtins.list[int]:
        """Mark the open incidents of this alert as resolved-alert; returns their ids."""
        with self._engine.begin() as connection:
            rows = list(connection.execute(
                sa.select(_incidents.c.id).where(
                    _incidents.c.alert_fingerprint == fingerprint,
                    _incidents.c.closed_at_s.is_(None),
                )
            ))
            connection.execute(
                sa.update(_incidents)
                .where(_incidents.c.id.in_([row.id for row in rows]))
                .values(alert_resolved_at_s=at_s)
            )
        return [int(row.id) for row in rows]

    def awaiting_close(self) -> bool:
        """Whether an open incident's alert has resolved (it closes once its node serves)."""
        with self._engine.connect() as connection:
            return connection.execute(
                sa.select(_incidents.c.id).where(
                    _incidents.c.closed_at_s.is_(None),
                    _incidents.c.alert_resolved_at_s.is_not(None),
                ).limit(1)
            ).first() is not None

    def close_settled(self, serving_nodes: set[str], *, at_s: float) -> builtins.list[int]:
        """Close every open incident whose alert resolved and whose node serves again."""
        with self._engine.begin() as connection:
            rows = list(connection.execute(
                sa.select(_incidents.c.id, _incidents.c.node).where(
                    _incidents.c.closed_at_s.is_(None),
                    _incidents.c.alert_resolved_at_s.is_not(None),
                )
            ))
            settled: builtins.list[int] = [int(row.id) for row in rows if row.node in serving_nodes]
            if settled:
                connection.execute(
                    sa.update(_incidents).where(_incidents.c.id.in_(settled))
                    .values(closed_at_s=at_s)
                )
        return settled

    def _incident(self, row: sa.RowMapping) -> Incident:
        incident_id = int(row["id"])
        with self._engine.connect() as connection:
            notes = [
                str(note.text) for note in connection.execute(
                    sa.select(_notes.c.text).where(_notes.c.incident_id == incident_id)
                    .order_by(_notes.c.id)
                )
            ]
        closed = row["closed_at_s"]
        return Incident(
            id=incident_id,
            title=str(row["title"]),
            node=str(row["node"]),
            alertname=row["alertname"],
            alert_fingerprint=row["alert_fingerprint"],
            opened_at_s=float(row["opened_at_s"]),
            closed_at_s=None if closed is None else float(closed),
            decisions=tuple(self._decisions.of_incident(incident_id)),
            notes=tuple(notes),
        )
