"""Test doubles of the remediation tests, shared by their modules (not collected: no `test_`).

`InMemoryFleet` and its variants implement the `FleetDriver` seam; `StandInRouter` speaks the
reference router's admin contract (CONTRACTS.md) over real HTTP; `webhook` / `alert` build
Alertmanager version-4 bodies on the shape of the recorded Alertmanager 0.25 fixture."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from served_app import serve

from remediation import (
    FleetDriverError,
    NodeState,
    NodeStatus,
    ProfileTable,
    UnknownNodeError,
)

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "tests" / "alerting" / "fixtures"
"""The Alertmanager 0.25 webhook capture, copied from `../shared/fixtures` into the repository."""
ALERTMANAGER_WEBHOOK = FIXTURES / "alertmanager-0.25-webhook.json"
EXAMPLE_POLICY = REPOSITORY / "remediation" / "examples" / "drain-unhealthy-node.yaml"
ADMIN_TOKEN = "test-admin-token"
NODE_NAMES = ("node-0", "node-1", "node-2")


class SetClock:
    """A clock that reads what the test last set; cooldowns are tested without waiting."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


# --- the fleet behind the driver seam -------------------------------------------------------


def serving(name: str) -> NodeState:
    return NodeState(name, NodeStatus.SERVING, healthy=True, in_flight=0)


def node(name: str, status: str, *, healthy: bool = True) -> NodeState:
    return NodeState(name, NodeStatus(status), healthy=healthy, in_flight=0)


class InMemoryFleet:
    """A `FleetDriver` over a dict of node states: drain, undrain and cycle change them the way
    the reference router does, and every call is remembered in `calls`."""

    def __init__(self, states: Sequence[NodeState] | None = None) -> None:
        initial = states if states is not None else [serving(name) for name in NODE_NAMES]
        self.states: dict[str, NodeState] = {state.name: state for state in initial}
        self.calls: list[tuple[str, str]] = []
        self.weights: dict[str, float] = {}
        self.profiles: dict[str, ProfileTable] = {}
        """What `profile` answers, per node (a test sets it)."""

    def nodes(self) -> list[NodeState]:
        return list(self.states.values())

    def drain(self, node: str) -> None:
        self._act("drain", node, NodeStatus.DRAINED, healthy=None)

    def undrain(self, node: str) -> None:
        self._act("undrain", node, NodeStatus.SERVING, healthy=None)

    def cycle(self, node: str) -> None:
        self._act("cycle", node, NodeStatus.SERVING, healthy=True)

    def set_weight(self, node: str, weight: float) -> None:
        self.calls.append((f"weight={weight:g}", node))
        if node not in self.states:
            raise UnknownNodeError(node, list(self.states))
        self.weights[node] = weight

    def profile(self, node: str, seconds: float) -> ProfileTable:
        self.calls.append(("profile", node))
        if node not in self.profiles:
            raise FleetDriverError(f"no profile of {node} in this test fleet")
        return self.profiles[node]

    def status(self, node: str) -> str:
        return str(self.states[node].status)

    def _act(self, action: str, node: str, status: NodeStatus, *, healthy: bool | None) -> None:
        self.calls.append((action, node))
        if node not in self.states:
            raise UnknownNodeError(node, list(self.states))
        state = self.states[node]
        self.states[node] = replace(
            state, status=status, healthy=state.healthy if healthy is None else healthy
        )


class FailingFleet(InMemoryFleet):
    """Reads fine; every action is answered with an error."""

    def _act(self, action: str, node: str, status: NodeStatus, *, healthy: bool | None) -> None:
        self.calls.append((action, node))
        raise FleetDriverError(
            f"the fleet router at http://router.test answered POST /admin/nodes/{node}/{action} "
            "with 500: node process did not answer"
        )


class StuckFleet(InMemoryFleet):
    """Accepts every action but the nodes never change: verification must time out."""

    def _act(self, action: str, node: str, status: NodeStatus, *, healthy: bool | None) -> None:
        self.calls.append((action, node))


class UnreadableFleet(InMemoryFleet):
    """The fleet's node list cannot be read."""

    def nodes(self) -> list[NodeState]:
        raise FleetDriverError("cannot reach the fleet router at http://router.test")


# --- Alertmanager v4 bodies -----------------------------------------------------------------


def webhook(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    """The Alertmanager 0.25 fixture with its alerts replaced by `alerts`."""
    body: dict[str, Any] = json.loads(ALERTMANAGER_WEBHOOK.read_text(encoding="utf-8"))
    body["status"] = status
    body["alerts"] = list(alerts)
    return body


def alert(
    alertname: str,
    *,
    status: str = "firing",
    fingerprint: str | None = "8e9b249c8f3b53af",
    **labels: str,
) -> dict[str, Any]:
    """One alert of a webhook body, shaped as the fixture's."""
    template: dict[str, Any] = json.loads(ALERTMANAGER_WEBHOOK.read_text(encoding="utf-8"))
    one: dict[str, Any] = dict(template["alerts"][0])
    one["status"] = status
    one["labels"] = {"alertname": alertname, "severity": "page", **labels}
    if fingerprint is None:
        one.pop("fingerprint")
    else:
        one["fingerprint"] = fingerprint
    return one


# --- a stand-in router that speaks the router admin contract (CONTRACTS.md) ----------------


@dataclass
class StandInRouter:
    """The router admin API over real HTTP on 127.0.0.1; the test reads and sets its state."""

    token: str = ADMIN_TOKEN
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    delay_s: float = 0.0
    """Every answer waits this long (to test the driver's timeouts)."""
    cycle_delay_s: float = 0.0
    """`cycle` waits this long before answering, as the real router waits for the restart."""
    fail_with: tuple[int, dict[str, Any]] | None = None
    """When set, every admin request is answered with this status and body."""
    seen: list[str] = field(default_factory=list)
    url: str = ""

    def reset(self) -> None:
        self.nodes = {
            name: {
                "name": name, "status": "serving", "healthy": True, "in_flight": 0,
                "url": f"http://127.0.0.1:{18001 + index}",
            }
            for index, name in enumerate(NODE_NAMES)
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        def refused(request: Request) -> JSONResponse | None:
            self.seen.append(f"{request.method} {request.url.path}")
            if self.delay_s:
                time.sleep(self.delay_s)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "invalid or missing admin token", "invalid_request_error")
            if self.fail_with is not None:
                status, body = self.fail_with
                return JSONResponse(body, status_code=status)
            return None

        @app.get("/admin/nodes")
        def list_nodes(request: Request) -> Any:
            return refused(request) or {"nodes": list(self.nodes.values())}

        @app.post("/admin/nodes/{name}/{action}")
        def act(name: str, action: str, request: Request) -> Any:
            answer = refused(request)
            if answer is not None:
                return answer
            if name not in self.nodes:
                return _error(
                    404, f"unknown node {name!r}; known: {', '.join(self.nodes)}",
                    "not_found_error",
                )
            state = self.nodes[name]
            if action == "drain":
                state["status"] = "drained"
            elif action == "undrain":
                state["status"] = "serving"
            elif action == "cycle":
                time.sleep(self.cycle_delay_s)
                state.update(status="serving", healthy=True)
            else:
                return _error(404, f"no admin action {action!r}", "not_found_error")
            return {"node": state}

        return app


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}},
        status_code=status,
    )


def serve_stand_in_router() -> Iterator[StandInRouter]:
    """A stand-in router served on a free port; stopped when the generator is closed."""
    stand_in = StandInRouter()
    stand_in.reset()
    with serve(stand_in.app()) as url:
        stand_in.url = url
        yield stand_in


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
