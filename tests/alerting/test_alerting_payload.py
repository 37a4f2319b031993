"""Fingerprints and the Alertmanager version-4 webhook body, against a body a real
Alertmanager 0.25 sent (tests/alerting/fixtures/alertmanager-0.25-webhook.json)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from alerting_doubles import FIXTURE, RecordingNotifier, ScriptedSource, sample

from alerting import (
    Alert,
    AlertEngine,
    AlertState,
    AlertStore,
    alertmanager_payload,
    fingerprint,
    generator_url,
    rfc3339,
)
from slo import AlertingRule

AM_FIXTURE: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
FIXTURE_ALERT: dict[str, Any] = AM_FIXTURE["alerts"][0]
STARTS_AT_S = datetime.fromisoformat(FIXTURE_ALERT["startsAt"]).timestamp()

FINGERPRINTS = [
    ("the fixture's alert, as Alertmanager printed it",
     {"alertname": "AlwaysFiring", "severity": "test"}, "8e9b249c8f3b53af"),
    ("the same labels in another order",
     {"severity": "test", "alertname": "AlwaysFiring"}, "8e9b249c8f3b53af"),
    ("the empty label set: the FNV-1a offset basis", {}, "cbf29ce484222325"),
]


@pytest.mark.parametrize(
    ("labels", "expected"), [case[1:] for case in FINGERPRINTS],
    ids=[case[0] for case in FINGERPRINTS],
)
def test_fingerprints_are_alertmanagers(labels: dict[str, str], expected: str) -> None:
    assert fingerprint(labels) == expected


def test_the_separator_byte_keeps_names_and_values_apart() -> None:
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})
    assert len(fingerprint({"node": "node-1", "alertname": "NodeDown"})) == 16


def fixture_alert() -> Alert:
    return Alert(
        fingerprint=fingerprint(FIXTURE_ALERT["labels"]),
        labels=FIXTURE_ALERT["labels"],
        annotations=FIXTURE_ALERT["annotations"],
        state=AlertState.FIRING,
        active_at_s=STARTS_AT_S,
        fired_at_s=STARTS_AT_S,
        generator_url=generator_url("http://127.0.0.1:19090", "vector(1)"),
    )


def built_like_the_fixture() -> dict[str, Any]:
    return alertmanager_payload(
        [fixture_alert()], receiver="webhook", group_labels={"alertname": "AlwaysFiring"},
        external_url="http://127.0.0.1:19093",
    )


@pytest.mark.parametrize(
    "field", list(AM_FIXTURE), ids=[f"the body's {name} is Alertmanager's" for name in AM_FIXTURE]
)
def test_each_body_field_is_the_one_alertmanager_sent(field: str) -> None:
    assert built_like_the_fixture()[field] == AM_FIXTURE[field]


@pytest.mark.parametrize(
    "field", list(FIXTURE_ALERT),
    ids=[f"the alert's {name} is Alertmanager's" for name in FIXTURE_ALERT],
)
def test_each_alert_field_is_the_one_alertmanager_sent(field: str) -> None:
    assert built_like_the_fixture()["alerts"][0][field] == FIXTURE_ALERT[field]


def test_the_whole_body_equals_alertmanagers_fields_and_order() -> None:
    body = built_like_the_fixture()
    assert body == AM_FIXTURE
    assert list(body) == list(AM_FIXTURE)
    assert list(body["alerts"][0]) == list(FIXTURE_ALERT)


def test_the_engine_sends_the_fixture_for_the_fixtures_rule(
    source: ScriptedSource, store: AlertStore, notifier: RecordingNotifier
) -> None:
    source.script("vector(1)", {STARTS_AT_S: [sample(1.0, STARTS_AT_S)]})
    rule = AlertingRule(
        "AlwaysFiring", "vector(1)", labels={"severity": "test"},
        annotations={"summary": "always firing test alert"},
    )
    engine = AlertEngine(
        source, store, [rule], [notifier], external_url="http://127.0.0.1:19090",
        receiver="webhook", group_by=("alertname",),
    )
    engine.evaluate(STARTS_AT_S)
    [body] = notifier.payloads
    # One URL serves as both Prometheus's (generatorURL) and Alertmanager's (externalURL).
    assert body == {**AM_FIXTURE, "externalURL": "http://127.0.0.1:19090"}


def test_a_resolved_alert_ends_when_it_resolved() -> None:
    resolved = Alert(
        fingerprint="8e9b249c8f3b53af", labels={"alertname": "AlwaysFiring"}, annotations={},
        state=AlertState.RESOLVED, active_at_s=99.0, fired_at_s=100.0, resolved_at_s=160.5,
    )
    body = alertmanager_payload(
        [resolved], receiver="r", group_labels={"alertname": "AlwaysFiring"}, external_url="u"
    )
    assert body["status"] == "resolved"
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["startsAt"] == "1970-01-01T00:01:40.000Z"
    assert body["alerts"][0]["endsAt"] == "1970-01-01T00:02:40.500Z"


def test_common_labels_and_annotations_are_the_pairs_every_alert_shares() -> None:
    def alert(node: str, state: AlertState) -> Alert:
        return Alert(
            fingerprint="0", labels={"alertname": "NodeDown", "node": node, "severity": "page"},
            annotations={"summary": f"{node} is down", "runbook": "r"}, state=state,
            active_at_s=0.0, fired_at_s=0.0, resolved_at_s=1.0 if state == "resolved" else None,
        )

    body = alertmanager_payload(
        [alert("node-1", AlertState.FIRING), alert("node-2", AlertState.RESOLVED)],
        receiver="r", group_labels={"alertname": "NodeDown"}, external_url="u",
    )
    assert body["status"] == "firing"
    assert body["commonLabels"] == {"alertname": "NodeDown", "severity": "page"}
    assert body["commonAnnotations"] == {"runbook": "r"}
    assert [a["status"] for a in body["alerts"]] == ["firing", "resolved"]


def test_a_pending_alert_is_not_a_notification() -> None:
    pending = Alert(fingerprint="0", labels={"alertname": "X"}, annotations={},
                    state=AlertState.PENDING, active_at_s=0.0)
    with pytest.raises(ValueError, match="pending"):
        alertmanager_payload([pending], receiver="r", group_labels={}, external_url="u")


GROUP_KEYS = [
    ("one grouping label", {"alertname": "NodeDown"}, '{}:{alertname="NodeDown"}'),
    ("two, sorted and comma-separated", {"node": "node-1", "alertname": "NodeDown"},
     '{}:{alertname="NodeDown", node="node-1"}'),
    ("a value with a quote, escaped as Go quotes it", {"alertname": 'say "hi"'},
     '{}:{alertname="say \\"hi\\""}'),
    ("no grouping labels", {}, "{}:{}"),
]


@pytest.mark.parametrize(
    ("group_labels", "expected"), [case[1:] for case in GROUP_KEYS],
    ids=[case[0] for case in GROUP_KEYS],
)
def test_group_keys_are_written_as_alertmanager_writes_them(
    group_labels: dict[str, str], expected: str
) -> None:
    body = alertmanager_payload([], receiver="r", group_labels=group_labels, external_url="u")
    assert body["groupKey"] == expected


GENERATOR_URLS = [
    ("the fixture's expression", "vector(1)",
     "http://127.0.0.1:19090/graph?g0.expr=vector%281%29&g0.tab=1"),
    ("spaces, braces and quotes, as Go's url.QueryEscape writes them", 'up{job="nodes"} == 0',
     "http://127.0.0.1:19090/graph?g0.expr=up%7Bjob%3D%22nodes%22%7D+%3D%3D+0&g0.tab=1"),
]


@pytest.mark.parametrize(
    ("expr", "expected"), [case[1:] for case in GENERATOR_URLS],
    ids=[case[0] for case in GENERATOR_URLS],
)
def test_generator_urls_link_to_the_expression_as_prometheus_does(
    expr: str, expected: str
) -> None:
    assert generator_url("http://127.0.0.1:19090/", expr) == expected


@pytest.mark.parametrize(
    ("at_s", "expected"),
    [(STARTS_AT_S, "2026-11-22T10:26:35.168Z"), (0.0, "1970-01-01T00:00:00.000Z"),
     (1.9996, "1970-01-01T00:00:02.000Z")],
    ids=["the fixture's startsAt", "the epoch", "a time rounded to the nearest millisecond"],
)
def test_times_are_rfc3339_utc_with_milliseconds(at_s: float, expected: str) -> None:
    assert rfc3339(at_s) == expected
