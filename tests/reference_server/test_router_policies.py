"""Routing policies and weights: the pool's choice in isolation (least outstanding, weighted
round robin, session affinity, model pools), then over HTTP (session header, reroute and
weight admin routes) against stand-in node processes."""

from __future__ import annotations

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
    completion,
    router_for,
    standin_nodes,
    wait_until,
)

from reference_server import FleetConfig, FleetConfigError, NodeSpec
from reference_server._router_pool import NodePool


def pool(count: int = 3, **options: Any) -> NodePool:
    made = NodePool([NodeSpec(f"node-{i}", "127.0.0.1", 9000 + i) for i in range(count)],
                    **options)
    for node in made.nodes:
        made.set_health(node, True)
    return made


def picks(made: NodePool, count: int, **options: Any) -> list[str]:
    chosen = []
    for _ in range(count):
        node = made.pick(**options)
        assert node is not None
        chosen.append(node.name)
    return chosen


def test_least_outstanding_counts_requests_per_unit_of_weight() -> None:
    made = pool()
    made.set_weights({"node-0": 2.0}, why="test")
    for name, in_flight in (("node-0", 3), ("node-1", 2), ("node-2", 2)):
        made.get(name).in_flight = in_flight
    assert picks(made, 2) == ["node-0", "node-0"]  # 3 / 2 beats 2 / 1
    made.get("node-0").in_flight = 4  # 4 / 2 ties 2 / 1: round robin among the tied
    assert sorted(picks(made, 3)) == ["node-0", "node-1", "node-2"]


@pytest.mark.parametrize(("weights", "expected"), [
    ({}, {"node-0": 4, "node-1": 4, "node-2": 4}),
    ({"node-0": 2.0}, {"node-0": 6, "node-1": 3, "node-2": 3}),
    ({"node-1": 0.0}, {"node-0": 6, "node-2": 6}),
    ({"node-0": 5.0, "node-2": 0.0}, {"node-0": 10, "node-1": 2}),
], ids=["equal", "double", "zero", "five to one"])
def test_round_robin_follows_the_weights_exactly(
    weights: dict[str, float], expected: dict[str, int]
) -> None:
    made = pool(policy="round-robin")
    made.set_weights(weights, why="test")
    assert dict(Counter(picks(made, 12))) == expected


def test_smooth_round_robin_interleaves_instead_of_bursting() -> None:
    made = pool(policy="round-robin")
    made.set_weights({"node-0": 2.0}, why="test")
    assert picks(made, 4) == ["node-0", "node-1", "node-2", "node-0"]


def test_session_affinity_keeps_a_session_on_one_node_and_moves_only_that_nodes_sessions(
) -> None:
    made = pool(policy="session-affinity")
    sessions = [f"user-{i}" for i in range(200)]
    home = {s: picks(made, 1, session=s)[0] for s in sessions}
    assert all(picks(made, 3, session=s) == [home[s]] * 3 for s in sessions[:20])
    assert set(Counter(home.values())) == {"node-0", "node-1", "node-2"}
    made.drain(made.get("node-1"))
    moved = {s: picks(made, 1, session=s)[0] for s in sessions}
    assert all(moved[s] == home[s] for s in sessions if home[s] != "node-1")
    assert all(moved[s] != "node-1" for s in sessions)
    made.undrain(made.get("node-1"))
    assert {s: picks(made, 1, session=s)[0] for s in sessions} == home


def test_session_affinity_without_a_session_key_goes_least_outstanding() -> None:
    made = pool(policy="session-affinity")
    made.get("node-0").in_flight = 1
    made.get("node-1").in_flight = 1
    assert picks(made, 1) == ["node-2"]


def test_a_model_pool_routes_its_model_only_to_its_nodes() -> None:
    made = pool(pools={"big": ["node-2"]})
    assert set(picks(made, 6, model="big")) == {"node-2"}
    assert set(picks(made, 6, model="other")) == {"node-0", "node-1", "node-2"}
    made.set_health(made.get("node-2"), False, "test")
    assert made.pick(model="big") is None


@pytest.mark.parametrize(("weights", "message"), [
    ({"node-0": 2.0, "node-1": -1}, "weights.node-1: must be a number in 0..1000, got -1"),
    ({"node-0": 2.0, "node-1": "x"}, "weights.node-1: must be a number in 0..1000, got 'x'"),
    ({"node-0": 2.0, "node-1": True}, "weights.node-1: must be a number in 0..1000, got True"),
    ({"node-0": 2.0, "node-9": 1}, "unknown node 'node-9'; known: node-0, node-1, node-2"),
], ids=["negative", "string", "bool", "unknown node"])
def test_a_bad_weight_changes_no_weight(weights: dict[str, Any], message: str) -> None:
    made = pool()
    with pytest.raises((ValueError, LookupError)) as caught:
        made.set_weights(weights, why="test")
    assert str(caught.value) == message
    assert [node.weight for node in made.nodes] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(("options", "message"), [
    ({"routing_policy": "random"}, "routing_policy: must be one of least-outstanding, "
     "round-robin, session-affinity, got 'random'"),
    ({"model_pools": {"big": ("node-7",)}}, "model_pools.big: must list nodes of this fleet "
     "(node-0, node-1, node-2); unknown: ['node-7']"),
], ids=["policy", "pool"])
def test_the_fleet_config_refuses_an_unknown_policy_or_pool_node(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(FleetConfigError) as caught:
        FleetConfig(admin_token="admin-token-1234", **options)
    assert str(caught.value) == message


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def affinity() -> Iterator[tuple[RouterServer, list[StandinNode]]]:
    with standin_nodes(3) as nodes, RouterServer(
            router_for(nodes, routing_policy="session-affinity")) as server:
        wait_until(lambda: all(n["healthy"] for n in server.nodes().values()), 10, "3 healthy")
        yield server, nodes


@pytest.fixture
def fleet(affinity: tuple[RouterServer, list[StandinNode]]) -> Iterator[
        tuple[RouterServer, list[StandinNode]]]:
    server, nodes = affinity
    yield server, nodes
    CLIENT.post(f"{server.url}/admin/reroute", headers=AUTH,
                json={"weights": {n.spec.name: 1.0 for n in nodes}})


def served_by(server: RouterServer, **kwargs: Any) -> str:
    answer = httpx.post(f"{server.url}/v1/completions", **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-inferops-node"]


def test_a_session_header_or_user_field_keeps_requests_on_one_node(fleet: Any) -> None:
    server, _ = fleet
    by_header = {served_by(server, json=completion(), headers={"x-session-id": "chat-42"})
                 for _ in range(5)}
    by_user = {served_by(server, json=completion(user="chat-42")) for _ in range(5)}
    assert len(by_header) == 1 and by_header == by_user


def test_reroute_sets_every_weight_and_a_zero_weight_node_gets_no_requests(fleet: Any) -> None:
    server, _ = fleet
    answer = httpx.post(f"{server.url}/admin/reroute", headers=AUTH,
                        json={"weights": {"node-0": 0, "node-1": 3}})
    assert answer.status_code == 200, answer.text
    assert [(n["name"], n["weight"], n["status"]) for n in answer.json()["nodes"]] == [
        ("node-0", 0.0, "serving"), ("node-1", 3.0, "serving"), ("node-2", 1.0, "serving")]
    served = {served_by(server, json=completion(user=f"u{i}")) for i in range(20)}
    assert "node-0" not in served


def test_one_nodes_weight_can_be_set_and_bad_bodies_change_nothing(fleet: Any) -> None:
    server, _ = fleet
    url = f"{server.url}/admin/nodes/node-2/weight"
    assert httpx.post(url, headers=AUTH, json={"weight": 0.5}).json()["node"]["weight"] == 0.5
    for body, message in (
        ({"weight": -2}, "weight: must be a number in 0..1000, got -2.0"),
        ({"weight": "heavy"}, "weight: must be a number, got 'heavy'"),
        ([1], "the body must be a JSON object"),
    ):
        answer = httpx.post(url, headers=AUTH, json=body)
        assert answer.status_code == 400
        assert answer.json()["error"]["message"] == message
    reroute = httpx.post(f"{server.url}/admin/reroute", headers=AUTH,
                         json={"weights": {"node-0": 2, "node-9": 1}})
    assert reroute.status_code == 404
    assert [n["weight"] for n in server.nodes().values()] == [1.0, 1.0, 0.5]


@pytest.mark.parametrize(("path", "body"), [
    ("/admin/reroute", {"weights": {"node-0": 0}}),
    ("/admin/nodes/node-0/weight", {"weight": 0}),
])
def test_weight_changes_need_the_admin_token(fleet: Any, path: str, body: Any) -> None:
    server, _ = fleet
    answer = httpx.post(server.url + path, json=body, headers={"Authorization": "Bearer no"})
    assert answer.status_code == 401
    assert server.nodes()["node-0"]["weight"] == 1.0
