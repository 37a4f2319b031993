"""Silences behind auth: on the alerts page a signed-in engineer lists, creates and expires
silences through the real control-plane API (alerting's routes over a real SilenceStore);
the store changes, with the engineer as the creator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dashboards_doubles import AlertBook, DecisionBook, ScriptedSource, SetClock, table_rows
from fastapi.testclient import TestClient
from test_dashboards_app import Page

from alerting import SilenceStore, create_alerting_router
from collectors import open_database
from dashboards import ControlPlaneClient, DashboardData, ElementId, create_app
from dashboards._actions import parse_matchers
from inferops._api import create_control_plane_api

TOKEN = "dashboard-silences-token"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'inferops.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def page(database: sa.Engine) -> Iterator[Page]:
    router = create_alerting_router(silences=SilenceStore(database), active_alerts=list,
                                    on_webhook=None, clock=time.time)
    api = create_control_plane_api(token=TOKEN, routers=[router])
    with TestClient(api, base_url="http://control-plane") as http:
        client = ControlPlaneClient("http://control-plane", client=http)
        data = DashboardData(ScriptedSource(), AlertBook(), DecisionBook([]),
                             clock=SetClock(1_700_000_000.0))
        yield Page(create_app(data, api=client))


def click(page: Page, button: str, **values: Any) -> str:
    [dependency] = [d for d in page.dependencies if d["output"] == "silence-status.children"]
    body = {
        "output": dependency["output"],
        "outputs": {"id": "silence-status", "property": "children"},
        "inputs": [{**spec, "value": 1 if spec["id"] == button else None}
                   for spec in dependency["inputs"]],
        "changedPropIds": [f"{button}.n_clicks"],
        "state": [{**spec, "value": values.get(spec["id"])} for spec in dependency["state"]],
    }
    response = page.client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["response"]["silence-status"]["children"])


def silence_rows(page: Page, session: str | None) -> list[Any]:
    answer = page.update((ElementId.SILENCES_TABLE, "children"), api_session=session,
                         page_alerts="page-view")
    return table_rows(answer[ElementId.SILENCES_TABLE]["children"])


def test_a_signed_in_engineer_creates_and_expires_a_silence(
    page: Page, database: sa.Engine
) -> None:
    answer = page.update((ElementId.SESSION, "data"), sign_in_button=1, api_name_input="carol",
                         api_token_input=TOKEN)
    session = answer[ElementId.SESSION]["data"]
    [empty] = silence_rows(page, session)
    assert empty.cells["message"][0] == "no silences"

    status = click(page, "create-silence-button", **{
        "api-session": session, "silence-matchers-input": "node=node-1, alertname=~Node.*",
        "silence-hours-input": "2", "silence-comment-input": "replacing the NIC"})
    [silence] = SilenceStore(database).list(include_expired=True)
    assert status == f"silence {silence.id} created by dashboard:carol"
    assert (silence.created_by, silence.comment) == ("dashboard:carol", "replacing the NIC")
    # Two hours from when the dashboard asked; the API starts it when it stores it.
    assert 7_100 < silence.ends_at_s - silence.starts_at_s <= 7_200
    [row] = silence_rows(page, session)
    assert {k: text for k, (text, _) in row.cells.items() if k != "ends_at"} == {
        "id": silence.id, "state": "active", "matchers": 'node="node-1", alertname=~"Node.*"',
        "created_by": "dashboard:carol", "comment": "replacing the NIC"}

    status = click(page, "expire-silence-button", **{"api-session": session,
                                                      "silence-id-input": silence.id})
    assert status == f"silence {silence.id} expired by dashboard:carol"
    [row] = silence_rows(page, session)
    assert row.cells["state"][0] == "expired"


@pytest.mark.parametrize(
    ("values", "expected"),
    [({"silence-matchers-input": "node", "silence-hours-input": "2"},
      "matchers: 'node' is not name=value (or !=, =~, !~)"),
     ({"silence-matchers-input": "node=node-1", "silence-hours-input": "two"},
      "hours: expected a number of hours, got 'two'"),
     ({"silence-matchers-input": "node=node-1", "silence-hours-input": "-1"},
      "hours: must be above zero, got '-1'"),
     ({"silence-matchers-input": "", "silence-hours-input": "1"},
      "matchers: at least one is needed, e.g. node=node-1")],
    ids=["a matcher without an operator", "hours not a number", "negative hours",
         "no matchers"],
)
def test_a_bad_silence_is_refused_with_the_field_named_and_nothing_stored(
    page: Page, database: sa.Engine, values: dict[str, str], expected: str
) -> None:
    answer = page.update((ElementId.SESSION, "data"), sign_in_button=1, api_name_input="carol",
                         api_token_input=TOKEN)
    status = click(page, "create-silence-button",
                   **{"api-session": answer[ElementId.SESSION]["data"], **values})
    assert status == expected
    assert SilenceStore(database).list(include_expired=True) == []


def test_signed_out_the_silences_stay_hidden_and_unchanged(page: Page,
                                                           database: sa.Engine) -> None:
    [row] = silence_rows(page, None)
    assert row.cells["message"][0] == "sign in on the remediation page to see and change silences"
    assert click(page, "create-silence-button", **{"silence-matchers-input": "node=node-1",
                                                   "silence-hours-input": "1"}) == (
        "sign in on the remediation page to see and change silences")
    assert SilenceStore(database).list(include_expired=True) == []


def test_matchers_are_read_as_alertmanager_v2_matchers() -> None:
    assert parse_matchers('node="node-1", alertname=~Node.*, severity!=info, job!~a|b') == [
        {"name": "node", "value": "node-1", "isRegex": False, "isEqual": True},
        {"name": "alertname", "value": "Node.*", "isRegex": True, "isEqual": True},
        {"name": "severity", "value": "info", "isRegex": False, "isEqual": False},
        {"name": "job", "value": "a|b", "isRegex": True, "isEqual": False},
    ]
