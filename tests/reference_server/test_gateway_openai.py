"""The official `openai` Python client, unchanged, against the router (with API keys) in front
of two real torch nodes (tiny: 2 layers, d_model 64): completions and chat, streaming and
not, usage, errors as the client raises them."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import openai
import pytest
from _router_support import (
    TOKEN,
    RouterServer,
    count,
    free_port_block,
    wait_until,
)

from reference_server import ApiKey, NodeSpec, NodeSupervisor, Router

pytestmark = pytest.mark.integration

KEY = ApiKey("openai-client", "sk-openai-client-test-0001")
LIMITED = ApiKey("limited", "sk-limited-client-0002", requests_per_minute=1)


def tiny_node(spec: NodeSpec) -> list[str]:
    return [sys.executable, "-m", "reference_server.node", "--name", spec.name,
            "--host", spec.host, "--port", str(spec.port), "--gpu-backend", "sim",
            "--device", "cpu", "--n-layers", "2", "--d-model", "64", "--log-level", "warning"]


@pytest.fixture(scope="module")
def router() -> Iterator[RouterServer]:
    base = free_port_block(2)
    specs = [NodeSpec(f"node-{i}", "127.0.0.1", base + i) for i in range(2)]
    output = io.StringIO()
    supervisor = NodeSupervisor(specs, command=tiny_node, admin_token=TOKEN,
                                stdout=output, stderr=output)
    server = RouterServer(Router(specs, admin_token=TOKEN, controller=supervisor,
                                 health_interval_s=0.25, api_keys=(KEY, LIMITED)))
    supervisor.start_all()
    try:
        with server:
            wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 120,
                       "2 tiny nodes healthy", interval_s=0.5)
            yield server
    finally:
        supervisor.stop_all()


def client(server: RouterServer, key: str = KEY.key) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, timeout=60.0, max_retries=0)


def test_models_list_the_fleets_model(router: RouterServer) -> None:
    assert [model.id for model in client(router).models.list()] == ["inferops-tiny"]


def test_completions_answer_with_usage_and_are_metered(router: RouterServer) -> None:
    before = count(router, "inferops_gateway_tokens_total", api_key_name="openai-client",
                   kind="generation")
    answer = client(router).completions.create(
        model="inferops-tiny", prompt="The on-call engineer", max_tokens=6, temperature=0)
    assert answer.object == "text_completion"
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    assert answer.choices[0].finish_reason == "length"
    assert count(router, "inferops_gateway_tokens_total", api_key_name="openai-client",
                 kind="generation") == before + 6


def test_streamed_completions_arrive_chunk_by_chunk(router: RouterServer) -> None:
    chunks = list(client(router).completions.create(
        model="inferops-tiny", prompt="GPU node health", max_tokens=5, stream=True, seed=1))
    assert len(chunks) >= 2
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(chunk.usage is None for chunk in chunks)  # not asked for: not shown


def test_chat_completions_streaming_and_not(router: RouterServer) -> None:
    messages = [{"role": "user", "content": "hello"}]
    answer = client(router).chat.completions.create(
        model="inferops-tiny", messages=messages, max_tokens=4,  # type: ignore[arg-type]
        temperature=0)
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage is not None and answer.usage.completion_tokens == 4
    stream = client(router).chat.completions.create(
        model="inferops-tiny", messages=messages, max_tokens=4,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True}, temperature=0)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer.choices[0].message.content  # greedy: the same text either way


def test_the_client_raises_its_own_errors_for_a_bad_key_and_a_rate_limit(
    router: RouterServer,
) -> None:
    with pytest.raises(openai.AuthenticationError) as denied:
        client(router, "sk-wrong-key-00000").models.list()
    assert denied.value.code == "invalid_api_key"
    limited = client(router, LIMITED.key)
    limited.completions.create(model="inferops-tiny", prompt="a", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as refused:
        limited.completions.create(model="inferops-tiny", prompt="a", max_tokens=1)
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.response.headers["retry-after"] == "60"
