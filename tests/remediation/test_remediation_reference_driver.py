"""`ReferenceFleetDriver` against a stand-in router that speaks the router admin contract
over real HTTP on 127.0.0.1: reads, actions, and every way the router can say no."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from remediation_doubles import (
    ADMIN_TOKEN,
    EXAMPLE_POLICY,
    SetClock,
    StandInRouter,
    alert,
    free_port,
    webhook,
)

from remediation import (
    DecisionLog,
    FleetDriverError,
    NodeState,
    NodeStatus,
    Outcome,
    ReferenceFleetDriver,
    RemediationEngine,
    UnknownNodeError,
    load_remediation_policy,
)


@pytest.fixture
def driver(router: StandInRouter) -> Iterator[ReferenceFleetDriver]:
    with ReferenceFleetDriver(router.url, admin_token=ADMIN_TOKEN, timeout_s=2.0) as fleet:
        yield fleet


def _call(driver: ReferenceFleetDriver, call: str) -> object:
    """`driver.nodes()`, or the action `call` on node-1."""
    return driver.nodes() if call == "nodes" else getattr(driver, call)("node-1")


def _error(message: str, kind: str = "server_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def test_nodes_reads_every_node_of_the_router(driver: ReferenceFleetDriver) -> None:
    assert driver.nodes() == [
        NodeState("node-0", NodeStatus.SERVING, healthy=True, in_flight=0,
                  url="http://127.0.0.1:18001"),
        NodeState("node-1", NodeStatus.SERVING, healthy=True, in_flight=0,
                  url="http://127.0.0.1:18002"),
        NodeState("node-2", NodeStatus.SERVING, healthy=True, in_flight=0,
                  url="http://127.0.0.1:18003"),
    ]


def test_every_status_of_the_contract_reads_as_a_node_status(
    router: StandInRouter, driver: ReferenceFleetDriver
) -> None:
    router.nodes["node-0"].update(status="draining", in_flight=3)
    router.nodes["node-1"].update(status="drained")
    router.nodes["node-2"].update(status="down", healthy=False)

    assert [(n.status, n.healthy, n.in_flight) for n in driver.nodes()] == [
        (NodeStatus.DRAINING, True, 3),
        (NodeStatus.DRAINED, True, 0),
        (NodeStatus.DOWN, False, 0),
    ]


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [("drain", "serving", "drained"), ("undrain", "drained", "serving"),
     ("cycle", "down", "serving")],
    ids=["drain", "undrain", "cycle"],
)
def test_each_action_posts_to_the_node_admin_path_with_the_token(
    router: StandInRouter, driver: ReferenceFleetDriver, action: str, before: str, after: str
) -> None:
    router.nodes["node-1"]["status"] = before

    getattr(driver, action)("node-1")

    assert router.nodes["node-1"]["status"] == after
    assert router.seen == [f"POST /admin/nodes/node-1/{action}"]


@pytest.mark.parametrize("action", ["drain", "undrain", "cycle"])
def test_an_unknown_node_is_raised_with_the_names_the_router_knows(
    driver: ReferenceFleetDriver, action: str
) -> None:
    with pytest.raises(UnknownNodeError) as raised:
        getattr(driver, action)("node-9")
    assert str(raised.value) == "unknown node 'node-9'; known: node-0, node-1, node-2"
    assert (raised.value.node, raised.value.known) == ("node-9", ("node-0", "node-1", "node-2"))


def test_a_node_name_is_sent_as_one_path_segment(
    router: StandInRouter, driver: ReferenceFleetDriver
) -> None:
    with pytest.raises(UnknownNodeError) as raised:
        driver.drain("node 9")
    assert str(raised.value) == "unknown node 'node 9'; known: node-0, node-1, node-2"


def test_a_router_without_nodes_gives_no_known_names(
    router: StandInRouter, driver: ReferenceFleetDriver
) -> None:
    router.fail_with = (404, _error("unknown node 'node-1'; known: (none)", "not_found_error"))
    with pytest.raises(UnknownNodeError) as raised:
        driver.drain("node-1")
    assert raised.value.known == ()


@pytest.mark.parametrize(
    ("call", "what"),
    [("nodes", "GET /admin/nodes"), ("drain", "POST /admin/nodes/node-1/drain")],
    ids=["reading the nodes", "draining a node"],
)
def test_a_wrong_admin_token_is_a_driver_error_naming_the_router(
    router: StandInRouter, call: str, what: str
) -> None:
    with (
        ReferenceFleetDriver(router.url, admin_token="wrong") as driver,
        pytest.raises(FleetDriverError) as raised,
    ):
        _call(driver, call)
    assert type(raised.value) is FleetDriverError
    assert str(raised.value) == (
        f"the fleet router at {router.url} refused the admin token ({what} answered 401)"
    )
    assert router.nodes["node-1"]["status"] == "serving"


@pytest.mark.parametrize(
    ("call", "what"),
    [("nodes", "GET /admin/nodes"), ("drain", "POST /admin/nodes/node-1/drain")],
    ids=["reading the nodes", "draining a node"],
)
def test_a_router_that_does_not_answer_in_time_is_a_driver_error_naming_it(
    router: StandInRouter, call: str, what: str
) -> None:
    router.delay_s = 0.6
    with (
        ReferenceFleetDriver(router.url, admin_token=ADMIN_TOKEN, timeout_s=0.2) as driver,
        pytest.raises(FleetDriverError) as raised,
    ):
        _call(driver, call)
    assert str(raised.value) == (
        f"the fleet router at {router.url} did not answer {what} within 0.2 s"
    )


def test_a_cycle_waits_for_the_restart_longer_than_other_calls(router: StandInRouter) -> None:
    router.cycle_delay_s = 0.5
    router.nodes["node-1"].update(status="down", healthy=False)
    with ReferenceFleetDriver(
        router.url, admin_token=ADMIN_TOKEN, timeout_s=0.2, cycle_timeout_s=5.0
    ) as driver:
        driver.cycle("node-1")
    assert (router.nodes["node-1"]["status"], router.nodes["node-1"]["healthy"]) == (
        "serving", True
    )


def test_a_cycle_that_outlasts_its_own_timeout_is_a_driver_error(router: StandInRouter) -> None:
    router.cycle_delay_s = 0.6
    with (
        ReferenceFleetDriver(
            router.url, admin_token=ADMIN_TOKEN, timeout_s=5.0, cycle_timeout_s=0.2
        ) as driver,
        pytest.raises(FleetDriverError) as raised,
    ):
        driver.cycle("node-1")
    assert str(raised.value) == (
        f"the fleet router at {router.url} did not answer POST /admin/nodes/node-1/cycle "
        "within 0.2 s"
    )


def test_a_router_that_is_not_running_is_a_driver_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        ReferenceFleetDriver(url, admin_token=ADMIN_TOKEN, timeout_s=2.0) as driver,
        pytest.raises(FleetDriverError) as raised,
    ):
        driver.nodes()
    assert str(raised.value).startswith(
        f"cannot reach the fleet router at {url} (GET /admin/nodes): "
    )


@pytest.mark.parametrize(
    ("answer", "call", "message"),
    [
        ((500, _error("node-1 did not answer the drain")), "drain",
         "the fleet router at {url} answered POST /admin/nodes/node-1/drain with 500: "
         "node-1 did not answer the drain"),
        ((503, {"detail": "overloaded"}), "nodes",
         'the fleet router at {url} answered GET /admin/nodes with 503: {{"detail":"overloaded"}}'),
        ((200, {"items": []}), "nodes",
         "the fleet router at {url} answered GET /admin/nodes without a 'nodes' list"),
        ((200, {"nodes": [{"name": "node-0", "status": "rebooting", "healthy": True,
                           "in_flight": 0}]}), "nodes",
         "the fleet router at {url} answered GET /admin/nodes with a node this driver cannot "
         "read: {{'name': 'node-0', 'status': 'rebooting', 'healthy': True, 'in_flight': 0}}"),
        ((200, {"nodes": ["node-0"]}), "nodes",
         "the fleet router at {url} answered GET /admin/nodes with a node this driver cannot "
         "read: 'node-0'"),
        ((200, {"ok": True}), "undrain",
         "the fleet router at {url} answered POST /admin/nodes/node-1/undrain with a node this "
         "driver cannot read: None"),
        ((200, ["not", "a", "mapping"]), "nodes",
         "the fleet router at {url} answered GET /admin/nodes with a body that is not JSON"),
    ],
    ids=[
        "a server error with the router's message",
        "an error without the router's error shape",
        "a node list without nodes",
        "a node status outside the contract",
        "a node that is not an object",
        "an action answered without the node",
        "a body that is not a JSON object",
    ],
)
def test_an_answer_outside_the_contract_is_a_driver_error_that_says_what_came(
    router: StandInRouter, driver: ReferenceFleetDriver,
    answer: tuple[int, dict[str, Any]], call: str, message: str,
) -> None:
    router.fail_with = answer
    with pytest.raises(FleetDriverError) as raised:
        _call(driver, call)
    assert type(raised.value) is FleetDriverError
    assert str(raised.value) == message.format(url=router.url)


def test_a_url_that_is_not_the_router_is_not_mistaken_for_an_unknown_node(
    router: StandInRouter,
) -> None:
    url = f"{router.url}/not-the-router"
    with (
        ReferenceFleetDriver(url, admin_token=ADMIN_TOKEN) as driver,
        pytest.raises(FleetDriverError) as raised,
    ):
        driver.drain("node-1")
    assert type(raised.value) is FleetDriverError
    assert str(raised.value) == (
        f'the fleet router at {url} answered POST /admin/nodes/node-1/drain with 404: '
        '{"detail":"Not Found"}'
    )


def test_a_404_in_the_error_shape_that_names_no_node_is_not_an_unknown_node(
    router: StandInRouter, driver: ReferenceFleetDriver
) -> None:
    router.fail_with = (404, _error("Not Found", "not_found_error"))
    with pytest.raises(FleetDriverError) as raised:
        driver.undrain("node-1")
    assert type(raised.value) is FleetDriverError
    assert str(raised.value) == (
        f"the fleet router at {router.url} answered POST /admin/nodes/node-1/undrain with "
        "404: Not Found"
    )


def test_an_empty_admin_token_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="admin_token must not be empty"):
        ReferenceFleetDriver("http://127.0.0.1:8000", admin_token="")


def test_the_driver_shows_its_router_but_never_its_token() -> None:
    driver = ReferenceFleetDriver("http://127.0.0.1:8000/", admin_token=ADMIN_TOKEN)
    try:
        assert repr(driver) == "ReferenceFleetDriver('http://127.0.0.1:8000')"
    finally:
        driver.close()


def test_an_alert_drains_a_node_of_the_router_end_to_end(
    router: StandInRouter, driver: ReferenceFleetDriver, log: DecisionLog, clock: SetClock
) -> None:
    engine = RemediationEngine(
        driver, log, load_remediation_policy(EXAMPLE_POLICY), clock=clock, verify_timeout_s=2.0
    )

    decisions = engine.handle_notification(
        webhook(alert("NodeHighErrorRate", node="node-1"), alert("NodeDown", node="node-7"))
    )

    assert [(d.node, d.outcome, d.guard, d.reason) for d in decisions] == [
        ("node-1", Outcome.SUCCEEDED, None,
         "alert NodeHighErrorRate fired for node-1 (policy drain-unhealthy-node): "
         "node-1 is now drained"),
        ("node-7", Outcome.REFUSED, "unknown-node",
         "alert NodeDown fired for node-7 (policy drain-unhealthy-node): unknown node "
         "'node-7'; known: node-0, node-1, node-2"),
    ]
    assert [state["status"] for state in router.nodes.values()] == [
        "serving", "drained", "serving"
    ]
    assert router.seen == [
        "GET /admin/nodes", "POST /admin/nodes/node-1/drain", "GET /admin/nodes",
        "GET /admin/nodes",
    ]
