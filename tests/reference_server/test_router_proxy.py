"""The router relays /v1/* to stand-in node processes: choice, streaming, retries, metrics.

Every test talks HTTP to a real router (uvicorn, in a thread) in front of real stand-in
node processes on 127.0.0.1 (tests/reference_server/_standin_node.py: the node contract
without a model).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _router_support import (
    AUTH,
    CLIENT,
    RouterServer,
    StandinNode,
    completion,
    router_for,
    standin_nodes,
    wait_until,
)

from reference_server import OutlierPolicy


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RouterServer, list[StandinNode]]]:
    no_ejection = OutlierPolicy(consecutive_failures=0)  # these tests count every retry
    with standin_nodes(2) as nodes, RouterServer(router_for(nodes, outlier=no_ejection)) as server:
        wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10, "2 healthy")
        yield server, nodes


@pytest.fixture
def fleet(pair: tuple[RouterServer, list[StandinNode]]) -> Iterator[
        tuple[RouterServer, list[StandinNode]]]:
    server, nodes = pair
    yield server, nodes
    for node in nodes:
        CLIENT.delete(f"{server.url}/admin/nodes/{node.spec.name}/faults", headers=AUTH)
        CLIENT.post(f"{server.url}/admin/nodes/{node.spec.name}/undrain", headers=AUTH)
    wait_until(lambda: all(n["in_flight"] == 0 for n in server.nodes().values()), 10, "idle")


def metric(server: RouterServer, name: str, **labels: str) -> float:
    """The value of one series on the router's /metrics (0 when absent)."""
    text = httpx.get(f"{server.url}/metrics").text
    for line in text.splitlines():
        match = re.fullmatch(r"([^{\s]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def served_by(answer: httpx.Response) -> str:
    return answer.headers["x-inferops-node"]


async def read_stream(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> list[str]:
    async with client.stream("POST", url, json=body) as answer:
        assert answer.status_code == 200
        return [line async for line in answer.aiter_lines() if line]


def test_sequential_requests_alternate_between_idle_nodes(fleet: Any) -> None:
    server, _ = fleet
    names = [served_by(httpx.post(f"{server.url}/v1/completions", json=completion()))
             for _ in range(6)]
    assert sorted(names) == ["node-0"] * 3 + ["node-1"] * 3
    assert all(a != b for a, b in itertools.pairwise(names))


async def test_concurrent_streams_spread_by_least_outstanding(fleet: Any) -> None:
    server, nodes = fleet
    before = [node.stats()["requests"] for node in nodes]
    async with httpx.AsyncClient(timeout=20) as client:
        results = await asyncio.gather(*(
            read_stream(client, f"{server.url}/v1/completions",
                        completion(stream=True, max_tokens=4, test_token_delay_s=0.1))
            for _ in range(8)
        ))
    assert all(lines[-1] == "data: [DONE]" and len(lines) == 5 for lines in results)
    assert [node.stats()["requests"] - b for node, b in zip(nodes, before, strict=True)] == [4, 4]


async def test_a_busy_node_is_avoided_while_another_is_idle(fleet: Any) -> None:
    server, _ = fleet
    async with httpx.AsyncClient(timeout=20) as client, client.stream(
        "POST", f"{server.url}/v1/completions",
        json=completion(stream=True, max_tokens=10, test_token_delay_s=0.2),
    ) as slow:
        busy = slow.headers["x-inferops-node"]
        quick = [served_by(await client.post(f"{server.url}/v1/completions", json=completion()))
                 for _ in range(4)]
        await slow.aread()
    assert busy not in quick


async def test_streamed_chunks_are_relayed_as_they_arrive(fleet: Any) -> None:
    server, _ = fleet
    arrivals: list[float] = []
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=20) as client, client.stream(
        "POST", f"{server.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True,
              "test_token_delay_s": 0.4},
    ) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5  # 4 tokens and [DONE]
    assert arrivals[0] < 0.35, arrivals  # the first token did not wait for the others
    assert arrivals[-1] > 1.1, arrivals


def test_error_burst_is_hidden_by_one_retry_and_counted(fleet: Any) -> None:
    server, nodes = fleet
    injected = httpx.post(f"{server.url}/admin/nodes/node-0/faults", headers=AUTH,
                          json={"kind": "error-burst", "ratio": 1.0})
    assert injected.status_code == 200, injected.text
    failed_before = nodes[0].stats()["answered_500"]
    retries_before = metric(server, "inferops_router_retries_total", node="node-0", reason="5xx")
    answers = []
    for i in range(6):
        if i % 2:
            with httpx.stream("POST", f"{server.url}/v1/completions",
                              json=completion(stream=True)) as answer:
                lines = [line for line in answer.iter_lines() if line]
                answers.append((answer.status_code, served_by(answer), lines[-1]))
        else:
            answer = httpx.post(f"{server.url}/v1/completions", json=completion())
            answers.append((answer.status_code, served_by(answer), "json"))
    assert all(status == 200 and node == "node-1" for status, node, _ in answers), answers
    assert [last for _, _, last in answers][1::2] == ["data: [DONE]"] * 3
    failed = nodes[0].stats()["answered_500"] - failed_before
    assert failed >= 3  # the node saw and failed its share of first attempts
    retries = metric(server, "inferops_router_retries_total", node="node-0", reason="5xx")
    assert retries - retries_before == failed


def test_when_every_node_fails_the_last_5xx_is_relayed_after_one_retry(fleet: Any) -> None:
    server, nodes = fleet
    for node in nodes:
        httpx.post(f"{server.url}/admin/nodes/{node.spec.name}/faults", headers=AUTH,
                   json={"kind": "error-burst", "ratio": 1.0})
    before = sum(node.stats()["answered_500"] for node in nodes)
    answer = httpx.post(f"{server.url}/v1/completions", json=completion())
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "server_error"
    assert sum(node.stats()["answered_500"] for node in nodes) - before == 2


def test_no_node_available_answers_503_naming_the_model(fleet: Any) -> None:
    server, _ = fleet
    for name in ("node-0", "node-1"):
        httpx.post(f"{server.url}/admin/nodes/{name}/drain", headers=AUTH)
    answer = httpx.post(f"{server.url}/v1/completions", json=completion())
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["message"] == "no healthy node is serving model 'inferops-tiny'"
    assert error["type"] == "server_error"
    assert httpx.get(f"{server.url}/health").status_code == 200  # healthy, only drained
    before = metric(server, "http_requests_total", handler="/v1/completions", method="POST",
                    status="5xx")
    httpx.post(f"{server.url}/v1/completions", json=completion())
    assert metric(server, "http_requests_total", handler="/v1/completions", method="POST",
                  status="5xx") == before + 1


async def test_a_client_that_goes_away_cancels_the_stream_on_the_node(fleet: Any) -> None:
    server, nodes = fleet
    cancelled_before = sum(node.stats()["cancelled"] for node in nodes)
    async with httpx.AsyncClient(timeout=20) as client, client.stream(
        "POST", f"{server.url}/v1/completions",
        json=completion(stream=True, max_tokens=50, test_token_delay_s=0.2),
    ) as answer:
        async for _ in answer.aiter_lines():
            break  # one chunk, then hang up
    await asyncio.to_thread(
        wait_until, lambda: sum(n.stats()["cancelled"] for n in nodes) == cancelled_before + 1,
        5.0, "the node to see its stream cancelled")
    assert all(node["in_flight"] == 0 for node in server.nodes().values())


async def test_a_client_that_goes_away_releases_a_buffered_request(fleet: Any) -> None:
    server, _ = fleet
    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{server.url}/v1/completions",
                              json=completion(max_tokens=20, test_token_delay_s=0.5))  # 10 s
    started = time.monotonic()
    await asyncio.to_thread(
        wait_until, lambda: all(n["in_flight"] == 0 for n in server.nodes().values()),
        3.0, "the router to drop the abandoned request")
    assert time.monotonic() - started < 3.0


def test_models_and_metrics(fleet: Any) -> None:
    server, _ = fleet
    models = httpx.get(f"{server.url}/v1/models")
    assert models.status_code == 200
    assert models.json()["data"][0]["id"] == "inferops-tiny"
    labels = {"handler": "/v1/completions", "method": "POST", "status": "2xx"}
    before = metric(server, "http_requests_total", **labels)
    ttft_before = metric(server, "vllm:time_to_first_token_seconds_count")
    e2e_before = metric(server, "vllm:e2e_request_latency_seconds_count")
    httpx.post(f"{server.url}/v1/completions", json=completion())
    with httpx.stream("POST", f"{server.url}/v1/completions", json=completion(stream=True)) as s:
        s.read()
    assert metric(server, "http_requests_total", **labels) == before + 2
    assert metric(server, "vllm:time_to_first_token_seconds_count") == ttft_before + 1
    assert metric(server, "vllm:e2e_request_latency_seconds_count") == e2e_before + 2
    assert metric(server, "http_requests_total", handler="/v1/models", method="GET",
                  status="2xx") >= 1
    assert metric(server, "inferops_router_node_healthy", node="node-1") == 1.0
    assert metric(server, "inferops_router_in_flight", node="node-0") == 0.0
    httpx.post(f"{server.url}/admin/nodes/node-1/drain", headers=AUTH)
    assert metric(server, "inferops_router_node_draining", node="node-1") == 1.0


def test_a_stream_broken_after_bytes_is_not_retried() -> None:
    with standin_nodes(2) as nodes, RouterServer(router_for(nodes)) as server:
        wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10, "2 healthy")
        with httpx.stream("POST", f"{server.url}/v1/completions",
                          json=completion(stream=True, max_tokens=5, test_exit_after_tokens=2),
                          timeout=10) as answer:
            assert answer.status_code == 200
            victim = answer.headers["x-inferops-node"]
            lines = [line for line in answer.iter_lines() if line]
        assert len(lines) == 2 and "data: [DONE]" not in lines  # ended early, no [DONE]
        other = next(node for node in nodes if node.spec.name != victim)
        assert other.stats()["requests"] == 0  # no retry once bytes went out
        assert metric(server, "http_requests_total", handler="/v1/completions", method="POST",
                      status="5xx") == 1
        assert metric(server, "inferops_router_retries_total", node=victim, reason="read") == 0


def test_a_refused_connection_is_retried_and_marks_the_node_down() -> None:
    with standin_nodes(2) as nodes, RouterServer(
        router_for(nodes, health_interval_s=60.0)  # only the proxied failure can tell
    ) as server:
        wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10, "2 healthy")
        nodes[0].kill()
        answers = [httpx.post(f"{server.url}/v1/completions", json=completion())
                   for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        assert {served_by(a) for a in answers} == {"node-1"}
        assert server.nodes()["node-0"]["status"] == "down"
        assert metric(server, "inferops_router_retries_total", node="node-0",
                      reason="connect") == 1
