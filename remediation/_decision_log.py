"""The audit trail: every remediation decision, taken or refused, with its reason.

Decisions live in the shared database so the CLI, the control plane and the dashboard see
one history, and so a cooldown holds across processes. A database written before decisions
carried params, evidence, incidents and approvers is upgraded in place (ALTER TABLE ADD
COLUMN for each missing column) so nothing stored is lost.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"
    PENDING_APPROVAL = "pending_approval"
    DENIED = "denied"
    ROLLED_BACK = "rolled_back"
    INTERRUPTED = "interrupted"
    """The process stopped mid-action and the fleet showed no result on restart; the action
    was started again under a new decision (cooldowns and limits do not count this one)."""


ACTED = frozenset({Outcome.SUCCEEDED, Outcome.FAILED, Outcome.ROLLED_BACK})
"""Outcomes of decisions that touched the fleet (a failed action may have half acted)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision. `guard` names the guard that refused it; `finished_at_s` is None while
    the action runs (its stored outcome is then `failed`, the truth if the process dies).
    `evidence` is JSON text of what the decision read (alert labels, annotations, values)."""

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
    params: Mapping[str, str] = field(default_factory=dict)
    evidence: str = ""
    incident_id: int | None = None
    approved_by: str | None = None


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
    sa.Column("params", sa.Text, nullable=True),
    sa.Column("evidence", sa.Text, nullable=True),
    sa.Column("incident_id", sa.Integer, nullable=True),
    sa.Column("approved_by", sa.String(255), nullable=True),
    sa.Index("ix_remediation_decisions_node_action", "node", "action", "started_at_s"),
)
ADDED_COLUMNS = ("params", "evidence", "incident_id", "approved_by")
"""Columns newer than the first version of the table, added to an older database on open."""


def upgrade_decisions_table(engine: sa.Engine) -> list[str]:
    """Add the columns an older `remediation_decisions` lacks; returns the names added."""
    present = {column["name"] for column in sa.inspect(engine).get_columns(_decisions.name)}
    added: list[str] = []
    with engine.begin() as connection:
        for name in ADDED_COLUMNS:
            if name in present:
                continue
            column = _decisions.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            connection.execute(sa.text(f"ALTER TABLE {_decisions.name} ADD COLUMN {name} {kind}"))
            added.append(name)
    return added


class DecisionLog:
    """Stores decisions in table `remediation_decisions` (created, or upgraded, on open)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine, checkfirst=True)
        upgrade_decisions_table(engine)

    @property
    def database(self) -> sa.Engine:
        return self._engine

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
        params: Mapping[str, str] | None = None,
        evidence: str = "",
        incident_id: int | None = None,
        approved_by: str | None = None,
    ) -> Decision:
        """Store a new decision and return it with its id."""
        values = {
            "action": action, "node": node, "outcome": str(outcome), "reason": reason,
            "guard": guard, "actor": actor, "alertname": alertname,
            "alert_fingerprint": alert_fingerprint, "started_at_s": started_at_s,
            "finished_at_s": finished_at_s,
            "params": json.dumps(dict(params or {}), sort_keys=True),
            "evidence": evidence, "incident_id": incident_id, "approved_by": approved_by,
        }
        with self._engine.begin() as connection:
            result = connection.execute(sa.insert(_decisions).values(**values))
            key = result.inserted_primary_key
            if key is None:
                raise RuntimeError("the database returned no id for a new decision")
            decision_id = int(key[0])
        return self._require(decision_id)

    def finish(
        self,
        decision_id: int,
        outcome: Outcome,
        reason: str,
        finished_at_s: float | None,
        *,
        guard: str | None = None,
        approved_by: str | None = None,
    ) -> Decision:
        """Record how a started (or pending) decision ended; `guard` and `approved_by`
        replace the stored ones only when given."""
        values: dict[str, object] = {
            "outcome": str(outcome), "reason": reason, "finished_at_s": finished_at_s,
        }
        if guard is not None:
            values["guard"] = guard
        if approved_by is not None:
            values["approved_by"] = approved_by
        with self._engine.begin() as connection:
            result = connection.execute(
                sa.update(_decisions).where(_decisions.c.id == decision_id).values(**values)
            )
            if result.rowcount != 1:
                raise KeyError(f"no remediation decision with id {decision_id}")
        return self._require(decision_id)

    def set_incident(self, decision_id: int, incident_id: int) -> Decision:
        with self._engine.begin() as connection:
            connection.execute(
                sa.update(_decisions)
                .where(_decisions.c.id == decision_id)
                .values(incident_id=incident_id)
            )
        return self._require(decision_id)

    def get(self, decision_id: int) -> Decision | None:
        """The decision with this id, or None."""
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(_decisions).where(_decisions.c.id == decision_id)
            ).one_or_none()
        return None if row is None else _decision(row)

    def _require(self, decision_id: int) -> Decision:
        decision = self.get(decision_id)
        if decision is None:
            raise KeyError(f"no remediation decision with id {decision_id}")
        return decision

    def recent(
        self, limit: int = 100, *, node: str | None = None, outcome: Outcome | str | None = None
    ) -> list[Decision]:
        """The latest `limit` decisions, newest first, optionally of one node or outcome."""
        query = sa.select(_decisions).order_by(_decisions.c.id.desc()).limit(limit)
        if node is not None:
            query = query.where(_decisions.c.node == node)
        if outcome is not None:
            query = query.where(_decisions.c.outcome == str(Outcome(outcome)))
        with self._engine.connect() as connection:
            return [_decision(row) for row in connection.execute(query)]

    def unfinished(self) -> list[Decision]:
        """Decisions whose action started but never finished (the process stopped mid-action),
        oldest first; pending approvals are not among them."""
        query = (
            sa.select(_decisions)
            .where(
                _decisions.c.finished_at_s.is_(None),
                _decisions.c.outcome == str(Outcome.FAILED),
            )
            .order_by(_decisions.c.id)
        )
        with self._engine.connect() as connection:
            return [_decision(row) for row in connection.execute(query)]

    def of_incident(self, incident_id: int) -> list[Decision]:
        """An incident's decisions, oldest first: its timeline."""
        query = (
            sa.select(_decisions)
            .where(_decisions.c.incident_id == incident_id)
            .order_by(_decisions.c.id)
        )
        with self._engine.connect() as connection:
            return [_decision(row) for row in connection.execute(query)]

    def since(
        self,
        since_s: float,
        *,
        actions: Collection[str] | None = None,
        outcomes: Collection[Outcome] = ACTED,
        node: str | None = None,
    ) -> list[Decision]:
        """Decisions started at or after `since_s` with one of `outcomes`, oldest first: what
        the rate limit, the circuit breaker and the escalation ladder count."""
        query = (
            sa.select(_decisions)
            .where(
                _decisions.c.started_at_s >= since_s,
                _decisions.c.outcome.in_([str(outcome) for outcome in outcomes]),
            )
            .order_by(_decisions.c.id)
        )
        if actions is not None:
            query = query.where(_decisions.c.action.in_(list(actions)))
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
    params = json.loads(mapping["params"]) if mapping["params"] else {}
    incident = mapping["incident_id"]
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
        params={str(key): str(value) for key, value in params.items()},
        evidence=mapping["evidence"] or "",
        incident_id=None if incident is None else int(incident),
        approved_by=mapping["approved_by"],
    )
