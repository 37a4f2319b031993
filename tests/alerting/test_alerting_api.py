"""The alerting routes in Alertmanager's v2 shapes: silences created, read, listed and
expired over the stored `SilenceStore`; firing alerts as `GettableAlert`s; the webhook
receiver; every bad request a 4xx naming the field, storing nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from alerting_doubles import FIXTURE, ScriptedSource, sample
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alerting import AlertEngine, AlertStore, SilenceStore, create_alerting_router
from slo import AlertingRule

AT_S = 1_790_000_000.0  # 2026-09-21T14:13:20Z
NOW_S = AT_S + 10
LATENCY = AlertingRule("NodeHighLatency", "latency > 1", labels={"severity": "page"},
                       annotations={"summary": "slow {{ $labels.node }}"})


class Pipeline:
    def __init__(self, database: sa.Engine) -> None:
        self.silences = SilenceStore(database)
        source = ScriptedSource()
        source.script("latency > 1", {AT_S: [sample(2.5, AT_S, node="node-1"),
                                             sample(3.0, AT_S, node="node-2")]})
        self.engine = AlertEngine(source, AlertStore(database), [LATENCY],
                                  silences=self.silences, external_url="http://cp:8050")
        self.webhooks: list[dict[str, Any]] = []
        app = FastAPI()
        app.include_router(create_alerting_router(
            silences=self.silences, active_alerts=self.engine.active,
            on_webhook=self.webhooks.append, clock=lambda: NOW_S, max_body_bytes=4096,
        ))
        self.client = TestClient(app)


@pytest.fixture
def pipeline(database: sa.Engine) -> Pipeline:
    return Pipeline(database)


SILENCE_BODY = {
    "matchers": [
        {"name": "node", "value": "node-1", "isRegex": False, "isEqual": True},
        {"name": "alertname", "value": "Node.*", "isRegex": True},
    ],
    "startsAt": "2026-09-21T14:13:30.000Z",
    "endsAt": "2026-09-21T16:13:30.000Z",
    "createdBy": "alice",
    "comment": "replacing the NIC",
}


def test_a_posted_silence_reads_back_in_alertmanagers_gettable_shape(pipeline: Pipeline) -> None:
    created = pipeline.client.post("/api/v2/silences", json=SILENCE_BODY)
    assert created.status_code == 200
    silence_id = created.json()["silenceID"]
    assert list(created.json()) == ["silenceID"]
    expected = {
        "id": silence_id,
        "status": {"state": "active"},
        "updatedAt": "2026-09-21T14:13:30.000Z",
        "matchers": [
            {"name": "node", "value": "node-1", "isRegex": False, "isEqual": True},
            {"name": "alertname", "value": "Node.*", "isRegex": True, "isEqual": True},
        ],
        "startsAt": "2026-09-21T14:13:30.000Z",
        "endsAt": "2026-09-21T16:13:30.000Z",
        "createdBy": "alice",
        "comment": "replacing the NIC",
    }
    assert pipeline.client.get(f"/api/v2/silence/{silence_id}").json() == expected
    assert pipeline.client.get("/api/v2/silences").json() == [expected]


def test_the_silences_list_filters_by_matchers_on_the_silences_labels(pipeline: Pipeline) -> None:
    pipeline.client.post("/api/v2/silences", json=SILENCE_BODY)
    other = {**SILENCE_BODY, "matchers": [
        {"name": "node", "value": "node-2", "isRegex": False, "isEqual": True}]}
    pipeline.client.post("/api/v2/silences", json=other)
    node_2 = pipeline.client.get("/api/v2/silences", params={"filter": 'node="node-2"'}).json()
    assert [s["matchers"][0]["value"] for s in node_2] == ["node-2"]
    assert len(pipeline.client.get("/api/v2/silences").json()) == 2


def test_deleting_a_silence_expires_it_and_it_stays_on_record(pipeline: Pipeline) -> None:
    silence_id = pipeline.client.post("/api/v2/silences", json=SILENCE_BODY).json()["silenceID"]
    deleted = pipeline.client.delete(f"/api/v2/silence/{silence_id}")
    assert (deleted.status_code, deleted.content) == (200, b"")
    shown = pipeline.client.get(f"/api/v2/silence/{silence_id}").json()
    assert (shown["status"], shown["endsAt"]) == ({"state": "expired"},
                                                  "2026-09-21T14:13:30.000Z")


def test_posting_with_an_id_replaces_that_silence(pipeline: Pipeline) -> None:
    first = pipeline.client.post("/api/v2/silences", json=SILENCE_BODY).json()["silenceID"]
    second = pipeline.client.post(
        "/api/v2/silences", json={**SILENCE_BODY, "id": first, "comment": "longer"}
    ).json()["silenceID"]
    assert second != first
    states = {s["id"]: (s["status"]["state"], s["comment"])
              for s in pipeline.client.get("/api/v2/silences").json()}
    assert states == {first: ("expired", "replacing the NIC"), second: ("active", "longer")}


@pytest.mark.parametrize(("body", "status", "error"), [
    ({**SILENCE_BODY, "matchers": [{"name": "node", "value": "(", "isRegex": True}]}, 400,
     "matchers: matcher node=~\"(\": '(' is not a valid regular expression: missing ), "
     "unterminated subpattern at position 0"),
    ({**SILENCE_BODY, "matchers": [{"name": "no-de", "value": "x", "isRegex": False}]}, 400,
     "matchers: matcher no-de=\"x\": 'no-de' is not a valid label name"),
    ({**SILENCE_BODY, "matchers": [{"name": "node", "value": ".*", "isRegex": True}]}, 400,
     'matchers: node=~".*" would match every alert'),
    ({**SILENCE_BODY, "matchers": []}, 400, "matchers: a silence needs at least one matcher"),
    ({**SILENCE_BODY, "endsAt": "2026-09-21T14:00:00Z"}, 400,
     "ends_at_s: 1789999200.0 is not after starts_at_s 1790000010.0"),
    ({**SILENCE_BODY, "comment": " "}, 400, "comment: say why the alerts are silenced"),
    ({**SILENCE_BODY, "startsAt": "yesterday"}, 400,
     "startsAt: Input should be a valid datetime or date, input is too short"),
    ({k: v for k, v in SILENCE_BODY.items() if k != "createdBy"}, 400,
     "createdBy: Field required"),
    ({**SILENCE_BODY, "id": "no-such-id"}, 404, "id: no silence 'no-such-id'"),
], ids=["bad-regex", "bad-name", "matches-all", "no-matchers", "ends-before-start",
        "no-comment", "bad-time", "no-author", "unknown-id"])
def test_a_bad_silence_is_refused_naming_the_field_and_nothing_is_stored(
    pipeline: Pipeline, body: dict[str, Any], status: int, error: str
) -> None:
    response = pipeline.client.post("/api/v2/silences", json=body)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert pipeline.silences.list(include_expired=True) == []


def test_unknown_silence_ids_are_404(pipeline: Pipeline) -> None:
    for method in ("GET", "DELETE"):
        response = pipeline.client.request(method, "/api/v2/silence/nope")
        assert (response.status_code, response.json()) == (404, {"error": "id: no silence 'nope'"})


def test_firing_alerts_read_as_gettable_alerts_with_a_silenced_one_suppressed(
    pipeline: Pipeline,
) -> None:
    pipeline.silences.create(['node="node-2"'], ends_at_s=AT_S + 3600, created_by="bob",
                             comment="known", now_s=AT_S - 1)
    pipeline.engine.evaluate(AT_S)
    alerts = pipeline.client.get("/api/v2/alerts").json()
    silence_id = pipeline.silences.list(at_s=AT_S)[0].id
    common = {
        "annotations": {}, "startsAt": "2026-09-21T14:13:20.000Z",
        "endsAt": "0001-01-01T00:00:00.000Z", "updatedAt": "2026-09-21T14:13:20.000Z",
        "generatorURL": "http://cp:8050/graph?g0.expr=latency+%3E+1&g0.tab=1",
        "receivers": [{"name": "inferops"}],
    }
    assert [{k: v for k, v in a.items() if k != "fingerprint"} for a in alerts] == [
        {**common,
         "labels": {"alertname": "NodeHighLatency", "node": "node-1", "severity": "page"},
         "annotations": {"summary": "slow node-1"},
         "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
        {**common,
         "labels": {"alertname": "NodeHighLatency", "node": "node-2", "severity": "page"},
         "annotations": {"summary": "slow node-2"},
         "status": {"state": "suppressed", "silencedBy": [silence_id], "inhibitedBy": []}},
    ]
    only_active = pipeline.client.get("/api/v2/alerts", params={"silenced": "false"}).json()
    assert [a["labels"]["node"] for a in only_active] == ["node-1"]
    filtered = pipeline.client.get("/api/v2/alerts", params={"filter": 'node=~"node-2"'}).json()
    assert [a["labels"]["node"] for a in filtered] == ["node-2"]
    bad = pipeline.client.get("/api/v2/alerts", params={"filter": "node~x"})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("filter: matcher 'node~x': expected name=value")


def test_a_real_alertmanager_webhook_is_handed_on_as_it_came(pipeline: Pipeline) -> None:
    body = json.loads(FIXTURE.read_text(encoding="utf-8"))
    response = pipeline.client.post("/api/v1/alerts/webhook", json=body)
    assert (response.status_code, response.json()) == (200, {"status": "accepted", "alerts": 1})
    assert pipeline.webhooks == [body]


@pytest.mark.parametrize(("content", "status", "error"), [
    (b"{not json", 400, "body: not JSON: Expecting property name enclosed in double quotes: "
     "line 1 column 2 (char 1)"),
    (json.dumps({"version": "3"}).encode(), 400, "version: Input should be '4'"),
    (b"x" * 5000, 413, "body: over 4096 bytes"),
], ids=["not-json", "wrong-version", "too-big"])
def test_a_bad_webhook_is_refused_and_nothing_is_handed_on(
    pipeline: Pipeline, content: bytes, status: int, error: str
) -> None:
    response = pipeline.client.post("/api/v1/alerts/webhook", content=content)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert pipeline.webhooks == []


def test_without_remediation_the_webhook_answers_409(database: sa.Engine) -> None:
    app = FastAPI()
    app.include_router(create_alerting_router(
        silences=SilenceStore(database), active_alerts=list, on_webhook=None, clock=lambda: NOW_S,
    ))
    body = json.loads(FIXTURE.read_text(encoding="utf-8"))
    response = TestClient(app).post("/api/v1/alerts/webhook", json=body)
    assert (response.status_code, response.json()) == (
        409, {"error": "remediation is disabled: nothing takes alert webhooks"}
    )
