"""Notifications in: the webhook receiver takes Alertmanager's bodies, and refuses bad ones
before anything sees them."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from alerting_doubles import FIXTURE
from fastapi.testclient import TestClient

from alerting import WEBHOOK_PATH, create_alert_receiver_app

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Handled:
    def __init__(self, *, fail: bool = False) -> None:
        self.payloads: list[Mapping[str, Any]] = []
        self.fail = fail

    def __call__(self, payload: Mapping[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("the fleet driver is down")
        self.payloads.append(payload)


def fixture_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return body


@pytest.fixture
def handled() -> Handled:
    return Handled()


@pytest.fixture
def client(handled: Handled) -> TestClient:
    return TestClient(create_alert_receiver_app(handled, token=TOKEN, max_body_bytes=4096))


def test_a_real_alertmanager_body_is_handed_on_as_it_came(
    client: TestClient, handled: Handled
) -> None:
    response = client.post(WEBHOOK_PATH, json=fixture_body(), headers=AUTH)
    assert (response.status_code, response.json()) == (200, {"status": "accepted", "alerts": 1})
    assert handled.payloads == [fixture_body()]


AUTH_CASES = [
    ("no header", {}),
    ("a wrong token", {"Authorization": "Bearer nope"}),
    ("basic auth", {"Authorization": "Basic dDBrZW4="}),
]


@pytest.mark.parametrize("headers", [c[1] for c in AUTH_CASES], ids=[c[0] for c in AUTH_CASES])
def test_a_request_without_the_token_is_refused_with_401(
    headers: dict[str, str], client: TestClient, handled: Handled
) -> None:
    response = client.post(WEBHOOK_PATH, json=fixture_body(), headers=headers)
    assert (response.status_code, response.json()) == (
        401, {"detail": "missing or wrong bearer token"}
    )
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert handled.payloads == []


def _without(path: list[str | int]) -> dict[str, Any]:
    body = fixture_body()
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


def _with(path: list[str | int], value: object) -> dict[str, Any]:
    body = fixture_body()
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


SCHEMA_CASES = [
    ("no alerts list", _without(["alerts"]), [{"field": "alerts", "error": "Field required"}]),
    ("a version other than 4", _with(["version"], "3"),
     [{"field": "version", "error": "Input should be '4'"}]),
    ("an alert with an unknown status", _with(["alerts", 0, "status"], "pending"),
     [{"field": "alerts[0].status", "error": "Input should be 'firing' or 'resolved'"}]),
    ("a label that is not a string", _with(["alerts", 0, "labels", "node"], 3),
     [{"field": "alerts[0].labels.node", "error": "Input should be a valid string"}]),
    ("a start time that is no time", _with(["alerts", 0, "startsAt"], "yesterday"),
     [{"field": "alerts[0].startsAt",
       "error": "Input should be a valid datetime or date, input is too short"}]),
]


@pytest.mark.parametrize(
    ("body", "problems"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_a_body_of_the_wrong_shape_gets_422_naming_the_field_and_reaches_nothing(
    body: dict[str, Any], problems: list[dict[str, str]], client: TestClient, handled: Handled
) -> None:
    response = client.post(WEBHOOK_PATH, json=body, headers=AUTH)
    assert (response.status_code, response.json()) == (422, {"detail": problems})
    assert handled.payloads == []


def test_bytes_that_are_not_json_get_400(client: TestClient, handled: Handled) -> None:
    response = client.post(WEBHOOK_PATH, content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("body is not JSON: Expecting property name")
    assert handled.payloads == []


def test_a_body_over_the_limit_gets_413_declared_or_streamed(
    client: TestClient, handled: Handled
) -> None:
    big = fixture_body()
    big["alerts"] = [copy.deepcopy(big["alerts"][0]) for _ in range(20)]
    data = json.dumps(big).encode()
    declared = client.post(WEBHOOK_PATH, content=data, headers=AUTH)
    streamed = client.post(
        WEBHOOK_PATH, content=iter([data[:3000], data[3000:]]), headers=AUTH
    )
    assert [r.status_code for r in (declared, streamed)] == [413, 413]
    assert declared.json() == {"detail": "body over 4096 bytes"}
    assert handled.payloads == []


def test_a_handler_failure_is_a_500_so_alertmanager_retries() -> None:
    client = TestClient(create_alert_receiver_app(Handled(fail=True), token=TOKEN))
    response = client.post(WEBHOOK_PATH, json=fixture_body(), headers=AUTH)
    assert (response.status_code, response.json()) == (
        500, {"detail": "the notification could not be handled; retry"}
    )


def test_the_app_refuses_to_run_without_a_token() -> None:
    with pytest.raises(ValueError, match="token must be set"):
        create_alert_receiver_app(Handled(), token="")
