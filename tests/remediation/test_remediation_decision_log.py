"""The audit trail: every decision stored in the shared database, read back newest first."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from remediation_doubles import InMemoryFleet, SetClock

from remediation import Decision, DecisionLog, Outcome, RemediationEngine, RemediationPolicy


def _store(log: DecisionLog, entries: list[tuple[str, str, Outcome, float]]) -> list[Decision]:
    return [
        log.record(action=action, node=node, outcome=outcome, reason=f"{action} {node}",
                   actor="cli:oncall", started_at_s=at_s, finished_at_s=at_s)
        for action, node, outcome, at_s in entries
    ]


HISTORY = [
    ("drain", "node-1", Outcome.SUCCEEDED, 100.0),
    ("undrain", "node-1", Outcome.SUCCEEDED, 200.0),
    ("drain", "node-2", Outcome.REFUSED, 300.0),
    ("drain", "node-1", Outcome.FAILED, 400.0),
    ("cycle", "node-1", Outcome.DRY_RUN, 500.0),
]


def test_a_recorded_decision_comes_back_with_every_field_and_an_id(log: DecisionLog) -> None:
    decision = log.record(
        action="drain", node="node-1", outcome=Outcome.REFUSED, reason="why",
        actor="policy:p", started_at_s=12.5, guard="cooldown", alertname="NodeDown",
        alert_fingerprint="8e9b249c8f3b53af", finished_at_s=13.25,
    )
    assert decision == Decision(
        id=1, action="drain", node="node-1", outcome=Outcome.REFUSED, reason="why",
        guard="cooldown", actor="policy:p", alertname="NodeDown",
        alert_fingerprint="8e9b249c8f3b53af", started_at_s=12.5, finished_at_s=13.25,
    )
    assert log.get(1) == decision


def test_finishing_a_started_decision_updates_outcome_reason_and_end(log: DecisionLog) -> None:
    started = log.record(action="cycle", node="node-0", outcome=Outcome.FAILED,
                         reason="started", actor="a", started_at_s=10.0)
    assert started.finished_at_s is None

    finished = log.finish(started.id, Outcome.SUCCEEDED, "node-0 is serving", 42.0)

    assert (finished.outcome, finished.reason, finished.started_at_s, finished.finished_at_s) == (
        Outcome.SUCCEEDED, "node-0 is serving", 10.0, 42.0
    )
    assert log.get(started.id) == finished


def test_an_unknown_decision_id_reads_as_none_and_cannot_be_finished(log: DecisionLog) -> None:
    assert log.get(99) is None
    with pytest.raises(KeyError, match="no remediation decision with id 99"):
        log.finish(99, Outcome.SUCCEEDED, "r", 1.0)


@pytest.mark.parametrize(
    ("limit", "node", "ids"),
    [
        (100, None, [5, 4, 3, 2, 1]),
        (2, None, [5, 4]),
        (100, "node-1", [5, 4, 2, 1]),
        (2, "node-1", [5, 4]),
        (100, "node-2", [3]),
        (100, "node-7", []),
    ],
    ids=[
        "every decision, newest first",
        "the latest two",
        "one node's decisions",
        "one node's latest two",
        "a node with one decision",
        "a node with none",
    ],
)
def test_recent_lists_decisions_newest_first(
    log: DecisionLog, limit: int, node: str | None, ids: list[int]
) -> None:
    _store(log, HISTORY)
    assert [decision.id for decision in log.recent(limit, node=node)] == ids


@pytest.mark.parametrize(
    ("action", "node", "outcomes", "since_s", "found"),
    [
        ("drain", "node-1", {Outcome.SUCCEEDED, Outcome.FAILED}, 0.0, 4),
        ("drain", "node-1", {Outcome.SUCCEEDED}, 0.0, 1),
        ("drain", "node-1", {Outcome.SUCCEEDED, Outcome.FAILED}, 400.0, 4),
        ("drain", "node-1", {Outcome.SUCCEEDED, Outcome.FAILED}, 400.5, None),
        ("drain", "node-2", {Outcome.SUCCEEDED, Outcome.FAILED}, 0.0, None),
        ("cycle", "node-1", {Outcome.SUCCEEDED, Outcome.FAILED}, 0.0, None),
        ("cycle", "node-1", {Outcome.DRY_RUN}, 0.0, 5),
    ],
    ids=[
        "the newest acted drain of node-1",
        "only the outcomes asked for",
        "started exactly at since_s counts",
        "started before since_s does not count",
        "a refused decision is not an action",
        "a dry run is not an action",
        "unless dry runs are asked for",
    ],
)
def test_latest_finds_what_a_cooldown_looks_for(
    log: DecisionLog, action: str, node: str, outcomes: set[Outcome], since_s: float,
    found: int | None,
) -> None:
    _store(log, HISTORY)
    latest = log.latest(action=action, node=node, outcomes=outcomes, since_s=since_s)
    assert (None if latest is None else latest.id) == found


def test_the_history_survives_the_log_and_is_shared_through_the_database(
    database: sa.Engine,
) -> None:
    stored = _store(DecisionLog(database), HISTORY[:2])
    database.dispose()

    assert DecisionLog(database).recent() == stored[::-1]


def test_the_decisions_table_is_created_once_and_named_for_the_audit_trail(
    database: sa.Engine,
) -> None:
    DecisionLog(database)
    DecisionLog(database)
    assert "remediation_decisions" in sa.inspect(database).get_table_names()


def test_the_engine_history_is_the_log_newest_first(log: DecisionLog) -> None:
    fleet = InMemoryFleet()
    engine = RemediationEngine(fleet, log, RemediationPolicy(rules=()), clock=SetClock(7.0))
    for target in ("node-0", "node-1", "node-0"):
        engine.execute("undrain", target, actor="cli:oncall", reason="check")

    assert [(d.id, d.node, d.outcome) for d in engine.history()] == [
        (3, "node-0", Outcome.SKIPPED),
        (2, "node-1", Outcome.SKIPPED),
        (1, "node-0", Outcome.SKIPPED),
    ]
    assert [d.id for d in engine.history(1)] == [3]
    assert [d.id for d in engine.history(node="node-0")] == [3, 1]
