"""The router's admin API: auth, node listing, drain/undrain, cycle, fault forwarding —
over HTTP, and through `remediation.ReferenceFleetDriver`, its real client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _router_support import (
    AUTH,
    CLIENT,
    TOKEN,
    RouterServer,
    StandinNode,
    SupervisedFleet,
    completion,
    router_for,
    standin_nodes,
    wait_until,
)

from remediation import FleetDriverError, NodeStatus, ReferenceFleetDriver, UnknownNodeError

NODE_KEYS = {"name", "status", "healthy", "in_flight", "url", "weight", "ejected_until_s",
             "consecutive_failures", "ejections"}


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
        CLIENT.delete(f"{server.url}/admin/nodes/{node.spec.name}/faults", headers=AUTH)
        CLIENT.post(f"{server.url}/admin/nodes/{node.spec.name}/undrain", headers=AUTH)


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
], ids=["no header", "wrong token", "no scheme", "basic", "longer token"])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/nodes"), ("POST", "/admin/nodes/node-0/drain"),
    ("POST", "/admin/nodes/node-0/cycle"), ("POST", "/admin/nodes/node-0/faults"),
    ("DELETE", "/admin/nodes/node-0/faults"), ("POST", "/admin/nodes/node-9/undrain"),
])
def test_admin_routes_refuse_a_missing_or_wrong_token(
    fleet: Any, headers: dict[str, str], method: str, path: str
) -> None:
    server, _ = fleet
    answer = httpx.request(method, server.url + path, headers=headers, json={"kind": "crash"})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in answer.text
    assert server.nodes()["node-0"]["status"] == "serving"  # nothing happened


def test_admin_nodes_lists_every_node_in_the_contract_shape(fleet: Any) -> None:
    server, nodes = fleet
    answer = httpx.get(f"{server.url}/admin/nodes", headers=AUTH)
    assert answer.status_code == 200
    listed = answer.json()["nodes"]
    assert [n["name"] for n in listed] == ["node-0", "node-1", "node-2"]
    for node, entry in zip(nodes, listed, strict=True):
        assert set(entry) == NODE_KEYS
        assert entry == {"name": node.spec.name, "status": "serving", "healthy": True,
                         "in_flight": 0, "url": node.url, "weight": 1.0, "ejected_until_s": None,
                         "consecutive_failures": 0, "ejections": 0}


@pytest.mark.parametrize(("method", "action"), [
    ("POST", "drain"), ("POST", "undrain"), ("POST", "cycle"), ("POST", "faults"),
    ("DELETE", "faults"),
])
def test_an_unknown_node_is_404_with_the_known_names(fleet: Any, method: str, action: str) -> None:
    server, _ = fleet
    answer = httpx.request(method, f"{server.url}/admin/nodes/node-9/{action}", headers=AUTH,
                           json={"kind": "latency", "seconds": 1.0})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["message"] == "unknown node 'node-9'; known: node-0, node-1, node-2"
    assert error["type"] == "not_found_error"


def test_a_drained_node_finishes_its_streams_and_gets_no_new_requests(fleet: Any) -> None:
    server, _ = fleet
    with httpx.Client(timeout=20) as client, client.stream(
        "POST", f"{server.url}/v1/completions",
        json=completion(stream=True, max_tokens=8, test_token_delay_s=0.25),
    ) as slow:
        node = slow.headers["x-inferops-node"]
        lines = slow.iter_lines()
        assert next(line for line in lines if line).startswith("data: {")
        drained = client.post(f"{server.url}/admin/nodes/{node}/drain", headers=AUTH)
        assert drained.status_code == 200
        assert drained.json() == {"node": {"name": node, "status": "draining", "healthy": True,
                                           "in_flight": 1, "url": server.nodes()[node]["url"],
                                           "weight": 1.0, "ejected_until_s": None,
                                           "consecutive_failures": 0, "ejections": 0}}
        others = {client.post(f"{server.url}/v1/completions", json=completion())
                  .headers["x-inferops-node"] for _ in range(6)}
        assert node not in others
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]" and len(rest) == 8  # 7 more tokens, then [DONE]
    assert server.nodes()[node]["status"] == "drained"
    undrained = httpx.post(f"{server.url}/admin/nodes/{node}/undrain", headers=AUTH)
    assert undrained.json()["node"]["status"] == "serving"


def test_faults_are_forwarded_to_the_node_and_its_answer_relayed(fleet: Any) -> None:
    server, nodes = fleet
    url = f"{server.url}/admin/nodes/node-2/faults"
    added = httpx.post(url, headers=AUTH, json={"kind": "latency", "seconds": 0.5})
    assert added.status_code == 200
    assert added.json() == {"faults": [{"kind": "latency", "seconds": 0.5}]}
    assert nodes[2].stats()["faults"] == [{"kind": "latency", "seconds": 0.5}]
    assert nodes[1].stats()["faults"] == []
    refused = httpx.post(url, headers=AUTH, json={"kind": "meteor"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("kind")
    cleared = httpx.delete(url, headers=AUTH)
    assert (cleared.status_code, cleared.json()) == (200, {"faults": []})
    assert nodes[2].stats()["faults"] == []


def test_the_driver_reads_and_drives_the_router(fleet: Any) -> None:
    server, _ = fleet
    with ReferenceFleetDriver(server.url, admin_token=TOKEN, timeout_s=5.0) as driver:
        states = driver.nodes()
        assert [(s.name, s.status, s.healthy, s.in_flight) for s in states] == [
            (f"node-{i}", NodeStatus.SERVING, True, 0) for i in range(3)]
        driver.drain("node-1")
        assert {s.name: s.status for s in driver.nodes()}["node-1"] == NodeStatus.DRAINED
        driver.undrain("node-1")
        assert {s.name: s.status for s in driver.nodes()}["node-1"] == NodeStatus.SERVING
        with pytest.raises(UnknownNodeError) as unknown:
            driver.drain("node-7")
        assert unknown.value.known == ("node-0", "node-1", "node-2")
        with pytest.raises(FleetDriverError, match="501"):
            driver.cycle("node-0")  # this router was given no supervisor
        assert {s.name: s.status for s in driver.nodes()}["node-0"] == NodeStatus.SERVING
    with ReferenceFleetDriver(server.url, admin_token="wrong") as driver, pytest.raises(
        FleetDriverError, match="401"
    ):
        driver.nodes()


def test_faults_on_a_node_that_does_not_answer_are_503() -> None:
    with standin_nodes(1) as nodes, RouterServer(router_for(nodes)) as server:
        nodes[0].kill()
        answer = httpx.post(f"{server.url}/admin/nodes/node-0/faults", headers=AUTH,
                            json={"kind": "crash"})
        assert answer.status_code == 503
        assert answer.json()["error"]["message"].startswith("node-0 did not answer POST")


# -- cycle: a router with a supervisor of stand-in node processes ----------------------------


def test_cycle_restarts_the_process_after_its_streams_finish_and_serves_again() -> None:
    with SupervisedFleet(2) as fleet, httpx.Client(timeout=30) as client:
        url = fleet.server.url
        first_pid = fleet.supervisor.pid("node-0")
        with client.stream("POST", f"{url}/v1/completions",
                           json=completion(stream=True, max_tokens=6, test_token_delay_s=0.2)
                           ) as slow:
            assert slow.headers["x-inferops-node"] == "node-0"
            cycled = client.post(f"{url}/admin/nodes/node-0/cycle", headers=AUTH)
            lines = [line for line in slow.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"  # the drain let it finish before the restart
        assert cycled.status_code == 200, cycled.text
        assert cycled.json()["node"]["status"] == "serving"
        assert cycled.json()["node"]["healthy"] is True
        assert fleet.supervisor.pid("node-0") != first_pid
        assert fleet.supervisor.running("node-0")
        served = {client.post(f"{url}/v1/completions", json=completion())
                  .headers["x-inferops-node"] for _ in range(4)}
        assert served == {"node-0", "node-1"}
        with ReferenceFleetDriver(url, admin_token=TOKEN) as driver:
            driver.cycle("node-1")
            assert {s.status for s in driver.nodes()} == {NodeStatus.SERVING}


def test_a_crashed_node_stays_down_until_cycled() -> None:
    with SupervisedFleet(2) as fleet:
        url = fleet.server.url
        crashed = httpx.post(f"{url}/admin/nodes/node-1/faults", headers=AUTH,
                             json={"kind": "crash"})
        assert crashed.status_code == 200
        fleet.server.wait_status("node-1", "down", timeout_s=3.0)
        wait_until(lambda: fleet.supervisor.exit_code("node-1") is not None, 3.0, "exit")
        assert fleet.supervisor.exit_code("node-1") == 1
        answer = fleet.cycle("node-1")
        assert answer.status_code == 200, answer.text
        assert answer.json()["node"]["status"] == "serving"


def test_a_cycle_whose_node_dies_on_restart_fails_naming_the_step() -> None:
    with SupervisedFleet(2) as fleet:
        fleet.extra["node-1"] = ["--exit-code", "3"]
        answer = fleet.cycle("node-1")
        assert answer.status_code == 500
        error = answer.json()["error"]
        assert error["type"] == "server_error"
        assert error["message"] == ("cycle node-1: wait healthy failed: the restarted process "
                                    "exited with code 3; node-1 stays drained")
        assert fleet.server.nodes()["node-1"]["status"] == "drained"
        assert "[node-1] node-1: exiting with code 3 as asked" in fleet.output.getvalue()


def test_a_cycle_whose_node_starts_too_slowly_is_504_and_stays_drained() -> None:
    with SupervisedFleet(2, node_start_timeout_s=1.0) as fleet:
        fleet.extra["node-0"] = ["--startup-delay", "4"]
        answer = fleet.cycle("node-0")
        assert answer.status_code == 504
        assert answer.json()["error"]["message"].startswith(
            "cycle node-0: wait healthy failed: not healthy within 1 s")
        assert fleet.server.nodes()["node-0"]["status"] == "drained"
        # it does come up later, and is then healthy but still drained until undrained
        fleet.server.wait_status("node-0", "drained", timeout_s=1.0)
        wait_until(lambda: fleet.server.nodes()["node-0"]["healthy"], 15.0, "node-0 healthy")
        undrained = httpx.post(f"{fleet.server.url}/admin/nodes/node-0/undrain", headers=AUTH)
        assert undrained.json()["node"]["status"] == "serving"
