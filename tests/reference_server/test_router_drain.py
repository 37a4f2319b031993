"""Drain modes and cycles under real load (issue 3's "done when"): with 32 streams open a
drained node breaks none and gets no new request; an immediate drain cuts what is in
flight; a drain deadline cuts what is still running then; a cycle under steady client
load shows the clients no error. Plus profile forwarding. Real processes, real sockets."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _router_support import (
    AUTH,
    CLIENT,
    RouterServer,
    StandinNode,
    SupervisedFleet,
    completion,
    count,
    router_for,
    standin_nodes,
    wait_until,
)


@pytest.fixture(scope="module")
def trio() -> Iterator[tuple[RouterServer, list[StandinNode]]]:
    with standin_nodes(3) as nodes, RouterServer(router_for(nodes)) as server:
        wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10, "3 healthy")
        yield server, nodes


@pytest.fixture
def fleet(trio: tuple[RouterServer, list[StandinNode]]) -> Iterator[
        tuple[RouterServer, list[StandinNode]]]:
    server, nodes = trio
    yield server, nodes
    for node in nodes:
        CLIENT.post(f"{server.url}/admin/nodes/{node.spec.name}/undrain", headers=AUTH)
    wait_until(lambda: all(n["in_flight"] == 0 for n in server.nodes().values()), 10, "idle")


class OpenStream:
    """One SSE request held open: its node, and every non-empty line it received."""

    def __init__(self, client: httpx.AsyncClient, url: str, tokens: int, delay_s: float) -> None:
        self.lines: list[str] = []
        self.node = ""
        self.first = asyncio.Event()
        self.task = asyncio.create_task(self._run(client, url, tokens, delay_s))

    async def _run(self, client: httpx.AsyncClient, url: str, tokens: int,
                   delay_s: float) -> None:
        body = completion(stream=True, max_tokens=tokens, test_token_delay_s=delay_s)
        async with client.stream("POST", f"{url}/v1/completions", json=body) as answer:
            assert answer.status_code == 200
            self.node = answer.headers["x-inferops-node"]
            async for line in answer.aiter_lines():
                if line:
                    self.lines.append(line)
                    self.first.set()

    @property
    def complete(self) -> bool:
        return bool(self.lines) and self.lines[-1] == "data: [DONE]"


def async_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30.0, trust_env=False,
                             limits=httpx.Limits(max_connections=100))


async def open_streams(client: httpx.AsyncClient, url: str, count_: int, tokens: int,
                       delay_s: float) -> list[OpenStream]:
    streams = [OpenStream(client, url, tokens, delay_s) for _ in range(count_)]
    await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in streams)), 20)
    return streams


async def test_draining_a_node_under_32_open_streams_breaks_none_and_routes_none_to_it(
    fleet: Any,
) -> None:
    server, nodes = fleet
    async with async_client() as client:
        streams = await open_streams(client, server.url, 32, tokens=12, delay_s=0.25)
        per_node = Counter(s.node for s in streams)
        assert sum(per_node.values()) == 32 and len(per_node) == 3
        drained = streams[0].node
        standin = next(n for n in nodes if n.spec.name == drained)
        answer = await client.post(f"{server.url}/admin/nodes/{drained}/drain", headers=AUTH)
        assert answer.status_code == 200
        assert answer.json()["node"]["status"] == "draining"
        received_at_drain = standin.stats()["requests"]
        new: list[httpx.Response] = []
        for batch in range(4):  # while the 32 streams run; a few at a time on 2 shared cores
            new += await asyncio.gather(*(
                client.post(f"{server.url}/v1/completions", json=completion(stream=i % 2 == 1))
                for i in range(batch * 6, batch * 6 + 6)))
        await asyncio.gather(*(s.task for s in streams))
    assert [a.status_code for a in new] == [200] * 24
    assert drained not in {a.headers["x-inferops-node"] for a in new}
    assert standin.stats()["requests"] == received_at_drain
    assert [len(s.lines) for s in streams] == [13] * 32  # 12 tokens and [DONE], every one
    assert all(s.complete for s in streams)
    assert server.nodes()[drained]["status"] == "drained"


async def test_an_immediate_drain_ends_the_streams_in_flight_and_counts_them(
    fleet: Any,
) -> None:
    server, _ = fleet
    async with async_client() as client:
        streams = await open_streams(client, server.url, 6, tokens=40, delay_s=0.1)
        victim = streams[0].node
        on_victim = sum(s.node == victim for s in streams)
        cut_before = count(server, "inferops_router_drain_cut_total", node=victim,
                           what="stream")
        answer = await client.post(f"{server.url}/admin/nodes/{victim}/drain", headers=AUTH,
                                   json={"mode": "immediate"})
        assert answer.status_code == 200, answer.text
        ended = await asyncio.wait_for(
            asyncio.gather(*(s.task for s in streams if s.node == victim)), 20)
        assert len(ended) == on_victim
        for stream in streams:
            if stream.node == victim:
                assert not stream.complete and len(stream.lines) < 41
                assert stream.lines[-1].startswith("data: {")  # whole events, then the end
        survivors = [s for s in streams if s.node != victim]
        await asyncio.gather(*(s.task for s in survivors))
    assert all(s.complete and len(s.lines) == 41 for s in survivors)
    assert count(server, "inferops_router_drain_cut_total", node=victim,
                 what="stream") == cut_before + on_victim
    assert server.nodes()[victim]["status"] == "drained"


async def test_an_immediate_drain_moves_a_request_without_a_first_byte_to_another_node(
    fleet: Any,
) -> None:
    server, _ = fleet
    async with async_client() as client:
        for name in ("node-1", "node-2"):
            await client.post(f"{server.url}/admin/nodes/{name}/weight", headers=AUTH,
                              json={"weight": 0})
        try:
            pending = asyncio.create_task(client.post(
                f"{server.url}/v1/completions",
                json=completion(max_tokens=10, test_token_delay_s=0.1)))
            await asyncio.to_thread(wait_until, lambda: server.nodes()["node-0"]["in_flight"],
                                    10, "the request on node-0")
            for name in ("node-1", "node-2"):
                await client.post(f"{server.url}/admin/nodes/{name}/weight", headers=AUTH,
                                  json={"weight": 1})
            drained = await client.post(f"{server.url}/admin/nodes/node-0/drain",
                                        headers=AUTH, json={"mode": "immediate"})
            assert drained.status_code == 200
            answer = await pending
        finally:
            await client.post(f"{server.url}/admin/reroute", headers=AUTH,
                              json={"weights": {"node-1": 1, "node-2": 1}})
    assert answer.status_code == 200
    assert answer.headers["x-inferops-node"] in {"node-1", "node-2"}
    assert answer.json()["choices"][0]["text"] == "".join(f" t{i}" for i in range(10))


async def test_a_drain_deadline_lets_short_streams_finish_and_cuts_the_rest(
    fleet: Any,
) -> None:
    server, _ = fleet
    async with async_client() as client:
        await client.post(f"{server.url}/admin/reroute", headers=AUTH,
                          json={"weights": {"node-1": 0, "node-2": 0}})
        try:
            short = await open_streams(client, server.url, 2, tokens=3, delay_s=0.1)
            long = await open_streams(client, server.url, 2, tokens=200, delay_s=0.05)
        finally:
            await client.post(f"{server.url}/admin/reroute", headers=AUTH,
                              json={"weights": {"node-1": 1, "node-2": 1}})
        assert {s.node for s in short + long} == {"node-0"}
        answer = await client.post(f"{server.url}/admin/nodes/node-0/drain", headers=AUTH,
                                   json={"mode": "allow-completion-until-deadline",
                                         "deadline_s": 1.0})
        assert answer.status_code == 200, answer.text
        await asyncio.wait_for(asyncio.gather(*(s.task for s in short + long)), 20)
    assert [s.complete for s in short] == [True, True]
    assert [s.complete for s in long] == [False, False]
    assert server.nodes()["node-0"]["status"] == "drained"


@pytest.mark.parametrize(("body", "message"), [
    ({"mode": "now"}, "mode: must be one of immediate, allow-completion, "
     "allow-completion-until-deadline, got 'now'"),
    ({"mode": "allow-completion-until-deadline"}, "deadline_s: "
     "allow-completion-until-deadline needs a number of seconds in (0, 86400], got None"),
    ({"mode": "allow-completion-until-deadline", "deadline_s": "soon"},
     "deadline_s: must be a number, got 'soon'"),
], ids=["mode", "no deadline", "deadline"])
def test_a_bad_drain_body_is_400_and_drains_nothing(
    fleet: Any, body: dict[str, Any], message: str
) -> None:
    server, _ = fleet
    answer = httpx.post(f"{server.url}/admin/nodes/node-0/drain", headers=AUTH, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == message
    assert server.nodes()["node-0"]["status"] == "serving"


def test_profile_requests_are_relayed_to_the_node_and_503_when_it_does_not_answer(
    fleet: Any,
) -> None:
    server, _ = fleet
    url = f"{server.url}/admin/nodes/node-1/profile"
    answer = httpx.post(url, headers=AUTH, json={"steps": 4})
    assert (answer.status_code, answer.json()) == (200, {
        "node": "node-1", "steps": 4, "ops": [{"name": "aten::mm", "calls": 4, "share": 1.0}]})
    refused = httpx.post(url, headers=AUTH, json={"steps": 0})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "steps: must be a positive integer"
    assert httpx.post(url, json={"steps": 1}).status_code == 401


def test_profile_of_a_node_that_does_not_answer_is_503() -> None:
    with standin_nodes(1) as nodes, RouterServer(router_for(nodes)) as server:
        nodes[0].kill()
        answer = httpx.post(f"{server.url}/admin/nodes/node-0/profile", headers=AUTH,
                            json={"steps": 1})
    assert answer.status_code == 503
    assert answer.json()["error"]["message"].startswith(
        "node-0 did not answer POST /admin/profile (ConnectError")


def test_a_cycle_under_steady_client_load_shows_the_clients_no_error() -> None:
    results: list[tuple[int, bool, str]] = []
    stop = threading.Event()

    def client_loop(index: int, url: str) -> None:
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            n = 0
            while not stop.is_set():
                n += 1
                stream = (n + index) % 2 == 0
                body = completion(stream=stream, max_tokens=4, test_token_delay_s=0.02)
                if stream:
                    with client.stream("POST", f"{url}/v1/completions", json=body) as answer:
                        lines = [line for line in answer.iter_lines() if line]
                        results.append((answer.status_code, lines[-1:] == ["data: [DONE]"],
                                        answer.headers.get("x-inferops-node", "")))
                else:
                    answer = client.post(f"{url}/v1/completions", json=body)
                    results.append((answer.status_code, answer.status_code == 200,
                                    answer.headers.get("x-inferops-node", "")))

    with SupervisedFleet(3) as fleet:
        first_pid = fleet.supervisor.pid("node-1")
        workers = [threading.Thread(target=client_loop, args=(i, fleet.server.url))
                   for i in range(4)]
        for worker in workers:
            worker.start()
        try:
            wait_until(lambda: len(results) >= 20, 20, "steady load")
            cycled = fleet.cycle("node-1")
            after = len(results)
            wait_until(lambda: any(r[2] == "node-1" for r in results[after:]), 20,
                       "node-1 serving again")
            second_pid = fleet.supervisor.pid("node-1")
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
    assert cycled.status_code == 200, cycled.text
    assert second_pid != first_pid
    failures = [r for r in results if r[:2] != (200, True)]
    assert failures == []
    assert len(results) > 20
