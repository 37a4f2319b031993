"""Alert instances in the database: what readers see, and a restarted engine that carries
on where the last one stopped."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from alerting_doubles import RecordingNotifier, ScriptedSource, sample

from alerting import AlertEngine, AlertState, AlertStore
from alerting._outbox import OutboxEntry
from alerting._store import AlertInstance
from collectors import InstantSample
from slo import AlertingRule

EXPR = 'up{job="nodes"} == 0'
RULE = AlertingRule(
    "NodeDown", EXPR, for_s=2.0, labels={"severity": "page"},
    annotations={"summary": "Node {{ $labels.node }} does not answer scrapes"},
)


def down(at_s: float, node: str = "node-1") -> list[InstantSample]:
    return [sample(0.0, at_s, job="nodes", node=node)]


def restarted(
    tmp_path: Path, source: ScriptedSource, notifier: RecordingNotifier,
    rules: list[AlertingRule] | None = None, repeat_interval_s: float = 3600.0,
) -> tuple[AlertEngine, sa.Engine]:
    """A fresh database connection, store and engine on the same SQLite file."""
    database = sa.create_engine(f"sqlite:///{tmp_path / 'inferops.db'}")
    engine = AlertEngine(
        source, AlertStore(database), [RULE] if rules is None else rules, [notifier],
        repeat_interval_s=repeat_interval_s,
    )
    return engine, database


def test_active_and_recent_read_what_the_engine_stored(
    source: ScriptedSource, store: AlertStore
) -> None:
    source.script(EXPR, {0: down(0, "node-0")})
    source.script(EXPR, {t: down(t, "node-1") for t in (1, 2, 3)})
    source.script("vector(1)", {t: [sample(1.0, t)] for t in (2, 3)})
    engine = AlertEngine(source, store, [RULE, AlertingRule("AlwaysFiring", "vector(1)")])
    for t in range(4):
        engine.evaluate(t)

    assert [(a.labels["alertname"], a.labels.get("node"), a.state) for a in store.recent(10)] == [
        ("AlwaysFiring", None, AlertState.FIRING),
        ("NodeDown", "node-1", AlertState.FIRING),
        ("NodeDown", "node-0", AlertState.RESOLVED),
    ]
    assert [a.labels["alertname"] for a in store.recent(2)] == ["AlwaysFiring", "NodeDown"]
    assert {a.labels.get("node") for a in store.active()} == {None, "node-1"}
    [node_1] = [a for a in store.active() if a.labels.get("node") == "node-1"]
    assert node_1.annotations == {"summary": "Node node-1 does not answer scrapes"}
    assert (node_1.active_at_s, node_1.fired_at_s, node_1.resolved_at_s) == (1.0, 3.0, None)
    assert node_1.generator_url == (
        "http://127.0.0.1:8050/graph?g0.expr=up%7Bjob%3D%22nodes%22%7D+%3D%3D+0&g0.tab=1"
    )


def test_labels_survive_the_database_exactly(source: ScriptedSource, store: AlertStore) -> None:
    labels = {"node": "nœud-1", "path": 'a "quoted" \\ value', "empty_looking": " "}
    source.script("x", {0: [sample(0.0, 0, **labels)]})
    AlertEngine(source, store, [AlertingRule("Odd", "x")]).evaluate(0)
    [alert] = store.recent(1)
    assert alert.labels == {**labels, "alertname": "Odd"}


def test_a_restarted_engine_keeps_a_firing_alert_without_notifying_it_again(
    tmp_path: Path, source: ScriptedSource
) -> None:
    source.script(EXPR, {t: down(t) for t in range(0, 6)})
    first_notifier, second_notifier = RecordingNotifier(), RecordingNotifier()
    first, first_db = restarted(tmp_path, source, first_notifier)
    for t in range(4):
        first.evaluate(t)
    first_db.dispose()
    assert [body["status"] for body in first_notifier.payloads] == ["firing"]

    second, second_db = restarted(tmp_path, source, second_notifier)
    assert second.evaluate(4) == []
    assert second.evaluate(5) == []
    assert second_notifier.payloads == []
    [alert] = second.store.active()
    assert (alert.state, alert.active_at_s, alert.fired_at_s) == (AlertState.FIRING, 0.0, 2.0)

    [resolved] = second.evaluate(6)
    assert (resolved.state, resolved.fired_at_s, resolved.resolved_at_s) == (
        AlertState.RESOLVED, 2.0, 6.0
    )
    [body] = second_notifier.payloads
    assert body["alerts"][0]["startsAt"] == "1970-01-01T00:00:02.000Z"
    assert len(second.store.recent(10)) == 1
    second_db.dispose()


def test_a_restarted_engine_notifies_again_once_the_repeat_interval_passed(
    tmp_path: Path, source: ScriptedSource
) -> None:
    source.script(EXPR, {t: down(t) for t in (0, 1, 2, 100)})
    first_notifier, second_notifier = RecordingNotifier(), RecordingNotifier()
    first, first_db = restarted(tmp_path, source, first_notifier, repeat_interval_s=60.0)
    for t in range(3):
        first.evaluate(t)
    first_db.dispose()
    second, second_db = restarted(tmp_path, source, second_notifier, repeat_interval_s=60.0)
    assert second.evaluate(100) == []
    assert [(b["status"], b["alerts"][0]["startsAt"]) for b in second_notifier.payloads] == [
        ("firing", "1970-01-01T00:00:02.000Z")
    ]
    second_db.dispose()


def test_a_restarted_engine_finishes_a_pending_alerts_wait(
    tmp_path: Path, source: ScriptedSource
) -> None:
    source.script(EXPR, {t: down(t) for t in (0, 1, 2)})
    notifier = RecordingNotifier()
    first, first_db = restarted(tmp_path, source, notifier)
    first.evaluate(0)
    first_db.dispose()
    second, second_db = restarted(tmp_path, source, notifier)
    assert second.evaluate(1) == []
    [fired] = second.evaluate(2)
    assert (fired.state, fired.active_at_s, fired.fired_at_s) == (AlertState.FIRING, 0.0, 2.0)
    second_db.dispose()


def test_alerts_of_a_rule_no_longer_configured_resolve_after_a_restart(
    tmp_path: Path, source: ScriptedSource
) -> None:
    source.script(EXPR, {t: down(t) for t in (0, 1, 2, 3)})
    notifier = RecordingNotifier()
    first, first_db = restarted(tmp_path, source, notifier)
    for t in range(3):
        first.evaluate(t)
    first_db.dispose()
    second, second_db = restarted(tmp_path, source, notifier, rules=[])
    [resolved] = second.evaluate(3)
    assert (resolved.labels["alertname"], resolved.state) == ("NodeDown", AlertState.RESOLVED)
    assert [body["status"] for body in notifier.payloads] == ["firing", "resolved"]
    assert second.store.active() == []
    second_db.dispose()


def test_a_notification_lost_to_a_crash_is_sent_after_the_restart(
    tmp_path: Path, source: ScriptedSource
) -> None:
    class Crash(BaseException):
        """Stands for the process dying between storing the alert and notifying."""

    class CrashingNotifier:
        def notify(self, payload: object) -> None:
            raise Crash

    source.script(EXPR, {t: down(t) for t in (0, 1, 2, 3)})
    database = sa.create_engine(f"sqlite:///{tmp_path / 'inferops.db'}")
    first = AlertEngine(source, AlertStore(database), [RULE], [CrashingNotifier()])
    first.evaluate(0)
    first.evaluate(1)
    with pytest.raises(Crash):
        first.evaluate(2)
    database.dispose()

    notifier = RecordingNotifier()
    second, second_db = restarted(tmp_path, source, notifier)
    assert second.evaluate(3) == []
    assert [(b["status"], b["alerts"][0]["startsAt"]) for b in notifier.payloads] == [
        ("firing", "1970-01-01T00:00:02.000Z")
    ]
    second_db.dispose()


def test_the_store_creates_its_table_once_and_shares_the_database(database: sa.Engine) -> None:
    AlertStore(database)
    AlertStore(database)
    assert "alerts" in sa.inspect(database).get_table_names()


def test_a_database_error_delays_storing_but_not_notifying(
    database: sa.Engine, source: ScriptedSource, caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyStore(AlertStore):
        failures = 1

        def save(
            self, instances: Sequence[AlertInstance], notifications: Sequence[OutboxEntry] = ()
        ) -> None:
            if self.failures:
                self.failures -= 1
                raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
            super().save(instances, notifications)

    source.script(EXPR, {t: down(t) for t in (0, 1)})
    notifier = RecordingNotifier()
    store = FlakyStore(database)
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR)], [notifier])
    with caplog.at_level(logging.ERROR, logger="alerting"):
        [fired] = engine.evaluate(0)
    assert fired.state == AlertState.FIRING
    assert [body["status"] for body in notifier.payloads] == ["firing"]
    assert (
        "could not store 1 alert(s) and 0 outbox notification(s); trying again with the next "
        "evaluation"
    ) in caplog.text

    assert engine.evaluate(1) == []
    [stored] = store.recent(10)
    assert (stored.state, stored.fired_at_s, stored.last_evaluated_at_s) == (
        AlertState.FIRING, 0.0, 1.0
    )
    assert len(notifier.payloads) == 1
