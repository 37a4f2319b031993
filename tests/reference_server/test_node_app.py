"""The node's HTTP API over real HTTP: a tiny node (CPU, simulated GPU) served by uvicorn on a
free port in a background thread, for the whole module."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from _node_support import ADMIN_TOKEN, ServedNode, serve_node
from prometheus_client.parser import text_string_to_metric_families

from exporters import SimulatedGpuBackend
from reference_server._engine import EngineConfig
from reference_server._model import ModelConfig
from reference_server._node_app import create_node_app
from reference_server._node_runtime import Node, NodeConfig

TINY_MODEL = ModelConfig(n_layers=2, d_model=64, n_heads=4, context_len=256)


RunningNode = ServedNode


@pytest.fixture(scope="module")
def running_node() -> Iterator[RunningNode]:
    """One tiny node (CPU, simulated GPU) for a test module; faults are cleared between tests
    by `node_http`."""
    config = NodeConfig(
        name="node-t", model=TINY_MODEL, engine=EngineConfig(kv_cache_tokens=2048), device="cpu",
        gpu_backend="sim",
    )
    node = Node(config, admin_token=ADMIN_TOKEN,
                gpu_backend=SimulatedGpuBackend(hostname="node-t"))
    with serve_node(node) as served:
        yield served


@pytest.fixture
def node_http(running_node: RunningNode) -> Iterator[RunningNode]:
    running_node.admin.delete("/admin/faults").raise_for_status()
    running_node.admin.post("/admin/undrain").raise_for_status()
    yield running_node
    running_node.admin.delete("/admin/faults")
    running_node.admin.post("/admin/undrain")


def metric_values(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def scrape(node: RunningNode) -> str:
    response = node.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sse_events(response: httpx.Response) -> list[str]:
    """The `data:` payloads of an SSE answer, in order."""
    return [line[len("data: "):] for line in response.text.split("\n\n") if line]


def complete(node: RunningNode, **body: object) -> httpx.Response:
    return node.client.post("/v1/completions", json={"model": "inferops-tiny", **body})


def chat(node: RunningNode, **body: object) -> httpx.Response:
    return node.client.post("/v1/chat/completions", json={"model": "inferops-tiny", **body})


MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi GPU"}]


# ---- OpenAI-compatible API --------------------------------------------------------------


def test_completion(node_http: RunningNode) -> None:
    response = complete(node_http, prompt="GPU node health", max_tokens=8, temperature=0)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "text_completion"
    assert body["model"] == "inferops-tiny"
    assert body["id"].startswith("cmpl-")
    (choice,) = body["choices"]
    assert choice["finish_reason"] in ("length", "stop")
    assert isinstance(choice["text"], str)
    usage = body["usage"]
    assert usage["prompt_tokens"] == len("GPU node health") + 1  # bytes + BOS
    assert 1 <= usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_completion_prompt_as_a_list_of_one(node_http: RunningNode) -> None:
    as_list = complete(node_http, prompt=["same prompt"], max_tokens=6, temperature=0)
    as_str = complete(node_http, prompt="same prompt", max_tokens=6, temperature=0)
    assert as_list.status_code == 200
    assert as_list.json()["choices"][0]["text"] == as_str.json()["choices"][0]["text"]


def test_chat_completion(node_http: RunningNode) -> None:
    response = chat(node_http, messages=MESSAGES, max_tokens=6, temperature=0)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert body["usage"]["completion_tokens"] <= 6


def test_models(node_http: RunningNode) -> None:
    response = node_http.client.get("/v1/models")
    assert response.status_code == 200
    (model,) = response.json()["data"]
    assert (model["id"], model["object"], model["max_model_len"]) == ("inferops-tiny", "model", 256)


def test_streamed_completion_concatenates_to_the_greedy_answer(node_http: RunningNode) -> None:
    body = {"prompt": "Explain continuous batching", "max_tokens": 24, "temperature": 0}
    whole = complete(node_http, **body).json()["choices"][0]
    response = complete(node_http, **body, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["finish_reason"]
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["text"]


def test_streamed_chat(node_http: RunningNode) -> None:
    body = {"messages": MESSAGES, "max_tokens": 20, "temperature": 0}
    whole = chat(node_http, **body).json()
    response = chat(node_http, **body, stream=True, stream_options={"include_usage": True})
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == whole["usage"]
    last = chunks[-2]["choices"][0]
    assert last["finish_reason"] == whole["choices"][0]["finish_reason"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == whole["choices"][0]["message"]["content"]


def test_concurrent_http_requests_are_batched(node_http: RunningNode) -> None:
    before = node_http.node.engine.stats().decode_batch_sizes

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=node_http.url, timeout=30) as client:
            responses = await asyncio.gather(*(
                client.post("/v1/completions",
                            json={"prompt": f"p{i}", "max_tokens": 30, "temperature": 0})
                for i in range(4)
            ))
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 4
    after = node_http.node.engine.stats().decode_batch_sizes
    assert any(after.get(n, 0) > before.get(n, 0) for n in after if n > 1), after


@pytest.mark.parametrize(
    ("path", "body", "param", "fragment"),
    [
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens", "greater than"),
        ("/v1/completions", {"prompt": "x", "max_tokens": "8"}, "max_tokens", "integer"),
        ("/v1/completions", {"prompt": "x", "max_tokens": 300}, "max_tokens",
         "254 tokens left in the context (256 tokens, of which the prompt takes 2)"),
        ("/v1/completions", {"prompt": "x", "temperature": 2.5}, "temperature", "2"),
        ("/v1/completions", {"prompt": "x", "temperature": True}, "temperature", "number"),
        ("/v1/completions", {"prompt": "x", "top_p": 0}, "top_p", "greater than 0"),
        ("/v1/completions", {"prompt": "x", "top_p": 1.5}, "top_p", "1"),
        ("/v1/completions", {"prompt": "x", "n": 2}, "n", "1"),
        ("/v1/completions", {"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop", "4"),
        ("/v1/completions", {"prompt": "x", "stop": 3}, "stop", "string"),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo", "not supported"),
        ("/v1/completions", {"max_tokens": 3}, "prompt", "required"),
        ("/v1/completions", {"prompt": ["a", "b"]}, "prompt", "exactly one"),
        ("/v1/completions", {"prompt": "y" * 300}, "prompt", "the prompt is 301 tokens"),
        ("/v1/chat/completions", {"messages": []}, "messages", "at least 1"),
        ("/v1/chat/completions", {"messages": [{"role": "bot", "content": "x"}]},
         "messages[0].role", "'user'"),
        ("/v1/chat/completions", {"messages": MESSAGES, "max_completion_tokens": 0},
         "max_completion_tokens", "greater than"),
    ],
)
def test_invalid_requests_answer_400_naming_the_field(
    node_http: RunningNode, path: str, body: dict[str, object], param: str, fragment: str
) -> None:
    response = node_http.client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] is None
    assert param in error["message"] and fragment in error["message"]


def test_malformed_json_and_unknown_model(node_http: RunningNode) -> None:
    before = metric_values(scrape(node_http), "http_requests_total", status="4xx")
    response = node_http.client.post(
        "/v1/completions", content=b'{"prompt": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    response = node_http.client.post("/v1/completions", json=["not", "an", "object"])
    assert response.status_code == 400
    response = complete(node_http, prompt="x", model="gpt-4")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "The model `gpt-4` does not exist.", "type": "not_found_error",
        "param": "model", "code": None,
    }
    after = metric_values(scrape(node_http), "http_requests_total", status="4xx")
    assert after - before == 3


def test_request_metrics_are_recorded(node_http: RunningNode) -> None:
    before = scrape(node_http)
    response = complete(node_http, prompt="metrics", max_tokens=5, temperature=0)
    usage = response.json()["usage"]
    after = scrape(node_http)

    def delta(name: str, **labels: str) -> float:
        return metric_values(after, name, **labels) - metric_values(before, name, **labels)

    assert delta("http_requests_total", handler="/v1/completions", method="POST",
                 status="2xx") == 1
    assert delta("vllm:prompt_tokens_total") == usage["prompt_tokens"]
    assert delta("vllm:generation_tokens_total") == usage["completion_tokens"]
    reason = response.json()["choices"][0]["finish_reason"]
    assert delta("vllm:request_success_total", finished_reason=reason) == 1
    assert delta("vllm:e2e_request_latency_seconds_count") == 1
    assert delta("vllm:time_to_first_token_seconds_count") == 1
    assert delta("vllm:request_queue_time_seconds_count") == 1
    assert delta("vllm:inter_token_latency_seconds_count") == usage["completion_tokens"] - 1
    assert "vllm:num_requests_running" in after and "DCGM_FI_DEV_GPU_UTIL" in after


def test_client_disconnect_cancels_the_request(node_http: RunningNode) -> None:
    engine = node_http.node.engine
    cancelled = engine.stats().cancelled
    with node_http.client.stream(
        "POST", "/v1/completions",
        json={"prompt": "go on", "max_tokens": 250, "temperature": 0, "stream": True},
    ) as response:
        assert response.status_code == 200
        next(response.iter_lines())
    deadline = time.monotonic() + 15
    while engine.stats().cancelled == cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.stats().cancelled == cancelled + 1
    assert engine.num_running == 0


# ---- health, drain ----------------------------------------------------------------------


def test_health_and_drain(node_http: RunningNode) -> None:
    response = node_http.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "name": "node-t", "model": "inferops-tiny",
                               "draining": False, "running": 0, "waiting": 0}
    assert node_http.admin.post("/admin/drain").json() == {"draining": True}
    response = node_http.client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "draining" and response.json()["draining"] is True
    assert complete(node_http, prompt="still served", max_tokens=2).status_code == 200
    assert node_http.admin.post("/admin/undrain").json() == {"draining": False}
    assert node_http.client.get("/health").status_code == 200


# ---- admin and faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/admin/faults"), ("DELETE", "/admin/faults"), ("POST", "/admin/drain"),
     ("POST", "/admin/undrain")],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic dGVzdA==", ADMIN_TOKEN])
def test_admin_requires_the_bearer_token(
    node_http: RunningNode, method: str, path: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = node_http.client.request(method, path, json={"kind": "latency", "seconds": 1},
                                        headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["www-authenticate"] == "Bearer"
    assert node_http.node.faults.active() == [] and node_http.node.draining is False


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"kind": "meltdown"}, "kind"),
        ({}, "kind"),
        ({"kind": "latency"}, "seconds"),
        ({"kind": "latency", "seconds": "3"}, "seconds"),
        ({"kind": "latency", "seconds": -1}, "seconds"),
        ({"kind": "latency", "second": 3}, "second"),
        ({"kind": "error-burst", "ratio": 1.5}, "ratio"),
        ({"kind": "gpu-xid", "code": "79"}, "code"),
        ({"kind": "gpu-xid"}, "code"),
        ({"kind": "crash", "now": True}, "now"),
    ],
)
def test_bad_fault_bodies_answer_400_naming_the_field(
    node_http: RunningNode, body: dict[str, object], param: str
) -> None:
    response = node_http.admin.post("/admin/faults", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert node_http.node.faults.active() == []


def test_faults_are_listed_replaced_and_cleared(node_http: RunningNode) -> None:
    admin = node_http.admin
    assert admin.post("/admin/faults", json={"kind": "latency", "seconds": 0.01}).json() == {
        "faults": [{"kind": "latency", "seconds": 0.01}]}
    body = admin.post("/admin/faults", json={"kind": "error-burst", "ratio": 0.0}).json()
    assert body == {"faults": [{"kind": "latency", "seconds": 0.01},
                               {"kind": "error-burst", "ratio": 0.0}]}
    body = admin.post("/admin/faults", json={"kind": "latency", "seconds": 0.02}).json()
    assert {"kind": "latency", "seconds": 0.02} in body["faults"] and len(body["faults"]) == 2
    assert admin.delete("/admin/faults").json() == {"faults": []}


def test_latency_fault_delays_the_first_token(node_http: RunningNode) -> None:
    seconds = 0.6
    node_http.admin.post("/admin/faults", json={"kind": "latency", "seconds": seconds})
    before = scrape(node_http)
    assert complete(node_http, prompt="slow", max_tokens=3).status_code == 200
    streamed = complete(node_http, prompt="slow", max_tokens=3, stream=True)
    assert streamed.text.endswith("data: [DONE]\n\n")
    after = scrape(node_http)
    name = "vllm:time_to_first_token_seconds"
    assert metric_values(after, f"{name}_count") - metric_values(before, f"{name}_count") == 2
    ttft_sum = metric_values(after, f"{name}_sum") - metric_values(before, f"{name}_sum")
    assert ttft_sum >= 2 * seconds
    # neither landed in a bucket below the injected delay
    assert metric_values(after, f"{name}_bucket", le="0.5") == metric_values(
        before, f"{name}_bucket", le="0.5")
    node_http.admin.delete("/admin/faults")
    before = scrape(node_http)
    complete(node_http, prompt="fast again", max_tokens=3)
    after = scrape(node_http)
    assert metric_values(after, f"{name}_sum") - metric_values(before, f"{name}_sum") < seconds


def test_error_burst_fails_requests_as_5xx(node_http: RunningNode) -> None:
    before = scrape(node_http)
    node_http.admin.post("/admin/faults", json={"kind": "error-burst", "ratio": 1.0})
    for response in (
        complete(node_http, prompt="x", max_tokens=2),
        complete(node_http, prompt="x", max_tokens=2, stream=True),
        chat(node_http, messages=MESSAGES, max_tokens=2),
        node_http.client.get("/v1/models"),
    ):
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
    after = scrape(node_http)
    failed = metric_values(after, "http_requests_total", status="5xx") - metric_values(
        before, "http_requests_total", status="5xx")
    assert failed == 4
    assert metric_values(after, "http_requests_total", handler="/v1/completions",
                         status="5xx") >= 2
    node_http.admin.delete("/admin/faults")
    assert complete(node_http, prompt="x", max_tokens=2).status_code == 200


def test_gpu_xid_fault_shows_in_dcgm_metrics(node_http: RunningNode) -> None:
    assert metric_values(scrape(node_http), "DCGM_FI_DEV_XID_ERRORS") == 0
    response = node_http.admin.post("/admin/faults", json={"kind": "gpu-xid", "code": 79})
    assert response.json() == {"faults": [{"kind": "gpu-xid", "code": 79}]}
    assert metric_values(scrape(node_http), "DCGM_FI_DEV_XID_ERRORS", Hostname="node-t") == 79
    node_http.admin.delete("/admin/faults")
    assert metric_values(scrape(node_http), "DCGM_FI_DEV_XID_ERRORS") == 0


def test_crash_fault_is_acknowledged(node_http: RunningNode) -> None:
    """The exit itself is tested on a real process (test_node_process)."""
    response = node_http.admin.post("/admin/faults", json={"kind": "crash"})
    assert response.status_code == 200
    assert response.json() == {"faults": [{"kind": "crash"}]}


class _RealGpuStandIn:
    """A backend that is not simulated, as NVML on a real GPU."""

    name = "nvml"

    def sample(self) -> list[object]:
        return []

    def close(self) -> None:
        pass


async def test_gpu_xid_on_a_real_gpu_answers_409() -> None:
    node = Node(NodeConfig(name="node-r", model=TINY_MODEL, device="cpu"),
                admin_token=ADMIN_TOKEN, gpu_backend=_RealGpuStandIn())  # type: ignore[arg-type]
    try:
        transport = httpx.ASGITransport(app=create_node_app(node, exit_process=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            response = await client.post(
                "/admin/faults", json={"kind": "gpu-xid", "code": 79},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        assert response.status_code == 409
        assert "real GPU cannot be faulted" in response.json()["error"]["message"]
        assert node.faults.active() == []
    finally:
        node.close()
