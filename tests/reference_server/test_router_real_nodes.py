"""The router in front of three real (tiny, CPU) nodes: a hung node is ejected by passive
outlier detection before its own health check gives up, clients see no error, and it comes
back when healthy; session affinity lands two chats sharing a long system prompt on one
node, whose prefix cache serves the second. Requests are counted from the nodes' own
/metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from _node_support import ADMIN_TOKEN, ServedNode, metric_values, serve_node, wait_until
from _router_support import TOKEN, RouterServer

from exporters import SimulatedGpuBackend
from reference_server import NodeSpec, OutlierPolicy, Router
from reference_server._engine import EngineConfig
from reference_server._model import ModelConfig
from reference_server._node_runtime import Node, NodeConfig

pytestmark = pytest.mark.integration

MODEL = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=1024)
COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def nodes() -> Iterator[list[ServedNode]]:
    with ExitStack() as stack:
        served = []
        for i in range(3):
            config = NodeConfig(
                name=f"node-{i}", model=MODEL, device="cpu", gpu_backend="sim",
                # a stuck step turns /health 503 only after a minute: here the router's
                # passive detection must act on its own
                engine=EngineConfig(kv_cache_tokens=4096, stall_timeout_s=60.0),
            )
            node = Node(config, admin_token=ADMIN_TOKEN,
                        gpu_backend=SimulatedGpuBackend(hostname=f"node-{i}"))
            served.append(stack.enter_context(serve_node(node)))
        yield served


def spec(node: ServedNode) -> NodeSpec:
    return NodeSpec(node.node.config.name, "127.0.0.1", int(node.url.rsplit(":", 1)[1]))


def received(node: ServedNode, handler: str, status: str | None = None) -> float:
    """Requests the node itself counted for `handler` (any status, or one status class)."""
    labels = {"handler": handler} | ({"status": status} if status else {})
    return metric_values(node.scrape(), "http_requests_total", **labels)


def stream_completion(client: httpx.Client, url: str) -> tuple[int, str, str]:
    with client.stream("POST", f"{url}{COMPLETIONS}", json={
            "model": "inferops-tiny", "prompt": "status of the fleet:", "max_tokens": 3,
            "temperature": 0, "stream": True}) as answer:
        lines = [line for line in answer.iter_lines() if line]
        return answer.status_code, answer.headers.get("x-inferops-node", ""), lines[-1]


def router_nodes(server: RouterServer) -> dict[str, dict[str, Any]]:
    return server.nodes()


def test_a_hung_node_is_ejected_after_three_first_byte_timeouts_and_returns_when_healthy(
        nodes: list[ServedNode]) -> None:
    outlier = OutlierPolicy(consecutive_failures=3, base_ejection_s=3.0,
                            first_byte_timeout_s=1.5)
    router = Router([spec(n) for n in nodes], admin_token=TOKEN, outlier=outlier,
                    health_interval_s=0.25, health_timeout_s=2.0)
    hung = nodes[1]
    with RouterServer(router) as server, httpx.Client(timeout=30) as client:
        wait_until(lambda: all(n["healthy"] for n in router_nodes(server).values()),
                   what="three healthy nodes")
        before = {n.node.config.name: received(n, COMPLETIONS) for n in nodes}
        assert hung.admin.post("/admin/faults", json={"kind": "hang"}).status_code == 200
        try:
            answers = []
            while router_nodes(server)["node-1"]["ejected_until_s"] is None:
                assert len(answers) < 12, "node-1 was not ejected"
                answers.append(stream_completion(client, server.url))
            ejected_after = len(answers)
            # with the node out, the next twelve requests go to the other two
            answers += [stream_completion(client, server.url) for _ in range(12)]
            assert [(code, last) for code, _, last in answers] == [
                (200, "data: [DONE]")] * len(answers)  # retried before the first byte
            assert {who for _, who, _ in answers} == {"node-0", "node-2"}
            wait_until(lambda: received(hung, COMPLETIONS) - before["node-1"] == 3,
                       what="node-1 counted the three attempts the router gave up on")
            assert received(hung, COMPLETIONS, "4xx") - before["node-1"] == 3  # 499s
            served_elsewhere = sum(received(n, COMPLETIONS, "2xx") - before[n.node.config.name]
                                   for n in (nodes[0], nodes[2]))
            assert served_elsewhere == len(answers)
            assert ejected_after <= 9  # node-1 is picked at least every third request
            assert router_nodes(server)["node-1"]["healthy"]  # its health check never failed
            metrics = httpx.get(f"{server.url}/metrics").text
            assert ('inferops_router_ejections_total{node="node-1",reason="first_byte_timeout"}'
                    ' 1.0') in metrics
            assert 'inferops_router_node_ejected{node="node-1"} 1.0' in metrics
            assert 'inferops_router_node_ejected{node="node-0"} 0.0' in metrics
        finally:
            hung.admin.delete("/admin/faults")
        wait_until(lambda: router_nodes(server)["node-1"]["ejected_until_s"] is None,
                   what="the ejection of node-1 to end", timeout_s=10)
        back_before = received(hung, COMPLETIONS, "2xx")
        later = [stream_completion(client, server.url) for _ in range(6)]
        assert sorted(who for _, who, _ in later) == ["node-0", "node-0", "node-1", "node-1",
                                                      "node-2", "node-2"]
        assert received(hung, COMPLETIONS, "2xx") - back_before == 2
        assert 'inferops_router_node_ejected{node="node-1"} 0.0' in httpx.get(
            f"{server.url}/metrics").text


SYSTEM_PROMPT = ("You are the on-call assistant of an inference fleet. Answer in one short "
                 "line, name the node, the alert and the next remediation step, and never "
                 "guess a metric you were not shown. ") * 3
"""Long enough to fill many KV blocks: 540 bytes (tokens of the byte-level tokenizer)."""


def test_two_chats_sharing_a_system_prompt_hit_the_prefix_cache_of_the_node_serving_both(
        nodes: list[ServedNode]) -> None:
    assert len(SYSTEM_PROMPT.encode()) == 540
    router = Router([spec(n) for n in nodes], admin_token=TOKEN,
                    routing_policy="session-affinity", health_interval_s=0.25)
    hits = "vllm:prefix_cache_hits_total"
    with RouterServer(router) as server, httpx.Client(timeout=60) as client:
        wait_until(lambda: all(n["healthy"] for n in router_nodes(server).values()),
                   what="three healthy nodes")
        before = {n.node.config.name: metric_values(n.scrape(), hits) for n in nodes}
        served_by, gained = [], []
        for question in ("Which node fails?", "Why is the p99 up?"):
            answer = client.post(f"{server.url}{CHAT}", headers={"x-session-id": "sess-42"},
                                 json={"model": "inferops-tiny", "max_tokens": 2,
                                       "temperature": 0, "messages": [
                                           {"role": "system", "content": SYSTEM_PROMPT},
                                           {"role": "user", "content": question}]})
            assert answer.status_code == 200, answer.text
            served_by.append(answer.headers["x-inferops-node"])
            gained.append({n.node.config.name: metric_values(n.scrape(), hits)
                           - before[n.node.config.name] for n in nodes})
        assert served_by[0] == served_by[1]
        # the shared prefix: BOS + "<|system|>\n" (11) + 540 + "\n<|user|>\n" (10) = 562
        # tokens, of which the 35 full 16-token blocks (560 tokens) are reused
        others = dict.fromkeys(sorted({"node-0", "node-1", "node-2"} - {served_by[0]}), 0.0)
        assert gained[0] == {served_by[0]: 0.0} | others
        assert gained[1] == {served_by[0]: 560.0} | others
