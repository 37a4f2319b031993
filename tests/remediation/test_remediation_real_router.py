"""The contract test: `ReferenceFleetDriver` and the engine against the real reference router
(`reference_server.create_router_app`) over HTTP, in front of tiny in-process nodes that
answer `/health`; proves the driver reads what the router really answers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from remediation_doubles import ADMIN_TOKEN, SetClock, free_port
from served_app import serve

from remediation import (
    DecisionLog,
    FleetDriverError,
    NodeStatus,
    Outcome,
    ReferenceFleetDriver,
    RemediationEngine,
    RemediationPolicy,
    UnknownNodeError,
)

reference_server = pytest.importorskip("reference_server")


def health_app(name: str) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "name": name, "model": "inferops-tiny", "draining": False,
                "running": 0, "waiting": 0}

    return app


@pytest.fixture
def router_url() -> Iterator[str]:
    """The real router over node-0 and node-1 (answering /health) and node-2 (nothing
    listens), once it has seen node-0 and node-1 healthy."""
    with contextlib.ExitStack() as stack:
        specs = []
        for name in ("node-0", "node-1"):
            url = stack.enter_context(serve(health_app(name)))
            specs.append(reference_server.NodeSpec(name, "127.0.0.1", int(url.rsplit(":", 1)[1])))
        specs.append(reference_server.NodeSpec("node-2", "127.0.0.1", free_port()))
        router = reference_server.Router(specs, admin_token=ADMIN_TOKEN, health_interval_s=0.1,
                                         health_timeout_s=0.5)
        url = stack.enter_context(
            serve(reference_server.create_router_app(router), lifespan="on")
        )
        with ReferenceFleetDriver(url, admin_token=ADMIN_TOKEN) as driver:
            deadline = time.monotonic() + 10
            while [n.healthy for n in driver.nodes()] != [True, True, False]:
                assert time.monotonic() < deadline, "the router never saw node-0, node-1 healthy"
                time.sleep(0.05)
        yield url


@pytest.fixture
def driver(router_url: str) -> Iterator[ReferenceFleetDriver]:
    with ReferenceFleetDriver(router_url, admin_token=ADMIN_TOKEN) as fleet:
        yield fleet


def test_the_driver_reads_the_real_routers_nodes(
    router_url: str, driver: ReferenceFleetDriver
) -> None:
    assert [(n.name, n.status, n.healthy, n.in_flight) for n in driver.nodes()] == [
        ("node-0", NodeStatus.SERVING, True, 0),
        ("node-1", NodeStatus.SERVING, True, 0),
        ("node-2", NodeStatus.DOWN, False, 0),
    ]


def test_the_engine_drains_through_the_real_router_but_never_its_last_healthy_node(
    driver: ReferenceFleetDriver, log: DecisionLog, clock: SetClock
) -> None:
    engine = RemediationEngine(driver, log, RemediationPolicy(rules=()), clock=clock,
                               verify_timeout_s=5.0)

    first = engine.execute("drain", "node-0", actor="cli:oncall", reason="maintenance")
    second = engine.execute("drain", "node-1", actor="cli:oncall", reason="maintenance")
    back = engine.execute("undrain", "node-0", actor="cli:oncall", reason="done")

    assert [(d.outcome, d.guard, d.reason) for d in (first, second, back)] == [
        (Outcome.SUCCEEDED, None, "maintenance: node-0 is now drained"),
        (Outcome.REFUSED, "disruption-budget",
         "maintenance: draining node-1 would leave 0 nodes serving and healthy (none); the "
         "disruption budget needs at least 1"),
        (Outcome.SUCCEEDED, None, "done: node-0 is now serving and healthy"),
    ]
    assert [n.status for n in driver.nodes()] == [
        NodeStatus.SERVING, NodeStatus.SERVING, NodeStatus.DOWN
    ]


def test_the_real_routers_unknown_node_answer_gives_the_known_names(
    driver: ReferenceFleetDriver,
) -> None:
    with pytest.raises(UnknownNodeError) as raised:
        driver.drain("node-9")
    assert str(raised.value) == "unknown node 'node-9'; known: node-0, node-1, node-2"
    assert raised.value.known == ("node-0", "node-1", "node-2")


def test_the_real_routers_refusals_are_driver_errors_that_say_what_came(
    router_url: str, driver: ReferenceFleetDriver
) -> None:
    with (
        ReferenceFleetDriver(router_url, admin_token="wrong") as intruder,
        pytest.raises(FleetDriverError) as refused,
    ):
        intruder.nodes()
    with pytest.raises(FleetDriverError) as no_supervisor:
        driver.cycle("node-1")

    assert str(refused.value) == (
        f"the fleet router at {router_url} refused the admin token (GET /admin/nodes "
        "answered 401)"
    )
    assert type(no_supervisor.value) is FleetDriverError
    assert str(no_supervisor.value).startswith(
        f"the fleet router at {router_url} answered POST /admin/nodes/node-1/cycle with 501: "
    )


def test_a_reroute_sets_the_nodes_weight_on_the_real_router(
    router_url: str, driver: ReferenceFleetDriver, log: DecisionLog, clock: SetClock
) -> None:
    engine = RemediationEngine(driver, log, RemediationPolicy(rules=()), clock=clock)
    decision = engine.execute("reroute", "node-1", actor="cli:oncall", reason="shift traffic",
                              params={"weight": "0"})

    assert (decision.outcome, decision.params, decision.reason) == (
        Outcome.SUCCEEDED, {"weight": "0"}, "shift traffic: routing weight of node-1 set to 0")
    answer = httpx.get(f"{router_url}/admin/nodes", timeout=5.0,
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert [(n["name"], n["weight"]) for n in answer["nodes"]] == [
        ("node-0", 1.0), ("node-1", 0.0), ("node-2", 1.0)]
    with pytest.raises(UnknownNodeError):
        driver.set_weight("node-9", 0.5)
