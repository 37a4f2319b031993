"""The gateway over HTTP: a router with client API keys in front of stand-in node processes.
401 without a valid key, 429 with Retry-After over a limit, and per-key token metering on
the router's /metrics (never the key itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _router_support import (
    AUTH,
    RouterServer,
    StandinNode,
    completion,
    count,
    router_for,
    standin_nodes,
    wait_until,
)

from reference_server import ApiKey

OPEN_KEY = ApiKey("team-a", "sk-team-a-open-0001")
RPM_KEY = ApiKey("slow-team", "sk-slow-team-0002", requests_per_minute=2)
TPM_KEY = ApiKey("small-team", "sk-small-team-0003", tokens_per_minute=10)
KEYS = (OPEN_KEY, RPM_KEY, TPM_KEY)


def bearer(key: ApiKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.key}"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[RouterServer, list[StandinNode]]]:
    with standin_nodes(2) as nodes, RouterServer(router_for(nodes, api_keys=KEYS)) as server:
        wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10, "2 healthy")
        yield server, nodes


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer sk-not-a-key-000"}, {"Authorization": OPEN_KEY.key},
    {"Authorization": f"Basic {OPEN_KEY.key}"}, AUTH,
], ids=["no header", "unknown key", "no scheme", "basic", "the admin token"])
@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions", "/v1/models"])
def test_v1_without_a_valid_key_is_401_in_openai_shape_and_reaches_no_node(
    gateway: Any, headers: dict[str, str], path: str
) -> None:
    server, nodes = gateway
    before = [node.stats()["requests"] for node in nodes]
    refused = count(server, "inferops_gateway_requests_total",
                    api_key_name="(unauthenticated)", status="401")
    answer = httpx.request("GET" if path == "/v1/models" else "POST", server.url + path,
                           headers=headers, json=completion())
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == {"error": {
        "message": "Incorrect or missing API key: send Authorization: Bearer <key> (keys come "
                   "from INFEROPS_API_KEYS or the fleet's keys file).",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    assert [node.stats()["requests"] for node in nodes] == before
    assert count(server, "inferops_gateway_requests_total",
                 api_key_name="(unauthenticated)", status="401") == refused + 1


def test_a_valid_key_is_served_metered_and_never_forwarded_to_the_node(gateway: Any) -> None:
    server, nodes = gateway
    prompt = count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                   kind="prompt")
    generated = count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                      kind="generation")
    ok = count(server, "inferops_gateway_requests_total", api_key_name="team-a", status="200")
    answer = httpx.post(f"{server.url}/v1/completions", headers=bearer(OPEN_KEY),
                        json=completion(max_tokens=5))
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 5,
                                      "total_tokens": 8}
    node = next(n for n in nodes if n.spec.name == answer.headers["x-inferops-node"])
    assert "authorization" not in node.stats()["last_headers"]
    assert count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                 kind="prompt") == prompt + 3
    assert count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                 kind="generation") == generated + 5
    assert count(server, "inferops_gateway_requests_total", api_key_name="team-a",
                 status="200") == ok + 1


def stream_events(server: RouterServer, key: ApiKey, **extra: Any) -> list[str]:
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", headers=bearer(key),
                      json={"model": "inferops-tiny", "stream": True, "max_tokens": 4,
                            "messages": [{"role": "user", "content": "hi"}], **extra}) as answer:
        assert answer.status_code == 200
        return [line for line in answer.iter_lines() if line]


def test_a_stream_is_metered_from_a_usage_chunk_the_client_does_not_see(gateway: Any) -> None:
    server, _ = gateway
    generated = count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                      kind="generation")
    events = stream_events(server, OPEN_KEY)
    assert events[-1] == "data: [DONE]"
    assert len(events) == 5 and not any("usage" in event for event in events)
    assert count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                 kind="generation") == generated + 4


def test_a_stream_that_asks_for_usage_gets_it_and_is_metered_once(gateway: Any) -> None:
    server, _ = gateway
    prompt = count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                   kind="prompt")
    events = stream_events(server, OPEN_KEY, stream_options={"include_usage": True})
    assert len(events) == 6 and events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["usage"] == {
        "prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert count(server, "inferops_gateway_tokens_total", api_key_name="team-a",
                 kind="prompt") == prompt + 3


def test_over_the_request_limit_is_429_with_retry_after_and_counted(gateway: Any) -> None:
    server, _ = gateway
    answers = [httpx.post(f"{server.url}/v1/completions", headers=bearer(RPM_KEY),
                          json=completion()) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.headers["retry-after"] == "30"
    assert refused.json() == {"error": {
        "message": "Rate limit reached for API key 'slow-team': limit 2 requests per minute. "
                   "Please try again in 30s.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    assert count(server, "inferops_gateway_rate_limited_total", api_key_name="slow-team",
                 limit="requests") == 1
    assert count(server, "inferops_gateway_requests_total", api_key_name="slow-team",
                 status="429") == 1
    other = httpx.post(f"{server.url}/v1/completions", headers=bearer(OPEN_KEY),
                       json=completion())
    assert other.status_code == 200  # one key's limit is not another's


def test_over_the_token_limit_the_next_request_is_429_until_the_bucket_refills(
    gateway: Any,
) -> None:
    server, _ = gateway
    first = httpx.post(f"{server.url}/v1/completions", headers=bearer(TPM_KEY),
                       json=completion(max_tokens=12))  # 15 tokens of a 10-per-minute budget
    assert first.status_code == 200
    second = httpx.post(f"{server.url}/v1/completions", headers=bearer(TPM_KEY),
                        json=completion())
    assert second.status_code == 429
    error = second.json()["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert error["message"].startswith("Rate limit reached for API key 'small-team': limit 10 "
                                       "tokens per minute. Please try again in ")
    assert 30 <= int(second.headers["retry-after"]) <= 36  # 5-6 tokens short at 1 per 6 s


def test_no_metric_label_carries_a_key_and_admin_routes_still_want_the_admin_token(
    gateway: Any,
) -> None:
    server, _ = gateway
    text = httpx.get(f"{server.url}/metrics").text
    assert "inferops_gateway_tokens_total" in text
    for key in KEYS:
        assert key.key not in text
    answer = httpx.get(f"{server.url}/admin/nodes", headers=bearer(OPEN_KEY))
    assert answer.status_code == 401
    assert httpx.get(f"{server.url}/health").status_code == 200  # no key for health checks
