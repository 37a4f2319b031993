"""Health checks: a dead, hung or self-draining node stops getting traffic within about
one health interval, and comes back when it answers again. Real processes, real sockets."""

from __future__ import annotations

import time

import httpx
from _router_support import AUTH, RouterServer, completion, router_for, standin_nodes, wait_until

INTERVAL_S = 0.25
TIMEOUT_S = 0.5


def all_healthy(server: RouterServer) -> bool:
    return all(node["healthy"] for node in server.nodes().values())


def test_a_dead_node_is_down_within_two_intervals_and_gets_no_traffic() -> None:
    with standin_nodes(2) as nodes, RouterServer(
        router_for(nodes, health_interval_s=INTERVAL_S, health_timeout_s=TIMEOUT_S)
    ) as server:
        wait_until(lambda: all_healthy(server), 10, "2 healthy")
        nodes[1].kill()
        killed = time.monotonic()
        server.wait_status("node-1", "down", timeout_s=3.0)
        assert time.monotonic() - killed <= 2 * INTERVAL_S + 0.3
        assert server.nodes()["node-1"] == {
            "name": "node-1", "status": "down", "healthy": False, "in_flight": 0,
            "url": nodes[1].url, "weight": 1.0, "ejected_until_s": None,
            "consecutive_failures": 0, "ejections": 0,
        }
        answers = [httpx.post(f"{server.url}/v1/completions", json=completion())
                   for _ in range(5)]
        assert {(a.status_code, a.headers["x-inferops-node"]) for a in answers} == {
            (200, "node-0")}
        health = httpx.get(f"{server.url}/health")
        assert (health.status_code, health.json()["healthy_nodes"], health.json()["nodes"]) == (
            200, 1, 2)


def test_a_hung_node_is_down_after_its_health_check_times_out_and_comes_back() -> None:
    with standin_nodes(2) as nodes, RouterServer(
        router_for(nodes, health_interval_s=INTERVAL_S, health_timeout_s=TIMEOUT_S)
    ) as server:
        wait_until(lambda: all_healthy(server), 10, "2 healthy")
        nodes[0].pause()  # SIGSTOP: the port accepts, nothing answers
        try:
            paused = time.monotonic()
            server.wait_status("node-0", "down", timeout_s=3.0)
            assert time.monotonic() - paused <= INTERVAL_S + TIMEOUT_S + 0.4
            answers = [httpx.post(f"{server.url}/v1/completions", json=completion(), timeout=5)
                       for _ in range(4)]
            assert {a.headers["x-inferops-node"] for a in answers} == {"node-1"}
        finally:
            nodes[0].resume()
        server.wait_status("node-0", "serving", timeout_s=3.0)


def test_a_node_that_drains_itself_reads_down_then_serving_again() -> None:
    with standin_nodes(1) as nodes, RouterServer(
        router_for(nodes, health_interval_s=INTERVAL_S, health_timeout_s=TIMEOUT_S)
    ) as server:
        server.wait_status("node-0", "serving", timeout_s=5.0)
        httpx.post(f"{nodes[0].url}/admin/drain", headers=AUTH)  # the node's own 503
        server.wait_status("node-0", "down", timeout_s=2.0)
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable", "healthy_nodes": 0, "nodes": 1,
                                 "serving_nodes": 0}
        assert httpx.post(f"{server.url}/v1/completions", json=completion()).status_code == 503
        httpx.post(f"{nodes[0].url}/admin/undrain", headers=AUTH)
        server.wait_status("node-0", "serving", timeout_s=2.0)


def test_drain_intent_wins_over_down() -> None:
    with standin_nodes(2) as nodes, RouterServer(
        router_for(nodes, health_interval_s=INTERVAL_S, health_timeout_s=TIMEOUT_S)
    ) as server:
        wait_until(lambda: all_healthy(server), 10, "2 healthy")
        httpx.post(f"{server.url}/admin/nodes/node-1/drain", headers=AUTH)
        nodes[1].kill()
        wait_until(lambda: not server.nodes()["node-1"]["healthy"], 3.0, "node-1 unhealthy")
        assert server.nodes()["node-1"]["status"] == "drained"
        undrained = httpx.post(f"{server.url}/admin/nodes/node-1/undrain", headers=AUTH)
        assert undrained.json()["node"]["status"] == "down"
