"""The router's fast `/v1/*` path: ahead of FastAPI's routing, over kept-alive connections.

A real router (uvicorn, in a thread) in front of one stand-in node process on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from _router_support import RouterServer, completion, router_for, standin_nodes, wait_until

from reference_server import Router


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RouterServer, Router]]:
    with standin_nodes(1) as nodes:
        router = router_for(nodes)
        with RouterServer(router) as server:
            wait_until(lambda: server.nodes()["node-0"]["healthy"], 10, "node-0 healthy")
            yield server, router


@pytest.mark.integration
def test_sequential_relayed_requests_share_one_upstream_connection(
        served: tuple[RouterServer, Router]) -> None:
    server, router = served
    opened_before = router.upstream.opened
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        answers = [client.post(f"{server.url}/v1/completions", json=completion())
                   for _ in range(10)]
        streamed = client.post(f"{server.url}/v1/completions", json=completion(stream=True))
    assert [a.status_code for a in answers] == [200] * 10
    assert {a.headers["x-inferops-node"] for a in answers} == {"node-0"}
    assert streamed.text.endswith("data: [DONE]\n\n")
    # one connection (none when one was idle; two if a gap outlived the 2 s keep-alive)
    assert router.upstream.opened - opened_before <= 2


@pytest.mark.integration
@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_other_methods_on_v1_still_answer_405_in_openai_shape(
        served: tuple[RouterServer, Router], method: str) -> None:
    server, _ = served
    answer = httpx.request(method, f"{server.url}/v1/completions", timeout=10.0)
    assert answer.status_code == 405
    assert answer.json() == {"error": {"message": "Method Not Allowed",
                                       "type": "invalid_request_error", "param": None,
                                       "code": None}}
