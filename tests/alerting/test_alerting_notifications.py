"""What the engine sends and when: one body per group of changes, repeats of groups that
keep firing, and receivers that fail without stopping anything else."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from alerting_doubles import RaisingNotifier, RecordingNotifier, ScriptedSource, sample

from alerting import AlertEngine, AlertState, AlertStore
from collectors import InstantSample
from slo import AlertingRule

EXPR = 'up{job="nodes"} == 0'
RULE = AlertingRule("NodeDown", EXPR, labels={"severity": "page"})


def down(at_s: float, *nodes: str) -> list[InstantSample]:
    return [sample(0.0, at_s, job="nodes", node=node) for node in nodes]


GROUPINGS = [
    (
        "by alertname, two nodes firing together are one body",
        ("alertname",),
        [('{}:{alertname="NodeDown"}', ["node-1", "node-2"], {"alertname": "NodeDown"})],
    ),
    (
        "by alertname and node, each node is its own body",
        ("alertname", "node"),
        [
            ('{}:{alertname="NodeDown", node="node-1"}', ["node-1"],
             {"alertname": "NodeDown", "node": "node-1"}),
            ('{}:{alertname="NodeDown", node="node-2"}', ["node-2"],
             {"alertname": "NodeDown", "node": "node-2"}),
        ],
    ),
    (
        "by a label the alerts lack, everything is one body with no group labels",
        ("cluster",),
        [("{}:{}", ["node-1", "node-2"], {})],
    ),
    (
        "by '...', every distinct label set is its own body",
        ("...",),
        [
            ('{}:{alertname="NodeDown", job="nodes", node="node-1", severity="page"}', ["node-1"],
             {"alertname": "NodeDown", "job": "nodes", "node": "node-1", "severity": "page"}),
            ('{}:{alertname="NodeDown", job="nodes", node="node-2", severity="page"}', ["node-2"],
             {"alertname": "NodeDown", "job": "nodes", "node": "node-2", "severity": "page"}),
        ],
    ),
]


@pytest.mark.parametrize(
    ("group_by", "expected"), [case[1:] for case in GROUPINGS], ids=[case[0] for case in GROUPINGS]
)
def test_alerts_that_fire_together_are_sent_per_group(
    group_by: Sequence[str],
    expected: list[tuple[str, list[str], dict[str, str]]],
    source: ScriptedSource,
    store: AlertStore,
    notifier: RecordingNotifier,
) -> None:
    source.script(EXPR, {0: down(0, "node-2", "node-1")})
    engine = AlertEngine(source, store, [RULE], [notifier], group_by=group_by)
    engine.evaluate(0)
    assert [
        (body["groupKey"], [a["labels"]["node"] for a in body["alerts"]], body["groupLabels"])
        for body in notifier.payloads
    ] == expected


def test_firing_and_resolving_in_one_round_is_one_firing_body(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    source.script(EXPR, {0: down(0, "node-1"), 1: down(1, "node-2")})
    engine = AlertEngine(source, store, [RULE], [notifier])
    engine.evaluate(0)
    engine.evaluate(1)
    body = notifier.payloads[-1]
    assert body["status"] == "firing"
    assert [(a["labels"]["node"], a["status"]) for a in body["alerts"]] == [
        ("node-1", "resolved"), ("node-2", "firing"),
    ]
    assert body["commonLabels"] == {"alertname": "NodeDown", "job": "nodes", "severity": "page"}


def test_pending_alerts_and_alerts_that_never_fired_send_nothing(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    source.script(EXPR, {0: down(0, "node-1"), 1: down(1, "node-1")})
    engine = AlertEngine(
        source, store, [AlertingRule("NodeDown", EXPR, for_s=5.0)], [notifier]
    )
    for t in range(4):
        engine.evaluate(t)
    assert [a.state for a in store.recent(10)] == [AlertState.RESOLVED]
    assert notifier.payloads == []


def test_a_group_that_keeps_firing_is_sent_again_every_repeat_interval(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    source.script(EXPR, {t: down(t, "node-1") for t in range(0, 26)})
    source.script(EXPR, {t: down(t, "node-1", "node-2") for t in range(5, 26)})
    engine = AlertEngine(source, store, [RULE], [notifier], repeat_interval_s=10.0)
    sent_at = []
    for t in range(26):
        before = len(notifier.payloads)
        engine.evaluate(t)
        sent_at += [
            (t, [a["labels"]["node"] for a in body["alerts"]])
            for body in notifier.payloads[before:]
        ]
    assert sent_at == [
        (0, ["node-1"]),             # node-1 fires
        (5, ["node-2"]),             # node-2 fires: only the change is sent
        (10, ["node-1", "node-2"]),  # node-1's repeat is due: the whole group goes again
        (20, ["node-1", "node-2"]),
    ]


def test_a_raising_notifier_stops_neither_the_others_nor_the_evaluation(
    source: ScriptedSource,
    store: AlertStore,
    notifier: RecordingNotifier,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = RaisingNotifier()
    source.script(EXPR, {0: down(0, "node-1")})
    engine = AlertEngine(source, store, [RULE], [broken, notifier])
    with caplog.at_level(logging.ERROR, logger="alerting"):
        [alert] = engine.evaluate(0)
    assert alert.state == AlertState.FIRING
    assert broken.calls == 1
    assert [body["status"] for body in notifier.payloads] == ["firing"]
    assert "failed to take the firing notification" in caplog.text
    assert "this receiver is broken" in caplog.text
    engine.evaluate(1)
    assert [body["status"] for body in notifier.payloads] == ["firing", "resolved"]
    assert broken.calls == 2


def test_each_notifier_gets_its_own_copy_of_the_body(
    source: ScriptedSource, store: AlertStore
) -> None:
    class Mutating:
        def notify(self, payload: Mapping[str, Any]) -> None:
            payload["alerts"].clear()

    recorder = RecordingNotifier()
    source.script(EXPR, {0: down(0, "node-1")})
    AlertEngine(source, store, [RULE], [Mutating(), recorder]).evaluate(0)
    assert len(recorder.payloads[0]["alerts"]) == 1
