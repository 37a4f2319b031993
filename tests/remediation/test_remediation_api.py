"""The remediation routes of the control-plane API (CONTRACTS3.md), through the control plane's
own app (bearer token, error shapes) over a real engine whose reference-fleet driver talks
to a stand-in router over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from remediation_doubles import (
    ADMIN_TOKEN,
    SetClock,
    StandInRouter,
    alert,
    serve_stand_in_router,
    webhook,
)

from inferops._api import create_control_plane_api
from remediation import (
    DecisionLog,
    IncidentLog,
    Outcome,
    ReferenceFleetDriver,
    RemediationEngine,
    create_remediation_router,
    parse_remediation_policy,
)

API_TOKEN = "api-test-token"
POLICY = parse_remediation_policy("""
version: inferops/v1
policies:
  - name: drain-with-approval
    match: {alertname: NodeHighErrorRate}
    mode: approval
    steps: [drain]
""")


@pytest.fixture(scope="module")
def served_router() -> Iterator[StandInRouter]:
    """One stand-in router for the module (starting one per test is most of the runtime)."""
    yield from serve_stand_in_router()


@pytest.fixture
def router(served_router: StandInRouter) -> StandInRouter:
    """The module's stand-in router, back to three serving nodes and no requests seen."""
    served_router.reset()
    served_router.seen.clear()
    return served_router


@pytest.fixture
def engine(router: StandInRouter, log: DecisionLog, clock: SetClock
           ) -> Iterator[RemediationEngine]:
    driver = ReferenceFleetDriver(router.url, admin_token=ADMIN_TOKEN)
    engine = RemediationEngine(driver, log, POLICY, clock=clock, cooldown_s=300.0,
                               verify_timeout_s=2.0)
    yield engine
    engine.close()
    driver.close()


def client_for(engine: RemediationEngine | None, log: DecisionLog) -> TestClient:
    router = create_remediation_router(engine, log, IncidentLog(log.database))
    app = create_control_plane_api(token=API_TOKEN, routers=[router])
    return TestClient(app, headers={"Authorization": f"Bearer {API_TOKEN}",
                                    "X-InferOps-Actor": "cli:alice"})


@pytest.fixture
def api(engine: RemediationEngine, log: DecisionLog) -> Iterator[TestClient]:
    with client_for(engine, log) as client:
        yield client


def test_a_manual_drain_acts_and_answers_the_stored_decision(
    api: TestClient, router: StandInRouter, log: DecisionLog
) -> None:
    response = api.post("/api/v1/remediation/actions",
                        json={"action": "drain", "node": "node-1", "reason": "INC-1 bad DIMM"})

    assert response.status_code == 200
    assert response.json() == {"decision": {
        "id": 1, "action": "drain", "node": "node-1", "outcome": "succeeded",
        "reason": "INC-1 bad DIMM: node-1 is now drained", "guard": None, "actor": "cli:alice",
        "alertname": None, "alert_fingerprint": None, "started_at_s": 1000.0,
        "finished_at_s": 1000.0, "params": {}, "evidence": "", "incident_id": None,
        "approved_by": None,
    }}
    assert router.nodes["node-1"]["status"] == "drained"
    assert [(d.id, d.outcome, d.actor) for d in log.recent()] == [
        (1, Outcome.SUCCEEDED, "cli:alice")]


def test_a_refused_action_is_200_with_the_guard_named(
    api: TestClient, router: StandInRouter
) -> None:
    router.nodes["node-0"].update(status="down", healthy=False)
    router.nodes["node-2"]["status"] = "drained"

    response = api.post("/api/v1/remediation/actions", json={"action": "cycle", "node": "node-1"})

    assert response.status_code == 200
    decision = response.json()["decision"]
    assert (decision["outcome"], decision["guard"], decision["reason"]) == (
        "refused", "disruption-budget",
        "manual cycle: cycling node-1 would leave 0 nodes serving and healthy (none); the "
        "disruption budget needs at least 1")
    assert router.nodes["node-1"]["status"] == "serving"


def test_a_dry_run_decides_without_touching_the_fleet(
    api: TestClient, router: StandInRouter
) -> None:
    response = api.post("/api/v1/remediation/actions",
                        json={"action": "drain", "node": "node-2", "dry_run": True})

    decision = response.json()["decision"]
    assert (decision["outcome"], decision["reason"]) == (
        "dry_run", "manual drain: dry run: would drain node-2 (now serving, healthy); every "
        "guard passed")
    assert router.seen == ["GET /admin/nodes"]


def test_an_unknown_node_is_404_naming_the_known_ones_and_is_recorded(
    api: TestClient, log: DecisionLog
) -> None:
    response = api.post("/api/v1/remediation/actions", json={"action": "drain", "node": "node-9"})

    assert (response.status_code, response.json()) == (
        404, {"error": "unknown node 'node-9'; known: node-0, node-1, node-2"})
    assert [(d.node, d.outcome, d.guard) for d in log.recent()] == [
        ("node-9", Outcome.REFUSED, "unknown-node")]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"action": "reboot", "node": "node-1"}, 400,
         "action: unknown action 'reboot'; expected one of: drain, undrain, cycle, reroute, "
         "profile"),
        ({"node": "node-1"}, 400, "action: Field required"),
        ({"action": "drain", "node": "node-1", "force": True}, 400,
         "force: Extra inputs are not permitted (got True)"),
        ({"action": "drain", "node": 7}, 400, "node: Input should be a valid string (got 7)"),
        ({"action": "reroute", "node": "node-1", "params": {"weight": "-1"}}, 400,
         "params: reroute.weight must be >= 0, got -1"),
        ({"action": "drain", "node": "node-1", "params": {"weight": "0"}}, 400,
         "params: step drain: unknown parameter 'weight'; expected: none"),
        (["drain"], 400, "body: expected a JSON object, got list"),
    ],
    ids=["unknown action", "no action", "extra field", "node not text", "negative weight",
         "param of another action", "not an object"],
)
def test_a_bad_body_is_400_naming_the_field_and_stores_nothing(
    api: TestClient, router: StandInRouter, log: DecisionLog,
    body: Any, status: int, error: str,
) -> None:
    response = api.post("/api/v1/remediation/actions", json=body)

    assert (response.status_code, response.json()) == (status, {"error": error})
    assert log.recent() == []
    assert router.seen == []


def test_a_body_over_the_limit_is_413(api: TestClient) -> None:
    response = api.post("/api/v1/remediation/actions",
                        json={"action": "drain", "node": "node-1", "reason": "x" * 70_000})
    assert (response.status_code, response.json()) == (413, {"error": "body: over 65536 bytes"})


def test_every_route_needs_the_bearer_token(engine: RemediationEngine, log: DecisionLog) -> None:
    with client_for(engine, log) as client:
        for method, path in [
            ("GET", "/api/v1/remediation/decisions"), ("GET", "/api/v1/remediation/status"),
            ("POST", "/api/v1/remediation/actions"), ("POST", "/api/v1/remediation/pause"),
            ("POST", "/api/v1/remediation/resume"), ("GET", "/api/v1/incidents"),
            ("POST", "/api/v1/remediation/decisions/1/approve"),
        ]:
            response = client.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert (response.status_code, response.json()) == (
                401, {"error": "missing or invalid bearer token"}), path
    assert log.recent() == []


def pending_drain(engine: RemediationEngine) -> int:
    [pending] = engine.handle_notification(
        webhook(alert("NodeHighErrorRate", node="node-1", fingerprint="e1")))
    assert pending.outcome == Outcome.PENDING_APPROVAL
    return pending.id


def test_approve_acts_on_a_pending_decision_as_the_caller(
    api: TestClient, engine: RemediationEngine, router: StandInRouter
) -> None:
    decision_id = pending_drain(engine)

    response = api.post(f"/api/v1/remediation/decisions/{decision_id}/approve", json={})

    decision = response.json()["decision"]
    assert (response.status_code, decision["outcome"], decision["approved_by"],
            decision["actor"]) == (200, "succeeded", "cli:alice", "policy:drain-with-approval")
    assert router.nodes["node-1"]["status"] == "drained"
    again = api.post(f"/api/v1/remediation/decisions/{decision_id}/approve")
    assert (again.status_code, again.json()) == (409, {
        "error": f"decision {decision_id} is not pending approval (its outcome is succeeded)"})


def test_deny_records_the_reason_and_leaves_the_node_alone(
    api: TestClient, engine: RemediationEngine, router: StandInRouter
) -> None:
    decision_id = pending_drain(engine)

    response = api.post(f"/api/v1/remediation/decisions/{decision_id}/deny",
                        json={"reason": "the errors are the client's"})

    decision = response.json()["decision"]
    assert (decision["outcome"], decision["reason"]) == (
        "denied", "alert NodeHighErrorRate fired for node-1 (policy drain-with-approval): "
                  "waiting for approval to drain node-1 (now serving, healthy); every guard "
                  "passed; denied by cli:alice: the errors are the client's")
    assert router.nodes["node-1"]["status"] == "serving"


@pytest.mark.parametrize("verdict", ["approve", "deny"])
def test_approving_or_denying_an_unknown_decision_is_404(api: TestClient, verdict: str) -> None:
    response = api.post(f"/api/v1/remediation/decisions/42/{verdict}", json={})
    assert (response.status_code, response.json()) == (
        404, {"error": "no remediation decision with id 42"})


def test_pause_and_resume_flip_the_stored_kill_switch(
    api: TestClient, engine: RemediationEngine
) -> None:
    closed_breaker = {"open": False, "reason": None, "opened_at_s": None}
    assert api.get("/api/v1/remediation/status").json() == {
        "paused": False, "since_s": None, "actor": None, "reason": None,
        "breaker": closed_breaker}

    paused = api.post("/api/v1/remediation/pause", json={"reason": "GPU firmware rollout"})

    assert paused.json() == {
        "paused": True, "since_s": 1000.0, "actor": "cli:alice",
        "reason": "GPU firmware rollout", "breaker": closed_breaker}
    assert engine.kill_switch().paused
    assert api.get("/api/v1/remediation/status").json() == paused.json()
    resumed = api.post("/api/v1/remediation/resume")
    assert resumed.json()["paused"] is False
    assert not engine.kill_switch().paused


def test_decisions_filter_by_node_and_outcome_and_one_is_read_by_id(
    api: TestClient, log: DecisionLog
) -> None:
    for node, outcome in [("node-1", Outcome.SUCCEEDED), ("node-2", Outcome.REFUSED),
                          ("node-1", Outcome.REFUSED)]:
        log.record(action="drain", node=node, outcome=outcome, reason="r", actor="api",
                   started_at_s=1.0)

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/remediation/decisions{query}")
        return [d["id"] for d in response.json()["decisions"]]

    assert ids("") == [3, 2, 1]
    assert ids("?node=node-1") == [3, 1]
    assert ids("?outcome=refused") == [3, 2]
    assert ids("?node=node-1&outcome=refused&limit=5") == [3]
    assert ids("?limit=1") == [3]
    assert api.get("/api/v1/remediation/decisions/2").json()["decision"]["node"] == "node-2"
    bad = api.get("/api/v1/remediation/decisions?outcome=exploded")
    assert (bad.status_code, bad.json()["error"]) == (
        400, "outcome: unknown outcome 'exploded'; expected one of: succeeded, failed, refused, "
             "dry_run, skipped, pending_approval, denied, rolled_back, interrupted")
    missing = api.get("/api/v1/remediation/decisions/9")
    assert (missing.status_code, missing.json()) == (
        404, {"error": "no remediation decision with id 9"})


def test_incidents_list_and_show_their_timeline(
    api: TestClient, engine: RemediationEngine
) -> None:
    decision_id = pending_drain(engine)
    api.post(f"/api/v1/remediation/decisions/{decision_id}/deny", json={"reason": "no"})

    [listed] = api.get("/api/v1/incidents").json()["incidents"]
    shown = api.get(f"/api/v1/incidents/{listed['id']}").json()["incident"]

    assert shown == listed
    assert {key: shown[key] for key in ("title", "node", "alertname", "alert_fingerprint",
                                        "opened_at_s", "closed_at_s", "notes")} == {
        "title": "NodeHighErrorRate on node-1", "node": "node-1",
        "alertname": "NodeHighErrorRate", "alert_fingerprint": "e1", "opened_at_s": 1000.0,
        "closed_at_s": None, "notes": []}
    assert [(d["id"], d["outcome"]) for d in shown["decisions"]] == [(decision_id, "denied")]
    missing = api.get("/api/v1/incidents/77")
    assert (missing.status_code, missing.json()) == (404, {"error": "no incident with id 77"})


def test_without_an_engine_reads_and_the_kill_switch_work_but_actions_are_409(
    database: sa.Engine, log: DecisionLog
) -> None:
    with client_for(None, log) as client:
        action = client.post("/api/v1/remediation/actions",
                             json={"action": "drain", "node": "node-1"})
        assert (action.status_code, action.json()["error"]) == (409, (
            "remediation is not enabled in this control plane (set remediation.policy_file "
            "and the fleet admin token, and remediation.enabled: true)"))
        paused = client.post("/api/v1/remediation/pause", json={"reason": "maintenance"})
        assert (paused.json()["paused"], paused.json()["actor"]) == (True, "cli:alice")
        assert client.get("/api/v1/remediation/decisions").json() == {"decisions": []}
