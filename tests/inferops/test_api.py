"""The control-plane HTTP API: one bearer token guards every route, /health stays open,
errors say what was wrong, and a real server starts and stops inside an event loop."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from alerting import AlertEngine, AlertStore, SilenceStore, create_alerting_router, watchdog_rule
from collectors import SampleStore, StoreSource
from inferops._api import (
    actor,
    api_url,
    client_token,
    create_control_plane_api,
    serve_api,
    server_token,
)
from inferops._settings import parse_settings

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AT_S = 1_790_000_000.0
WEBHOOK = json.loads(
    (Path(__file__).parents[1] / "alerting" / "fixtures" / "alertmanager-0.25-webhook.json")
    .read_text(encoding="utf-8")
)


class Pipeline:
    """A real silence store and alert engine (the watchdog rule, evaluated once) on SQLite,
    plus the webhook bodies the router handed on."""

    def __init__(self, database: sa.Engine) -> None:
        self.silences = SilenceStore(database)
        self.engine = AlertEngine(
            StoreSource(SampleStore(database)), AlertStore(database), [watchdog_rule()],
            silences=self.silences,
        )
        self.engine.evaluate(AT_S)
        self.webhooks: list[dict[str, Any]] = []
        self.router = create_alerting_router(
            silences=self.silences, active_alerts=self.engine.active,
            on_webhook=self.webhooks.append, clock=lambda: AT_S + 10,
        )


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    database = sa.create_engine(f"sqlite:///{tmp_path / 'api.db'}")
    yield Pipeline(database)
    database.dispose()


@pytest.fixture
def client(pipeline: Pipeline) -> TestClient:
    return TestClient(create_control_plane_api(token=TOKEN, routers=[pipeline.router]))


def _routes(pipeline: Pipeline) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path.replace("{silence_id}", "some-id"))
        for route in pipeline.router.routes if isinstance(route, APIRoute)
        for method in route.methods
    )


def test_the_alerting_router_serves_exactly_the_contracts_alerting_routes(
    pipeline: Pipeline,
) -> None:
    assert _routes(pipeline) == [
        ("DELETE", "/api/v2/silence/some-id"),
        ("GET", "/api/v2/alerts"),
        ("GET", "/api/v2/silence/some-id"),
        ("GET", "/api/v2/silences"),
        ("POST", "/api/v1/alerts/webhook"),
        ("POST", "/api/v2/silences"),
    ]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
], ids=["none", "wrong-token", "no-scheme", "basic", "token-plus-a-char"])
def test_every_route_answers_401_without_the_right_bearer_token_and_changes_nothing(
    pipeline: Pipeline, client: TestClient, headers: dict[str, str]
) -> None:
    silence = pipeline.silences.create(
        ['node="node-1"'], ends_at_s=AT_S + 3600, created_by="alice", comment="maintenance",
        now_s=AT_S,
    )
    for method, path in _routes(pipeline):
        response = client.request(method, path.replace("some-id", silence.id), headers=headers,
                                  json=WEBHOOK if path.endswith("webhook") else None)
        assert (response.status_code, response.json()) == (
            401, {"error": "missing or invalid bearer token"}
        ), (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert pipeline.webhooks == []
    assert pipeline.silences.get(silence.id) == silence


def test_health_answers_without_a_token(client: TestClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_router_of_another_component_is_guarded_too_and_sees_the_actor() -> None:
    router = APIRouter()


    @router.get("/api/v1/whoami")
    def whoami(name: str = Depends(actor)) -> dict[str, str]:
        return {"actor": name}

    client = TestClient(create_control_plane_api(token=TOKEN, routers=[router]))
    assert client.get("/api/v1/whoami").status_code == 401
    assert client.get("/api/v1/whoami", headers=AUTH).json() == {"actor": "api"}
    assert client.get(
        "/api/v1/whoami", headers={**AUTH, "X-InferOps-Actor": "cli:alice"}
    ).json() == {"actor": "cli:alice"}


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token must be set"):
        create_control_plane_api(token="", routers=[])


def test_the_server_token_comes_from_the_environment_or_is_generated_and_saved_0600(
    tmp_path: Path,
) -> None:
    settings = parse_settings("api: {token_env: MY_TOKEN}", base_dir=tmp_path)
    assert server_token(settings, {"MY_TOKEN": "from-env"}) == ("from-env", False)
    assert not (tmp_path / ".inferops" / "api-token").exists()
    token, generated = server_token(settings, {})
    saved = tmp_path / ".inferops" / "api-token"
    assert generated and len(token) >= 40
    assert saved.read_text(encoding="utf-8") == token + "\n"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_clients_take_the_token_from_the_flag_then_the_environment_then_the_file(
    tmp_path: Path,
) -> None:
    settings = parse_settings("", base_dir=tmp_path)
    assert client_token(settings, None, {}) is None
    (tmp_path / ".inferops").mkdir()
    (tmp_path / ".inferops" / "api-token").write_text("from-file\n", encoding="utf-8")
    assert client_token(settings, None, {}) == "from-file"
    assert client_token(settings, None, {"INFEROPS_API_TOKEN": "from-env"}) == "from-env"
    assert client_token(settings, "from-flag", {"INFEROPS_API_TOKEN": "from-env"}) == "from-flag"


def test_clients_take_the_url_from_the_flag_then_the_environment_then_the_settings() -> None:
    settings = parse_settings("api: {host: 10.0.0.5, port: 9200}")
    assert api_url(settings, None, {}) == "http://10.0.0.5:9200"
    assert api_url(settings, None, {"INFEROPS_API_URL": "http://cp:1/"}) == "http://cp:1"
    assert api_url(settings, "http://flag:2", {"INFEROPS_API_URL": "http://cp:1"}) == (
        "http://flag:2"
    )


def test_api_settings_default_to_the_contract_and_reject_a_bad_port() -> None:
    settings = parse_settings("")
    assert settings.api.model_dump() == {
        "enabled": True, "host": "127.0.0.1", "port": 9095, "token_env": "INFEROPS_API_TOKEN",
    }
    with pytest.raises(Exception, match=r"<string>:1: api.port: Input should be less than"):
        parse_settings("api: {port: 70000}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.integration
def test_a_real_server_serves_in_the_event_loop_and_stops_cleanly(pipeline: Pipeline) -> None:
    port = _free_port()
    app = create_control_plane_api(token=TOKEN, routers=[pipeline.router])

    async def scenario() -> tuple[list[tuple[int, Any]], bool]:
        answers = []
        async with (
            serve_api(app, host="127.0.0.1", port=port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http,
        ):
            for headers in ({}, AUTH):
                response = await http.get("/api/v2/silences", headers=headers)
                answers.append((response.status_code, response.json()))
            health = await http.get("/health")
            answers.append((health.status_code, health.json()))
        with socket.socket() as probe:
            refused = probe.connect_ex(("127.0.0.1", port)) != 0
        return answers, refused

    answers, refused = asyncio.run(scenario())
    assert answers == [
        (401, {"error": "missing or invalid bearer token"}),
        (200, []),
        (200, {"status": "ok"}),
    ]
    assert refused


@pytest.mark.integration
def test_a_taken_port_is_a_clear_error_naming_it(pipeline: Pipeline) -> None:
    app = create_control_plane_api(token=TOKEN, routers=[])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def scenario() -> None:
            async with serve_api(app, host="127.0.0.1", port=port):
                pass

        with pytest.raises(OSError, match=rf"api: cannot listen on 127.0.0.1:{port}"):
            asyncio.run(scenario())


class Action(BaseModel):
    action: str
    node: str


def test_other_routers_errors_answer_in_the_contracts_error_shape() -> None:
    router = APIRouter()

    @router.post("/api/v1/things")
    def things(body: Action) -> dict[str, str]:
        raise HTTPException(404, f"node: no node {body.node!r}")

    client = TestClient(create_control_plane_api(token=TOKEN, routers=[router]))
    missing = client.post("/api/v1/things", json={"action": "drain"}, headers=AUTH)
    assert (missing.status_code, missing.json()) == (400, {"error": "body.node: Field required"})
    unknown = client.post("/api/v1/things", json={"action": "drain", "node": "n9"}, headers=AUTH)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "node: no node 'n9'"})
