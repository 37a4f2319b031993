"""Rule evaluation with Prometheus's semantics: pending for `for`, firing, resolved; labels,
values, and what happens when a rule's query fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from alerting_doubles import RecordingNotifier, ScriptedSource, sample

from alerting import AlertEngine, AlertState, AlertStore, fingerprint
from slo import AlertingRule

EXPR = 'up{job="nodes"} == 0'
NODE_1 = {"__name__": "up", "job": "nodes", "node": "node-1"}


@dataclass(frozen=True)
class Timing:
    name: str
    for_s: float
    present_at: Sequence[int]
    rounds: int
    transitions: Sequence[tuple[int, AlertState, float, float | None, float | None]]
    """(round, new state, active_at_s, fired_at_s, resolved_at_s) of each transition."""
    instances: int = 1
    """How many alert instances the store holds at the end."""


TIMINGS = [
    Timing(
        "an alert with for 2s is pending for two rounds, then fires",
        2.0, present_at=range(0, 5), rounds=5,
        transitions=[(0, AlertState.PENDING, 0, None, None), (2, AlertState.FIRING, 0, 2, None)],
    ),
    Timing(
        "an alert with for 0 fires in its first round",
        0.0, present_at=range(0, 3), rounds=3,
        transitions=[(0, AlertState.FIRING, 0, 0, None)],
    ),
    Timing(
        "a firing alert resolves in the first round it is missing",
        0.0, present_at=range(0, 3), rounds=5,
        transitions=[(0, AlertState.FIRING, 0, 0, None), (3, AlertState.RESOLVED, 0, 0, 3)],
    ),
    Timing(
        "a pending alert that goes away before its for ends resolves without firing",
        3.0, present_at=(0, 1), rounds=4,
        transitions=[(0, AlertState.PENDING, 0, None, None), (2, AlertState.RESOLVED, 0, None, 2)],
    ),
    Timing(
        "an alert that comes back after resolving is a new instance",
        0.0, present_at=(0, 1, 3), rounds=4,
        transitions=[
            (0, AlertState.FIRING, 0, 0, None),
            (2, AlertState.RESOLVED, 0, 0, 2),
            (3, AlertState.FIRING, 3, 3, None),
        ],
        instances=2,
    ),
    Timing(
        "a one-round gap starts the for wait again",
        2.0, present_at=(0, 1, 3, 4, 5), rounds=6,
        transitions=[
            (0, AlertState.PENDING, 0, None, None),
            (2, AlertState.RESOLVED, 0, None, 2),
            (3, AlertState.PENDING, 3, None, None),
            (5, AlertState.FIRING, 3, 5, None),
        ],
        instances=2,
    ),
]


@pytest.mark.parametrize("case", TIMINGS, ids=[case.name for case in TIMINGS])
def test_alert_states_follow_prometheus_timings(
    case: Timing, source: ScriptedSource, store: AlertStore
) -> None:
    source.script(EXPR, {1000 + t: [sample(0.0, 1000 + t, **NODE_1)] for t in case.present_at})
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR, for_s=case.for_s)])

    seen = [
        (t, alert.state, alert.active_at_s, alert.fired_at_s, alert.resolved_at_s)
        for t in range(case.rounds)
        for alert in engine.evaluate(1000.0 + t)
    ]

    assert seen == [
        (t, state, 1000.0 + active, None if fired is None else 1000.0 + fired,
         None if resolved is None else 1000.0 + resolved)
        for t, state, active, fired, resolved in case.transitions
    ]
    assert len(store.recent(100)) == case.instances


def test_an_alert_fires_on_time_despite_float_noise_in_timestamps(
    source: ScriptedSource, store: AlertStore
) -> None:
    times = [6.2, 7.2, 8.2]
    assert times[2] - times[0] < 2.0  # the noise this test is about
    source.script(EXPR, {t: [sample(0.0, t, **NODE_1)] for t in times})
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR, for_s=2.0)])
    engine.evaluate(times[0])
    engine.evaluate(times[1])
    [fired] = engine.evaluate(times[2])
    assert (fired.state, fired.fired_at_s) == (AlertState.FIRING, times[2])


LABEL_CASES = [
    (
        "the sample's labels without __name__, the rule's labels and alertname",
        {"__name__": "up", "job": "nodes", "node": "node-1"},
        {"severity": "page"},
        {"alertname": "NodeDown", "job": "nodes", "node": "node-1", "severity": "page"},
    ),
    (
        "a rule label wins over a sample label of the same name",
        {"job": "nodes", "severity": "info"},
        {"severity": "page"},
        {"alertname": "NodeDown", "job": "nodes", "severity": "page"},
    ),
    (
        "alertname is the rule's name whatever the sample says",
        {"alertname": "Other", "job": "nodes"},
        {},
        {"alertname": "NodeDown", "job": "nodes"},
    ),
    (
        "rule labels are templates over the sample's labels",
        {"job": "nodes", "node": "node-1"},
        {"team": "{{ $labels.job }}-oncall"},
        {"alertname": "NodeDown", "job": "nodes", "node": "node-1", "team": "nodes-oncall"},
    ),
    (
        "a rule label that expands to nothing removes the label, as in Prometheus",
        {"job": "nodes", "node": "node-1"},
        {"node": ""},
        {"alertname": "NodeDown", "job": "nodes"},
    ),
    (
        "a scalar result gives one alert with only the rule's labels",
        {},
        {"severity": "page"},
        {"alertname": "NodeDown", "severity": "page"},
    ),
]


@pytest.mark.parametrize(
    ("sample_labels", "rule_labels", "expected"),
    [case[1:] for case in LABEL_CASES],
    ids=[case[0] for case in LABEL_CASES],
)
def test_alert_labels_are_built_as_prometheus_builds_them(
    sample_labels: dict[str, str],
    rule_labels: dict[str, str],
    expected: dict[str, str],
    source: ScriptedSource,
    store: AlertStore,
) -> None:
    source.script(EXPR, {0: [sample(0.0, 0, **sample_labels)]})
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR, labels=rule_labels)])
    [alert] = engine.evaluate(0)
    assert alert.labels == expected
    assert alert.fingerprint == fingerprint(expected)


def test_each_result_element_is_its_own_alert(source: ScriptedSource, store: AlertStore) -> None:
    source.script(EXPR, {0: [sample(0.0, 0, job="nodes", node=f"node-{i}") for i in range(3)]})
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR)])
    alerts = engine.evaluate(0)
    assert sorted(alert.labels["node"] for alert in alerts) == ["node-0", "node-1", "node-2"]
    assert len({alert.fingerprint for alert in alerts}) == 3
    assert len(store.active()) == 3


def test_value_annotations_and_evaluation_time_follow_the_latest_round(
    source: ScriptedSource, store: AlertStore
) -> None:
    expr = "error_ratio > 0.2"
    source.script(expr, {0: [sample(0.25, 0, node="node-1")], 1: [sample(0.5, 1, node="node-1")]})
    rule = AlertingRule(
        "NodeHighErrorRate", expr, for_s=5.0,
        annotations={"summary": "Node {{ $labels.node }} fails {{ $value }} of its requests"},
    )
    engine = AlertEngine(source, store, [rule])
    engine.evaluate(0)
    assert engine.evaluate(1) == []  # still pending: no transition
    [alert] = store.active()
    assert alert.value == 0.5
    assert alert.last_evaluated_at_s == 1.0
    assert alert.annotations == {"summary": "Node node-1 fails 0.5 of its requests"}


def test_a_failing_query_skips_only_its_rule_and_keeps_its_alerts(
    source: ScriptedSource,
    store: AlertStore,
    notifier: RecordingNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = "DCGM_FI_DEV_XID_ERRORS > 0"
    source.script(EXPR, {0: [sample(0.0, 0, node="node-1")], 1: RuntimeError("store is locked")})
    source.script(other, {1: [sample(79.0, 1, node="node-2")]})
    engine = AlertEngine(
        source, store, [AlertingRule("NodeDown", EXPR), AlertingRule("GpuXidError", other)],
        [notifier],
    )
    engine.evaluate(0)
    with caplog.at_level(logging.WARNING, logger="alerting"):
        transitions = engine.evaluate(1)

    assert [(a.labels["alertname"], a.state) for a in transitions] == [
        ("GpuXidError", AlertState.FIRING)
    ]
    assert {a.labels["alertname"]: a.state for a in store.active()} == {
        "NodeDown": AlertState.FIRING, "GpuXidError": AlertState.FIRING,
    }
    assert "skipping alerting rule NodeDown this round" in caplog.text
    assert "store is locked" in caplog.text
    assert [p["status"] for p in notifier.payloads] == ["firing", "firing"]


def test_a_result_with_duplicate_labels_after_the_rule_labels_skips_the_rule(
    source: ScriptedSource, store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    source.script(EXPR, {0: [sample(0.0, 0, node="node-1", zone="a"),
                             sample(0.0, 0, node="node-1", zone="b")]})
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR, labels={"zone": "x"})])
    with caplog.at_level(logging.WARNING, logger="alerting"):
        assert engine.evaluate(0) == []
    assert "same labelset after applying alert labels" in caplog.text


def test_the_same_labels_from_two_rules_are_two_alerts(
    source: ScriptedSource, store: AlertStore
) -> None:
    source.script("a == 0", {0: [sample(0.0, 0, node="node-1")]})
    source.script("b == 0", {0: [sample(0.0, 0, node="node-1")]})
    engine = AlertEngine(
        source, store, [AlertingRule("NodeDown", "a == 0"), AlertingRule("NodeDown", "b == 0")]
    )
    first, second = engine.evaluate(0)
    assert first.fingerprint == second.fingerprint
    assert len(store.active()) == 2


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("repeat_interval_s", 0.0, "repeat_interval_s must be > 0"),
    ],
    ids=["a repeat interval of zero"],
)
def test_bad_engine_settings_are_refused(
    keyword: str, value: float, message: str, source: ScriptedSource, store: AlertStore
) -> None:
    with pytest.raises(ValueError, match=message):
        AlertEngine(source, store, [], **{keyword: value})  # type: ignore[arg-type]


def test_a_rule_with_a_negative_for_is_refused(source: ScriptedSource, store: AlertStore) -> None:
    with pytest.raises(ValueError, match="alerting rule NodeDown: for must be >= 0"):
        AlertEngine(source, store, [AlertingRule("NodeDown", EXPR, for_s=-1.0)])


def test_a_rule_that_keeps_failing_is_logged_once_until_it_recovers(
    source: ScriptedSource, store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    source.script(EXPR, {t: RuntimeError("unsupported function") for t in (0, 1, 2)})
    engine = AlertEngine(source, store, [AlertingRule("NodeDown", EXPR)])
    with caplog.at_level(logging.INFO, logger="alerting"):
        for t in range(5):
            engine.evaluate(t)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert messages == [
        "skipping alerting rule NodeDown this round: query failed: "
        "RuntimeError('unsupported function') (logged once until the rule works again)",
        "alerting rule NodeDown evaluates again",
    ]
