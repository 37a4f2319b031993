"""Approvals behind auth: the remediation page signs an engineer in with the control-plane
API token (kept server-side, keyed by a session id), lists the decisions pending approval
and approves or denies one, all through the real control-plane API over a real engine;
the decision's state in the store changes, with the engineer as the approver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dashboards_doubles import AlertBook, DecisionBook, ScriptedSource, SetClock, table_rows
from fastapi.testclient import TestClient
from test_dashboards_app import Page

from collectors import open_database
from dashboards import ControlPlaneClient, DashboardData, ElementId, create_app
from inferops._api import create_control_plane_api
from remediation import (
    DecisionLog,
    IncidentLog,
    NodeState,
    NodeStatus,
    Outcome,
    ProfileTable,
    RemediationEngine,
    create_remediation_router,
    parse_remediation_policy,
)

TOKEN = "dashboard-approvals-token"
NOW_S = 1_700_000_000.0
WEBHOOK = Path(__file__).parents[1] / "alerting" / "fixtures" / "alertmanager-0.25-webhook.json"
POLICY = parse_remediation_policy("""
version: inferops/v1
policies:
  - name: drain-with-approval
    match: {alertname: NodeHighErrorRate}
    mode: approval
    steps: [drain]
""")


class ThreeNodes:
    """A fleet of three serving nodes whose drain takes effect at once."""

    def __init__(self) -> None:
        self.status = {f"node-{i}": NodeStatus.SERVING for i in range(3)}

    def nodes(self) -> list[NodeState]:
        return [NodeState(name, status, healthy=True, in_flight=0)
                for name, status in self.status.items()]

    def drain(self, node: str) -> None:
        self.status[node] = NodeStatus.DRAINED

    def undrain(self, node: str) -> None:
        self.status[node] = NodeStatus.SERVING

    def cycle(self, node: str) -> None:
        self.status[node] = NodeStatus.SERVING

    def set_weight(self, node: str, weight: float) -> None:
        raise AssertionError("not used here")

    def profile(self, node: str, seconds: float) -> ProfileTable:
        raise AssertionError("not used here")


def webhook_for(node: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(WEBHOOK.read_text(encoding="utf-8"))
    one = dict(body["alerts"][0])
    one["labels"] = {"alertname": "NodeHighErrorRate", "severity": "page", "node": node}
    one["fingerprint"] = f"fp-{node}"
    body["alerts"] = [one]
    return body


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'inferops.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def engine(database: sa.Engine) -> Iterator[RemediationEngine]:
    engine = RemediationEngine(ThreeNodes(), DecisionLog(database), POLICY,
                               clock=SetClock(NOW_S), verify_timeout_s=1.0)
    yield engine
    engine.close()


@pytest.fixture
def page(engine: RemediationEngine, database: sa.Engine) -> Iterator[Page]:
    log = DecisionLog(database)
    api = create_control_plane_api(
        token=TOKEN, routers=[create_remediation_router(engine, log, IncidentLog(database))])
    with TestClient(api, base_url="http://control-plane") as http:
        client = ControlPlaneClient("http://control-plane", client=http)
        data = DashboardData(ScriptedSource(), AlertBook(), DecisionBook([]),
                             clock=SetClock(NOW_S))
        yield Page(create_app(data, api=client))


def press(page: Page, button: str, **values: Any) -> dict[str, Any]:
    """A click on `button` (approve or deny), the review callback's answer."""
    [dependency] = [d for d in page.dependencies if d["output"] == "review-status.children"]
    body = {
        "output": dependency["output"],
        "outputs": {"id": "review-status", "property": "children"},
        "inputs": [{**spec, "value": 1 if spec["id"] == button else None}
                   for spec in dependency["inputs"]],
        "changedPropIds": [f"{button}.n_clicks"],
        "state": [{**spec, "value": values.get(spec["id"])} for spec in dependency["state"]],
    }
    response = page.client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()["response"]["review-status"]
    return answer


def sign_in(page: Page, name: str, token: str) -> tuple[str | None, str]:
    answer = page.update((ElementId.SESSION, "data"), sign_in_button=1, api_name_input=name,
                         api_token_input=token)
    return answer[ElementId.SESSION]["data"], answer[ElementId.SIGN_IN_STATUS]["children"]


def pending_rows(page: Page, session: str | None) -> list[Any]:
    answer = page.update((ElementId.APPROVALS_TABLE, "children"), api_session=session,
                         page_remediation="page-view")
    return table_rows(answer[ElementId.APPROVALS_TABLE]["children"])


def test_a_wrong_token_does_not_sign_in(page: Page) -> None:
    session, status = sign_in(page, "bob", "not-the-token")
    assert session is None
    assert status == ("not signed in: the control-plane API answered 401: "
                      "missing or invalid bearer token")
    [row] = pending_rows(page, "made-up-session")
    assert row.cells["message"][0] == (
        "sign in with the control-plane API token to review pending approvals")


@pytest.mark.parametrize(("button", "outcome"), [("approve-button", Outcome.SUCCEEDED),
                                                 ("deny-button", Outcome.DENIED)])
def test_a_signed_in_engineer_approves_or_denies_a_pending_drain(
    page: Page, engine: RemediationEngine, database: sa.Engine, button: str, outcome: Outcome
) -> None:
    [pending] = engine.handle_notification(webhook_for("node-1"))
    assert pending.outcome is Outcome.PENDING_APPROVAL

    session, status = sign_in(page, "alice", TOKEN)
    assert status == "signed in as dashboard:alice"
    assert session is not None and TOKEN not in session
    [row] = pending_rows(page, session)
    assert (row.key, row.cells["action"][0], row.cells["node"][0],
            row.cells["alertname"][0]) == (str(pending.id), "drain", "node-1",
                                           "NodeHighErrorRate")

    verdict = "approve" if button == "approve-button" else "deny"
    answer = press(page, button, **{"api-session": session, "decision-id-input": pending.id,
                                    "review-reason-input": "checked the node"})
    assert answer == {"children": f"decision {pending.id}: {verdict} by dashboard:alice -> "
                                  f"{outcome}"}
    decided = DecisionLog(database).get(pending.id)
    assert decided is not None and decided.outcome is outcome
    if outcome is Outcome.SUCCEEDED:
        assert decided.approved_by == "dashboard:alice"
    [empty] = pending_rows(page, session)
    assert empty.cells["message"][0] == "nothing is waiting for approval"

    again = press(page, button, **{"api-session": session, "decision-id-input": pending.id})
    assert again == {"children": f"decision {pending.id}: the control-plane API answered 409: "
                                 f"decision {pending.id} is not pending approval (its outcome "
                                 f"is {outcome})"}


def test_without_a_session_nothing_is_sent(page: Page, engine: RemediationEngine,
                                           database: sa.Engine) -> None:
    [pending] = engine.handle_notification(webhook_for("node-2"))
    answer = press(page, "approve-button", **{"decision-id-input": pending.id})
    assert answer == {
        "children": "sign in with the control-plane API token to review pending approvals"}
    still = DecisionLog(database).get(pending.id)
    assert still is not None and still.outcome is Outcome.PENDING_APPROVAL
