"""Every alert instance the engine ever created, in the shared database.

The engine writes; the dashboard, the demo and the CLI read (`active()`, `recent()`). A
restarted engine reads the open (pending and firing) instances back and carries on: the same
instance keeps firing and is not notified again before its repeat interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ._alert import Alert, AlertState
from ._outbox import OutboxEntry, insert_entries, outbox_metadata

_metadata = sa.MetaData()
_alerts = sa.Table(
    "alerts",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_key", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(16), nullable=False),
    sa.Column("alertname", sa.String(255), nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("annotations", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("active_at_s", sa.Double, nullable=False),
    sa.Column("fired_at_s", sa.Double, nullable=True),
    sa.Column("resolved_at_s", sa.Double, nullable=True),
    sa.Column("last_evaluated_at_s", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("notified_at_s", sa.Double, nullable=True),
    sa.Column("generator_url", sa.Text, nullable=False),
    sa.Index("ix_alerts_state", "state"),
    sa.Index("ix_alerts_active_at", "active_at_s", "id"),
    sa.Index("ix_alerts_fingerprint", "fingerprint"),
)

_OPEN = (str(AlertState.PENDING), str(AlertState.FIRING))


@dataclass(slots=True)
class AlertInstance:
    """The engine's working copy of one stored alert instance (mutable; `id` is None until
    it was first saved). `rule_key` ties it to the rule that made it; `notified_at_s` is
    when it was last sent as firing."""

    rule_key: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    active_at_s: float
    last_evaluated_at_s: float
    generator_url: str
    value: float | None = None
    fired_at_s: float | None = None
    resolved_at_s: float | None = None
    notified_at_s: float | None = None
    id: int | None = None

    def to_alert(self) -> Alert:
        return Alert(
            fingerprint=self.fingerprint,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            state=self.state,
            active_at_s=self.active_at_s,
            fired_at_s=self.fired_at_s,
            resolved_at_s=self.resolved_at_s,
            generator_url=self.generator_url,
            value=self.value,
            last_evaluated_at_s=self.last_evaluated_at_s,
        )


class AlertStore:
    """Alert instances in table `alerts` (created when missing) of a SQLAlchemy engine
    (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine, checkfirst=True)
        outbox_metadata.create_all(engine, checkfirst=True)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def active(self) -> list[Alert]:
        """Pending and firing alerts, newest first."""
        query = _newest_first(sa.select(_alerts).where(_alerts.c.state.in_(_OPEN)))
        with self._engine.connect() as connection:
            return [_instance(row).to_alert() for row in connection.execute(query)]

    def recent(self, limit: int = 100) -> list[Alert]:
        """The latest `limit` alert instances in any state, newest first (by the time they
        became active, then by id)."""
        query = _newest_first(sa.select(_alerts)).limit(limit)
        with self._engine.connect() as connection:
            return [_instance(row).to_alert() for row in connection.execute(query)]

    def open_instances(self) -> list[AlertInstance]:
        """Pending and firing instances with their engine bookkeeping, oldest first."""
        query = (
            sa.select(_alerts)
            .where(_alerts.c.state.in_(_OPEN))
            .order_by(_alerts.c.active_at_s, _alerts.c.id)
        )
        with self._engine.connect() as connection:
            return [_instance(row) for row in connection.execute(query)]

    def save(
        self, instances: Sequence[AlertInstance], notifications: Sequence[OutboxEntry] = ()
    ) -> None:
        """Insert new instances and update the others, and add `notifications` to the
        outbox, in one transaction (so a crash keeps both or neither); new instances get
        their `id` once it committed."""
        if not instances and not notifications:
            return
        updates = [
            {"key": instance.id, **_values(instance)}
            for instance in instances if instance.id is not None
        ]
        inserted: list[tuple[AlertInstance, int]] = []
        with self._engine.begin() as connection:
            for instance in instances:
                if instance.id is None:
                    result = connection.execute(sa.insert(_alerts).values(**_values(instance)))
                    key = result.inserted_primary_key
                    if key is None:
                        raise RuntimeError("the database returned no id for a new alert")
                    inserted.append((instance, int(key[0])))
            if updates:
                statement = (
                    sa.update(_alerts)
                    .where(_alerts.c.id == sa.bindparam("key"))
                    .values({name: sa.bindparam(name) for name in _UPDATED})
                )
                connection.execute(statement, updates)
            insert_entries(connection, notifications)
        for instance, key in inserted:  # only once committed: a failed save is retried whole
            instance.id = key


_UPDATED = (
    "annotations", "state", "fired_at_s", "resolved_at_s", "last_evaluated_at_s", "value",
    "notified_at_s",
)


def _newest_first(query: sa.Select[tuple[object, ...]]) -> sa.Select[tuple[object, ...]]:
    return query.order_by(_alerts.c.active_at_s.desc(), _alerts.c.id.desc())


def _values(instance: AlertInstance) -> dict[str, object]:
    value = instance.value
    return {
        "rule_key": instance.rule_key,
        "fingerprint": instance.fingerprint,
        "alertname": instance.labels.get("alertname", ""),
        "labels": json.dumps(instance.labels, sort_keys=True, ensure_ascii=False),
        "annotations": json.dumps(instance.annotations, sort_keys=True, ensure_ascii=False),
        "state": str(instance.state),
        "active_at_s": instance.active_at_s,
        "fired_at_s": instance.fired_at_s,
        "resolved_at_s": instance.resolved_at_s,
        "last_evaluated_at_s": instance.last_evaluated_at_s,
        "value": None if value is None or math.isnan(value) else value,
        "notified_at_s": instance.notified_at_s,
        "generator_url": instance.generator_url,
    }


def _optional(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _instance(row: sa.Row[tuple[object, ...]]) -> AlertInstance:
    mapping = row._mapping
    return AlertInstance(
        id=int(mapping["id"]),
        rule_key=str(mapping["rule_key"]),
        fingerprint=str(mapping["fingerprint"]),
        labels={str(k): str(v) for k, v in json.loads(str(mapping["labels"])).items()},
        annotations={
            str(k): str(v) for k, v in json.loads(str(mapping["annotations"])).items()
        },
        state=AlertState(mapping["state"]),
        active_at_s=float(mapping["active_at_s"]),
        fired_at_s=_optional(mapping["fired_at_s"]),
        resolved_at_s=_optional(mapping["resolved_at_s"]),
        last_evaluated_at_s=float(mapping["last_evaluated_at_s"]),
        value=_optional(mapping["value"]),
        notified_at_s=_optional(mapping["notified_at_s"]),
        generator_url=str(mapping["generator_url"]),
    )
