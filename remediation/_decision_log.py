"""The audit trail: every remediation decision, taken or refused, with its reason.

Decisions live in the shared database so the CLI, the control plane and the dashboard see
one history, and so a cooldown holds across processes.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision. `guard` names the guard that refused it; `finished_at_s` is None while
    the action runs (its stored outcome is then `failed`, the truth if the process dies)."""

    id: int
    action: str
    node: str
    outcome: Outcome
    reason: str
    guard: str | None
    actor: str
    alertname: str | None
    alert_fingerprint: str | None
    started_at_s: float
    finished_at_s: float | None


_metadata = sa.MetaData()
_decisions = sa.Table(
    "remediation_decisions",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("node", sa.String(255), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("guard", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("alertname", sa.String(255), nullable=True),
    sa.Column("alert_fingerprint", sa.String(64), nullable=True),
    sa.Column("started_at_s", sa.Double, nullable=False),
    sa.Column("finished_at_s", sa.Double, nullable=True),
    sa.Index("ix_remediation_decisions_node_action", "node", "action", "started_at_s"),
)


class DecisionLog:
    """Stores decisions in table `remediation_decisions` (created when missing)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine, checkfirst=True)

    def record(
        self,
        *,
        action: str,
        node: str,
        outcome: Outcome,
        reason: str,
        actor: str,
        started_at_s: float,
        guard: str | None = None,
        alertname: str | None = None,
        alert_fingerprint: str | None = None,
        finished_at_s: float | None = None,
    ) -> Decision:
        """Store a new decision and return it with its id."""
        values = {
            "action": action, "node": node, "outcome": str(outcome), "reason": reason,
            "guard": guard, "actor": actor, "alertname": alertname,
            "alert_fingerprint": alert_fingerprint, "started_at_s": started_at_s,
            "finished_at_s": finished_at_s,
        }
        with self._engine.begin() as connection:
            result = connection.execute(sa.insert(_decisions).values(**values))
            key = result.inserted_primary_key
            if key is None:
                raise RuntimeError("the database returned no id for a new decision")
            decision_id = int(key[0])
        return self.get(decision_id)

    def finish(
        self, decision_id: int, outcome: Outcome, reason: str, finished_at_s: float
    ) -> Decision:
        """Record how a started decision ended."""
        with self._engine.begin() as connection:
            result = connection.execute(
                sa.update(_decisions)
                .where(_decisions.c.id == decision_id)
                .values(outcome=str(outcome), reason=reason, finished_at_s=finished_at_s)
            )
            if result.rowcount != 1:
                raise KeyError(f"no remediation decision with id {decision_id}")
        return self.get(decision_id)

    def get(self, decision_id: int) -> Decision:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(_decisions).where(_decisions.c.id == decision_id)
            ).one_or_none()
        if row is None:
            raise KeyError(f"no remediation decision with id {decision_id}")
        return _decision(row)

    def recent(self, limit: int = 100, *, node: str | None = None) -> list[Decision]:
        """The latest `limit` decisions, newest first, optionally for one node."""
        query = sa.select(_decisions).order_by(_decisions.c.id.desc()).limit(limit)
        if node is not None:
            query = query.where(_decisions.c.node == node)
        with self._engine.connect() as connection:
            return [_decision(row) for row in connection.execute(query)]

    def latest(
        self, *, action: str, node: str, outcomes: Collection[Outcome], since_s: float
    ) -> Decision | None:
        """The newest decision of `action` on `node` with one of `outcomes`, started at or
        after `since_s`: what a cooldown looks for."""
        query = (
            sa.select(_decisions)
            .where(
                _decisions.c.action == action,
                _decisions.c.node == node,
                _decisions.c.outcome.in_([str(outcome) for outcome in outcomes]),
                _decisions.c.started_at_s >= since_s,
            )
            .order_by(_decisions.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _decision(row)


def _decision(row: sa.Row[tuple[object, ...]]) -> Decision:
    mapping = row._mapping
    finished = mapping["finished_at_s"]
    return Decision(
        id=int(mapping["id"]),
        action=str(mapping["action"]),
        node=str(mapping["node"]),
        outcome=Outcome(mapping["outcome"]),
        reason=str(mapping["reason"]),
        guard=mapping["guard"],
        actor=str(mapping["actor"]),
        alertname=mapping["alertname"],
        alert_fingerprint=mapping["alert_fingerprint"],
        started_at_s=float(mapping["started_at_s"]),
        finished_at_s=None if finished is None else float(finished),
    )
