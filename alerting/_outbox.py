"""The notification outbox: every notification for a durable receiver is a row first.

Alertmanager keeps notifications in memory and loses them when it restarts. Here the engine
writes each notification to table `alert_outbox` in the same transaction as the alert state
change that caused it, so after a kill -9 either both the state change and its notification
are stored or neither is (and the restarted engine makes both again). `DeliveryWorker` sends
the rows and marks them delivered; a row is never deleted or dropped, only delivered.

The dedup key names one notification: the group key, the fingerprint and status of every
alert in it, the group's status and the notification's sequence (the evaluation time in
milliseconds, so a repeat of an unchanged group is a new notification). A crash between a
receiver's answer and the row's `delivered_at_s` sends that row again with the same key:
delivery is at-least-once, and a receiver that remembers the keys it saw drops the
duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

DEDUP_HEADER = "X-InferOps-Dedup-Key"
"""The header carrying a notification's dedup key (32 hex digits) on every delivery."""

outbox_metadata = sa.MetaData()
outbox_table = sa.Table(
    "alert_outbox",
    outbox_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("receiver", sa.String(255), nullable=False),
    sa.Column("dedup_key", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at_s", sa.Double, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at_s", sa.Double, nullable=False),
    sa.Column("delivered_at_s", sa.Double, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.UniqueConstraint("receiver", "dedup_key", name="uq_alert_outbox_receiver_key"),
    sa.Index("ix_alert_outbox_due", "delivered_at_s", "next_attempt_at_s"),
)


def dedup_key(payload: Mapping[str, Any], sequence_ms: int) -> str:
    """The dedup key of one notification body sent at sequence `sequence_ms`."""
    alerts = sorted(
        f"{alert.get('fingerprint', '')}:{alert.get('status', '')}"
        for alert in payload.get("alerts", [])
    )
    identity = json.dumps(
        [payload.get("groupKey", ""), alerts, payload.get("status", ""), sequence_ms],
        ensure_ascii=True,
    )
    return hashlib.sha256(identity.encode("ascii")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One notification for one receiver, as stored. `id` is None until it was inserted."""

    receiver: str
    dedup_key: str
    payload: Mapping[str, Any]
    created_at_s: float
    next_attempt_at_s: float
    attempts: int = 0
    delivered_at_s: float | None = None
    last_error: str | None = None
    id: int | None = field(default=None, compare=False)


def outbox_entries(
    receivers: Sequence[str], payload: Mapping[str, Any], at_s: float
) -> list[OutboxEntry]:
    """The rows that notify each of `receivers` of `payload`, due at once."""
    key = dedup_key(payload, round(at_s * 1000))
    return [
        OutboxEntry(receiver, key, payload, created_at_s=at_s, next_attempt_at_s=at_s)
        for receiver in receivers
    ]


def insert_entries(connection: sa.Connection, entries: Sequence[OutboxEntry]) -> None:
    """Insert `entries` within the caller's transaction."""
    if not entries:
        return
    connection.execute(
        sa.insert(outbox_table),
        [
            {
                "receiver": entry.receiver,
                "dedup_key": entry.dedup_key,
                "payload": json.dumps(entry.payload, ensure_ascii=False, sort_keys=False),
                "created_at_s": entry.created_at_s,
                "attempts": entry.attempts,
                "next_attempt_at_s": entry.next_attempt_at_s,
                "delivered_at_s": entry.delivered_at_s,
                "last_error": entry.last_error,
            }
            for entry in entries
        ],
    )


def _entry(row: sa.Row[tuple[object, ...]]) -> OutboxEntry:
    mapping = row._mapping
    delivered = mapping["delivered_at_s"]
    error = mapping["last_error"]
    return OutboxEntry(
        id=int(mapping["id"]),
        receiver=str(mapping["receiver"]),
        dedup_key=str(mapping["dedup_key"]),
        payload=json.loads(str(mapping["payload"])),
        created_at_s=float(mapping["created_at_s"]),
        attempts=int(mapping["attempts"]),
        next_attempt_at_s=float(mapping["next_attempt_at_s"]),
        delivered_at_s=None if delivered is None else float(delivered),
        last_error=None if error is None else str(error),
    )


class Outbox:
    """Read and update side of table `alert_outbox` (created when missing)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        outbox_metadata.create_all(engine, checkfirst=True)

    def add(self, entries: Sequence[OutboxEntry]) -> None:
        """Insert `entries` in a transaction of their own (the engine uses
        `AlertStore.save`, which adds them with the alert changes)."""
        with self._engine.begin() as connection:
            insert_entries(connection, entries)

    def undelivered(self, limit: int = 100) -> list[OutboxEntry]:
        """The oldest `limit` undelivered rows, oldest first (due or not: a receiver's rows
        go in order, so a row that is not due holds back the later ones)."""
        query = (
            sa.select(outbox_table)
            .where(outbox_table.c.delivered_at_s.is_(None))
            .order_by(outbox_table.c.id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def entries(self, *, undelivered_only: bool = False) -> list[OutboxEntry]:
        """Every row (or every undelivered row), oldest first: for the CLI and tests."""
        query = sa.select(outbox_table).order_by(outbox_table.c.id)
        if undelivered_only:
            query = query.where(outbox_table.c.delivered_at_s.is_(None))
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def mark_delivered(self, entry_id: int, at_s: float, *, attempts: int) -> None:
        self._update(entry_id, delivered_at_s=at_s, attempts=attempts, last_error=None)

    def mark_failed(
        self, entry_id: int, *, attempts: int, next_attempt_at_s: float, error: str
    ) -> None:
        self._update(
            entry_id, attempts=attempts, next_attempt_at_s=next_attempt_at_s,
            last_error=error[:2000],
        )

    def _update(self, entry_id: int, **values: object) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                sa.update(outbox_table).where(outbox_table.c.id == entry_id).values(**values)
            )
