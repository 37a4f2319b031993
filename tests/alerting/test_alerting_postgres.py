"""The alert store and a restarted engine on PostgreSQL, the production database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alerting_doubles import RecordingNotifier, ScriptedSource, sample, throwaway_postgres

from alerting import AlertEngine, AlertState, AlertStore
from slo import AlertingRule

pytestmark = pytest.mark.integration

EXPR = 'up{job="nodes"} == 0'
RULE = AlertingRule("NodeDown", EXPR, for_s=1.0, labels={"severity": "page"},
                    annotations={"summary": "Node {{ $labels.node }} is down"})


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    try:
        with throwaway_postgres() as url:
            yield url
    except LookupError as error:
        pytest.skip(str(error))


def test_alerts_are_stored_and_restored_on_postgresql(postgres: str) -> None:
    source = ScriptedSource()
    source.script(EXPR, {t: [sample(0.0, t, job="nodes", node="nœud-1")] for t in (0, 1, 2)})
    first_db = sa.create_engine(postgres)
    notifier = RecordingNotifier()
    first = AlertEngine(source, AlertStore(first_db), [RULE], [notifier])
    first.evaluate(0)
    [fired] = first.evaluate(1)
    assert fired.state == AlertState.FIRING
    first_db.dispose()

    second_db = sa.create_engine(postgres)
    store = AlertStore(second_db)
    second = AlertEngine(source, store, [RULE], [notifier])
    assert second.evaluate(2) == []
    [resolved] = second.evaluate(3)
    assert (resolved.state, resolved.active_at_s, resolved.fired_at_s, resolved.resolved_at_s) == (
        AlertState.RESOLVED, 0.0, 1.0, 3.0
    )
    assert [body["status"] for body in notifier.payloads] == ["firing", "resolved"]
    [stored] = store.recent(10)
    assert stored.labels == {"alertname": "NodeDown", "job": "nodes", "node": "nœud-1",
                             "severity": "page"}
    assert stored.annotations == {"summary": "Node nœud-1 is down"}
    assert store.active() == []
    second_db.dispose()
