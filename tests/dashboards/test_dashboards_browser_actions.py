"""Approve, deny and silences clicked in a real browser (Chromium, through Playwright).

The control plane is real and served over HTTP by uvicorn on 127.0.0.1: its API
(`create_control_plane_api`, bearer token) with the alerting routes over a real
`SilenceStore` and the remediation routes over a real `RemediationEngine`, `DecisionLog`
and `IncidentLog`, all in one SQLite database. The fleet behind the engine is the
in-memory three-node fleet of the approvals tests (`ThreeNodes`: a drain takes effect at
once). Alertmanager's webhook, posted to the API, makes the engine ask for approval of a
drain of node-1 and one of node-2. The dashboard (`DashboardServer`, with a
`ControlPlaneClient` on that API) reads the same database.

In the browser an engineer is first refused with a wrong token, then signs in, approves
one drain and denies the other by clicking, then creates a silence through the form and
expires it; the stores must hold exactly that, the page must show it, and the console
must stay free of errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from served_app import serve
from test_dashboards_approvals import POLICY, ThreeNodes, webhook_for
from test_dashboards_browser import CHROMIUM, cells, go_to

from alerting import WEBHOOK_PATH, AlertStore, SilenceStore, create_alerting_router
from collectors import SampleStore, StoreSource, open_database
from dashboards import ControlPlaneClient, DashboardData, DashboardServer, ElementId, create_app
from inferops._api import create_control_plane_api
from remediation import (
    DecisionLog,
    IncidentLog,
    NodeStatus,
    Outcome,
    RemediationEngine,
    create_remediation_router,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]

sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

TOKEN = "browser-actions-token"
PAGE_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class ControlPlane:
    """What the test reads back: the stores behind the API, the fleet, the dashboard's URL
    and the two decisions waiting for approval."""

    dashboard_url: str
    decisions: DecisionLog
    silences: SilenceStore
    fleet: ThreeNodes
    node1_decision_id: int
    node2_decision_id: int


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    database = open_database(f"sqlite:///{tmp_path / 'inferops.db'}")
    fleet = ThreeNodes()
    decisions = DecisionLog(database)
    engine = RemediationEngine(fleet, decisions, POLICY, clock=time.time, verify_timeout_s=1.0)
    silences = SilenceStore(database)
    alerts = AlertStore(database)
    api = create_control_plane_api(token=TOKEN, routers=[
        create_alerting_router(silences=silences, active_alerts=alerts.active,
                               on_webhook=engine.handle_notification, clock=time.time),
        create_remediation_router(engine, decisions, IncidentLog(database)),
    ])
    client: ControlPlaneClient | None = None
    try:
        with serve(api) as api_url:
            for node in ("node-1", "node-2"):  # as Alertmanager delivers them
                response = httpx.post(f"{api_url}{WEBHOOK_PATH}", json=webhook_for(node),
                                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
                assert response.status_code == 200, response.text
            pending = {d.node: d.id for d in decisions.recent(10)}
            assert {d.outcome for d in decisions.recent(10)} == {Outcome.PENDING_APPROVAL}
            client = ControlPlaneClient(api_url, timeout_s=10)
            data = DashboardData(StoreSource(SampleStore(database)), alerts, decisions)
            with DashboardServer(create_app(data, refresh_s=1, api=client), port=0) as server:
                yield ControlPlane(server.url, decisions, silences, fleet,
                                   pending["node-1"], pending["node-2"])
    finally:
        if client is not None:
            client.close()
        engine.close()
        database.dispose()


def fill(page: Any, element: ElementId, text: str) -> None:
    page.fill(f"#{element}", text)


def wait_for_text(page: Any, element: ElementId, text: str) -> None:
    """Until the element reads exactly `text` (callbacks answer asynchronously)."""
    page.wait_for_function(
        "([id, text]) => document.getElementById(id)?.innerText.trim() === text",
        arg=[str(element), text],
    )


def wait_for_message(page: Any, table: ElementId, text: str) -> None:
    """Until the table is one message row reading `text`."""
    page.wait_for_function(
        "([table, text]) => document.querySelector(`#${table} td[data-column=\"message\"]`)"
        "?.innerText.trim() === text",
        arg=[str(table), text],
    )


def wait_for_cell(page: Any, table: ElementId, key: str, column: str, text: str) -> None:
    page.wait_for_function(
        "([table, key, column, text]) => document.querySelector("
        "`#${table} tr[data-key=\"${key}\"] td[data-column=\"${column}\"]`"
        ")?.innerText.trim() === text",
        arg=[str(table), key, column, text],
    )


def test_an_engineer_signs_in_approves_denies_and_silences_in_the_browser(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    node1, node2 = str(cp.node1_decision_id), str(cp.node2_decision_id)
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.on("console", lambda message: (
                console_errors.append(message.text) if message.type == "error" else None))
            page.on("pageerror", lambda error: console_errors.append(f"pageerror: {error}"))
            page.goto(cp.dashboard_url)
            go_to(page, "remediation")

            # Signed out: the pending decisions stay hidden.
            page.wait_for_selector(f'#{ElementId.REMEDIATIONS_TABLE} tr[data-key="{node2}"]')
            assert page.inner_text(f"#{ElementId.APPROVALS_TABLE} td") == (
                "sign in with the control-plane API token to review pending approvals")

            # A wrong token is refused on screen, and nothing opens up.
            fill(page, ElementId.API_NAME_INPUT, "mallory")
            fill(page, ElementId.API_TOKEN_INPUT, "not-the-token")
            page.click(f"#{ElementId.SIGN_IN_BUTTON}")
            wait_for_text(page, ElementId.SIGN_IN_STATUS,
                          "not signed in: the control-plane API answered 401: "
                          "missing or invalid bearer token")
            assert page.input_value(f"#{ElementId.API_TOKEN_INPUT}") == ""
            assert page.inner_text(f"#{ElementId.APPROVALS_TABLE} td") == (
                "sign in with the control-plane API token to review pending approvals")

            # The right one signs alice in; both drains are listed.
            fill(page, ElementId.API_NAME_INPUT, "alice")
            fill(page, ElementId.API_TOKEN_INPUT, TOKEN)
            page.click(f"#{ElementId.SIGN_IN_BUTTON}")
            wait_for_text(page, ElementId.SIGN_IN_STATUS, "signed in as dashboard:alice")
            page.wait_for_selector(f'#{ElementId.APPROVALS_TABLE} tr[data-key="{node2}"]')
            listed = {key: cells(page, ElementId.APPROVALS_TABLE, key) for key in (node1, node2)}
            assert {key: (row["action"], row["node"], row["alertname"])
                    for key, row in listed.items()} == {
                node1: ("drain", "node-1", "NodeHighErrorRate"),
                node2: ("drain", "node-2", "NodeHighErrorRate")}

            # Approve node-1's drain: the engine drains it, the approver is alice.
            fill(page, ElementId.DECISION_ID_INPUT, node1)
            fill(page, ElementId.REVIEW_REASON_INPUT, "checked the node")
            page.click(f"#{ElementId.APPROVE_BUTTON}")
            wait_for_text(page, ElementId.REVIEW_STATUS,
                          f"decision {node1}: approve by dashboard:alice -> succeeded")
            approved = cp.decisions.get(cp.node1_decision_id)
            assert approved is not None
            assert (approved.outcome, approved.approved_by) == (
                Outcome.SUCCEEDED, "dashboard:alice")
            assert cp.fleet.status["node-1"] is NodeStatus.DRAINED
            page.wait_for_selector(
                f'#{ElementId.APPROVALS_TABLE} tr[data-key="{node1}"]', state="detached")
            assert cells(page, ElementId.APPROVALS_TABLE, node2)["node"] == "node-2"

            # Deny node-2's: nothing happens to it, nothing is left to review.
            fill(page, ElementId.DECISION_ID_INPUT, node2)
            fill(page, ElementId.REVIEW_REASON_INPUT, "a false alarm")
            page.click(f"#{ElementId.DENY_BUTTON}")
            wait_for_text(page, ElementId.REVIEW_STATUS,
                          f"decision {node2}: deny by dashboard:alice -> denied")
            denied = cp.decisions.get(cp.node2_decision_id)
            assert denied is not None and denied.outcome is Outcome.DENIED
            assert cp.fleet.status["node-2"] is NodeStatus.SERVING
            wait_for_message(page, ElementId.APPROVALS_TABLE, "nothing is waiting for approval")

            # The audit trail shows both outcomes on its next refresh.
            wait_for_cell(page, ElementId.REMEDIATIONS_TABLE, node1, "outcome", "succeeded")
            wait_for_cell(page, ElementId.REMEDIATIONS_TABLE, node2, "outcome", "denied")
            asked = ("alert NodeHighErrorRate fired for {0} (policy drain-with-approval): "
                     "waiting for approval to drain {0} (now serving, healthy); "
                     "every guard passed; ")
            assert (approved.reason, denied.reason) == (
                asked.format("node-1") + "approved by dashboard:alice: node-1 is now drained",
                asked.format("node-2") + "denied by dashboard:alice: a false alarm")
            trail = {key: cells(page, ElementId.REMEDIATIONS_TABLE, key) for key in (node1, node2)}
            assert {key: (row["action"], row["node"], row["outcome"], row["reason"])
                    for key, row in trail.items()} == {
                node1: ("drain", "node-1", "succeeded", approved.reason),
                node2: ("drain", "node-2", "denied", denied.reason)}

            # Silences, on the alerts page, under the same sign-in.
            go_to(page, "alerts")
            wait_for_message(page, ElementId.SILENCES_TABLE, "no silences")
            fill(page, ElementId.SILENCE_MATCHERS_INPUT, "node=node-1, alertname=~Node.*")
            fill(page, ElementId.SILENCE_HOURS_INPUT, "2")
            fill(page, ElementId.SILENCE_COMMENT_INPUT, "replacing the NIC")
            page.click(f"#{ElementId.CREATE_SILENCE_BUTTON}")
            page.wait_for_function(
                "id => document.getElementById(id)?.innerText.startsWith('silence ')",
                arg=str(ElementId.SILENCE_STATUS))
            [silence] = cp.silences.list(include_expired=True)
            assert page.inner_text(f"#{ElementId.SILENCE_STATUS}") == (
                f"silence {silence.id} created by dashboard:alice")
            assert (silence.created_by, silence.comment) == (
                "dashboard:alice", "replacing the NIC")
            assert str(silence.state(time.time())) == "active"
            page.wait_for_selector(f'#{ElementId.SILENCES_TABLE} tr[data-key="{silence.id}"]')
            shown = cells(page, ElementId.SILENCES_TABLE, silence.id)
            assert {k: v for k, v in shown.items() if k != "ends_at"} == {
                "id": silence.id, "state": "active",
                "matchers": 'node="node-1", alertname=~"Node.*"',
                "created_by": "dashboard:alice", "comment": "replacing the NIC"}

            fill(page, ElementId.SILENCE_ID_INPUT, silence.id)
            page.click(f"#{ElementId.EXPIRE_SILENCE_BUTTON}")
            wait_for_text(page, ElementId.SILENCE_STATUS,
                          f"silence {silence.id} expired by dashboard:alice")
            assert str(cp.silences.get(silence.id).state(time.time())) == "expired"
            assert cp.silences.list() == []
            wait_for_cell(page, ElementId.SILENCES_TABLE, silence.id, "state", "expired")

            page.wait_for_timeout(1_500)  # another refresh or two, for late console errors
        finally:
            browser.close()
    assert console_errors == []
