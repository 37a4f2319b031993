"""Silences, inhibition, group timers and the dead-man's switch, as Alertmanager has them."""

from __future__ import annotations

import pytest
from alerting_doubles import RecordingNotifier, ScriptedSource, sample

from alerting import (
    AlertEngine,
    AlertState,
    AlertStore,
    InhibitRule,
    Matcher,
    MatcherError,
    MatchOp,
    SilenceError,
    SilenceState,
    SilenceStore,
    watchdog_rule,
)
from collectors import InstantSample, SampleStore, StoreSource
from slo import AlertingRule

DOWN = 'up{job="nodes"} == 0'
SLOW = "node_latency_seconds > 1"
NODE_DOWN = AlertingRule("NodeDown", DOWN, labels={"severity": "page"})
NODE_SLOW = AlertingRule("NodeHighLatency", SLOW, labels={"severity": "page"})


def nodes(at_s: float, *names: str) -> list[InstantSample]:
    return [sample(0.0, at_s, job="nodes", node=name) for name in names]


def sent(notifier: RecordingNotifier) -> list[tuple[str, str, list[str]]]:
    return [
        (body["status"], body["groupLabels"].get("alertname", ""),
         [f'{a["labels"]["alertname"]}/{a["labels"].get("node", "")}/{a["status"]}'
          for a in body["alerts"]])
        for body in notifier.payloads
    ]


MATCHERS = [
    ("equal", 'node="node-1"', {"node": "node-1"}, True),
    ("equal, a different value", "node=node-1", {"node": "node-2"}, False),
    ("not equal matches a missing label", 'team!="db"', {"node": "node-1"}, True),
    ("regex is anchored", 'node=~"node-[12]"', {"node": "node-12"}, False),
    ("regex", 'node=~"node-[12]"', {"node": "node-2"}, True),
    ("negative regex", 'node!~"node-.*"', {"node": "gpu-1"}, True),
    ("a quoted value keeps its spaces and quotes", r'summary="a \"b\" c"',
     {"summary": 'a "b" c'}, True),
]


@pytest.mark.parametrize(
    ("text", "labels", "expected"), [m[1:] for m in MATCHERS], ids=[m[0] for m in MATCHERS]
)
def test_matchers_read_and_match_as_alertmanager_does(
    text: str, labels: dict[str, str], expected: bool
) -> None:
    assert Matcher.parse(text).matches(labels) is expected


BAD_MATCHERS = [
    ("node", "matcher 'node': expected name=value, name!=value, name=~regex or name!~regex"),
    ('node=~"(["', "matcher node=~\"([\": '([' is not a valid regular expression: "
                   "unterminated character set at position 1"),
    ("1node=x", "matcher '1node=x': expected name=value"),
]


@pytest.mark.parametrize(("text", "message"), BAD_MATCHERS, ids=[b[0] for b in BAD_MATCHERS])
def test_a_malformed_matcher_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(MatcherError) as raised:
        Matcher.parse(text)
    assert str(raised.value).startswith(message)


def test_silences_are_stored_listed_by_state_and_expired(store: AlertStore) -> None:
    silences = SilenceStore(store.engine)
    made = silences.create(
        ['node=~"node-1|node-2"', "alertname=NodeDown"], starts_at_s=100.0, ends_at_s=200.0,
        created_by="alice", comment="kernel upgrade", now_s=50.0,
    )
    assert made.matchers == (
        Matcher("node", "node-1|node-2", MatchOp.REGEX), Matcher("alertname", "NodeDown"),
    )
    assert [made.state(t) for t in (50.0, 100.0, 199.9, 200.0)] == [
        SilenceState.PENDING, SilenceState.ACTIVE, SilenceState.ACTIVE, SilenceState.EXPIRED,
    ]
    reopened = SilenceStore(store.engine)
    assert reopened.list(at_s=150.0) == [made]
    assert reopened.active(at_s=50.0) == []
    expired = reopened.expire(made.id, now_s=150.0)
    assert (expired.starts_at_s, expired.ends_at_s) == (100.0, 150.0)
    assert reopened.list(at_s=150.0) == []
    assert reopened.list(at_s=150.0, include_expired=True) == [expired]


BAD_SILENCES = [
    ("no matchers", [], 200.0, "alice", "why", "matchers: a silence needs at least one matcher"),
    ("matches everything", ['node=~".*"'], 200.0, "alice", "why",
     'matchers: node=~".*" would match every alert'),
    ("ends before it starts", ["node=n"], 50.0, "alice", "why",
     "ends_at_s: 50.0 is not after starts_at_s 100.0"),
    ("nobody", ["node=n"], 200.0, " ", "why", "created_by: say who creates the silence"),
    ("no reason", ["node=n"], 200.0, "alice", "", "comment: say why the alerts are silenced"),
]


@pytest.mark.parametrize(
    ("matchers", "ends_at_s", "created_by", "comment", "message"),
    [b[1:] for b in BAD_SILENCES], ids=[b[0] for b in BAD_SILENCES],
)
def test_a_bad_silence_is_refused_naming_the_field_and_nothing_is_stored(
    matchers: list[str], ends_at_s: float, created_by: str, comment: str, message: str,
    store: AlertStore,
) -> None:
    silences = SilenceStore(store.engine)
    with pytest.raises(SilenceError) as raised:
        silences.create(matchers, ends_at_s=ends_at_s, created_by=created_by, comment=comment,
                        now_s=100.0)
    assert str(raised.value) == message
    assert silences.list(include_expired=True) == []


def test_expiring_an_unknown_silence_names_its_id(store: AlertStore) -> None:
    with pytest.raises(SilenceError, match="id: no silence 'nope'"):
        SilenceStore(store.engine).expire("nope")


def test_a_silenced_alert_fires_unnotified_and_is_notified_once_the_silence_expires(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    silences = SilenceStore(store.engine)
    silence = silences.create(["node=node-1"], ends_at_s=2.0, created_by="alice",
                              comment="maintenance", now_s=0.0)
    source.script(DOWN, {t: nodes(t, "node-1", "node-2") for t in range(4)})
    engine = AlertEngine(source, store, [NODE_DOWN], [notifier], silences=silences)
    engine.evaluate(0)
    assert sent(notifier) == [("firing", "NodeDown", ["NodeDown/node-2/firing"])]
    assert [(a.labels["node"], a.state, a.silenced_by) for a in engine.active()] == [
        ("node-1", AlertState.FIRING, (silence.id,)), ("node-2", AlertState.FIRING, ()),
    ]
    engine.evaluate(1)
    assert len(notifier.payloads) == 1
    engine.evaluate(2)  # the silence ended
    assert sent(notifier)[1:] == [("firing", "NodeDown", ["NodeDown/node-1/firing"])]
    assert [a.silenced_by for a in engine.active()] == [(), ()]


def test_an_alert_silenced_all_along_resolves_without_a_notification(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    silences = SilenceStore(store.engine)
    silences.create(["alertname=NodeDown"], ends_at_s=99.0, created_by="a", comment="b",
                    now_s=0.0)
    source.script(DOWN, {0: nodes(0, "node-1")})
    engine = AlertEngine(source, store, [NODE_DOWN], [notifier], silences=silences)
    engine.evaluate(0)
    engine.evaluate(1)
    assert [a.state for a in store.recent(5)] == [AlertState.RESOLVED]
    assert notifier.payloads == []


NODE_INHIBITS_LATENCY = InhibitRule.of(
    ["alertname=NodeDown"], ["alertname=NodeHighLatency"], ["node"]
)


def test_a_down_node_inhibits_its_own_latency_alert_and_not_another_nodes(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    source.script(DOWN, {0: nodes(0, "node-1"), 1: nodes(1, "node-1")})
    source.script(SLOW, {t: [sample(2.0, t, node=n) for n in ("node-1", "node-2")]
                         for t in range(3)})
    engine = AlertEngine(source, store, [NODE_DOWN, NODE_SLOW], [notifier],
                         inhibit_rules=[NODE_INHIBITS_LATENCY])
    engine.evaluate(0)
    assert sent(notifier) == [
        ("firing", "NodeDown", ["NodeDown/node-1/firing"]),
        ("firing", "NodeHighLatency", ["NodeHighLatency/node-2/firing"]),
    ]
    down_fingerprint = engine.active()[0].fingerprint
    assert [(a.labels["node"], a.inhibited_by) for a in engine.active()[1:]] == [
        ("node-1", (down_fingerprint,)), ("node-2", ()),
    ]
    engine.evaluate(1)
    assert len(notifier.payloads) == 2
    engine.evaluate(2)  # node-1 is back but still slow: its latency alert is news now
    assert sent(notifier)[2:] == [
        ("resolved", "NodeDown", ["NodeDown/node-1/resolved"]),
        ("firing", "NodeHighLatency", ["NodeHighLatency/node-1/firing"]),
    ]


def test_an_alert_matching_both_sides_of_a_rule_does_not_inhibit_itself() -> None:
    rule = InhibitRule.of(["severity=page"], ["severity=page"], ["node"])
    labels = {"alertname": "NodeDown", "severity": "page", "node": "node-1"}
    assert rule.inhibits(labels, labels) is False
    assert rule.inhibits({**labels, "severity": "page"}, {**labels, "alertname": "X"}) is False


def test_group_wait_collects_alerts_and_group_interval_spaces_the_news(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    source.script(DOWN, {t: nodes(t, "node-1") for t in range(0, 12)})
    source.script(DOWN, {t: nodes(t, "node-1", "node-2") for t in range(2, 12)})
    source.script(DOWN, {t: nodes(t, "node-1", "node-2", "node-3") for t in range(6, 12)})
    engine = AlertEngine(source, store, [NODE_DOWN], [notifier], group_wait_s=3.0,
                         group_interval_s=5.0, repeat_interval_s=100.0)
    sent_at = []
    for t in range(12):
        before = len(notifier.payloads)
        engine.evaluate(t)
        sent_at += [(t, entry) for entry in sent(notifier)[before:]]
    assert sent_at == [
        (3, ("firing", "NodeDown", ["NodeDown/node-1/firing", "NodeDown/node-2/firing"])),
        (8, ("firing", "NodeDown", ["NodeDown/node-1/firing", "NodeDown/node-2/firing",
                                    "NodeDown/node-3/firing"])),
    ]


def test_the_watchdog_always_fires_on_the_embedded_store(
    store: AlertStore, notifier: RecordingNotifier
) -> None:
    source = StoreSource(SampleStore(store.engine))
    engine = AlertEngine(source, store, [watchdog_rule()], [notifier], repeat_interval_s=60.0)
    for t in (1000.0, 1030.0, 1060.0):
        engine.evaluate(t)
    assert [a.labels for a in engine.active()] == [{"alertname": "Watchdog", "severity": "none"}]
    assert [(body["status"], body["alerts"][0]["labels"]["alertname"])
            for body in notifier.payloads] == [("firing", "Watchdog"), ("firing", "Watchdog")]
