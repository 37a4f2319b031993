"""`run_fleet` as a process: stand-in nodes behind the router, stopped by a signal with no
orphan left, and clear non-zero exits when it cannot start (nothing left running)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _router_support import AUTH, CLIENT, TOKEN, completion, free_port_block, wait_until

TESTS_DIR = Path(__file__).parent

SCRIPT = f"""
import os, sys
sys.path.insert(0, {str(TESTS_DIR)!r})
from _router_support import standin_argv
from reference_server import FleetConfig, ReferenceServerError, run_fleet
extra = sys.argv[3:]
try:
    run_fleet(
        FleetConfig(nodes=int(sys.argv[1]), port=int(sys.argv[2]),
                    admin_token=os.environ["INFEROPS_ADMIN_TOKEN"], health_interval_s=0.25,
                    node_start_timeout_s=20, stop_grace_s=3),
        node_command=lambda spec: standin_argv(spec, *extra),
    )
except ReferenceServerError as error:
    print(f"error: {{error}}", file=sys.stderr)
    sys.exit(2)
"""


class Fleet:
    def __init__(self, tmp_path: Path, nodes: int, port: int, *extra: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = tmp_path / "fleet.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(nodes), str(port), *extra],
            env={**os.environ, "INFEROPS_ADMIN_TOKEN": TOKEN},
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def healthy_nodes(self) -> int:
        try:
            return int(CLIENT.get(f"{self.url}/health", timeout=1.0).json()["healthy_nodes"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    fleets: list[Fleet] = []

    def start(nodes: int, port: int, *extra: str) -> Fleet:
        fleet = Fleet(tmp_path, nodes, port, *extra)
        fleets.append(fleet)
        return fleet

    yield start
    for fleet in fleets:
        fleet.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_fleet_serves_then_stops_every_node_on_a_signal(start: object,
                                                            signum: signal.Signals) -> None:
    port = free_port_block(3)
    fleet = start(2, port)  # type: ignore[operator]
    wait_until(lambda: fleet.healthy_nodes() == 2 or fleet.process.poll() is not None, 30,
               "2 healthy nodes")
    assert fleet.healthy_nodes() == 2, fleet.output
    wait_until(lambda: "Fleet ready" in fleet.output, 5, "the ready line")
    output = fleet.output
    assert f"Router listening on http://127.0.0.1:{port}" in output
    for i in range(2):
        assert f"node-{i} serving on http://127.0.0.1:{port + 1 + i} (pid " in output
        assert f"[node-{i}] node-{i}: stand-in node on 127.0.0.1:{port + 1 + i}" in output
    assert TOKEN not in output

    answer = CLIENT.post(f"{fleet.url}/v1/completions", json=completion())
    assert answer.status_code == 200
    nodes = CLIENT.get(f"{fleet.url}/admin/nodes", headers=AUTH).json()["nodes"]
    pids = [int(CLIENT.get(f"{n['url']}/_test/stats").json()["pid"]) for n in nodes]

    fleet.process.send_signal(signum)
    assert fleet.process.wait(20) == 0, fleet.output
    assert not any(alive(pid) for pid in pids), "a node outlived the fleet"
    assert f"Fleet stopped ({signum.name}); all nodes stopped" in fleet.output


def test_a_taken_router_port_fails_before_any_node_starts(start: object) -> None:
    port = free_port_block(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        fleet = start(2, port)  # type: ignore[operator]
        assert fleet.process.wait(30) == 2
    assert f"error: the router cannot listen on 127.0.0.1:{port}" in fleet.output
    assert "[node-" not in fleet.output  # no node was started


def test_a_taken_node_port_fails_naming_the_node(start: object) -> None:
    port = free_port_block(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 2))
        taken.listen()
        fleet = start(2, port)  # type: ignore[operator]
        assert fleet.process.wait(30) == 2
    assert f"error: node-1 cannot listen on 127.0.0.1:{port + 2}" in fleet.output
    assert "[node-" not in fleet.output


def test_a_fleet_whose_nodes_all_die_while_starting_exits_non_zero(start: object) -> None:
    port = free_port_block(3)
    fleet = start(2, port, "--exit-code", "3")  # type: ignore[operator]
    assert fleet.process.wait(30) == 2, fleet.output
    assert ("error: every node exited while starting (node-0: exit code 3, node-1: exit code 3)"
            in fleet.output)
    assert "[node-0] node-0: exiting with code 3 as asked" in fleet.output
    with pytest.raises(httpx.ConnectError):
        CLIENT.get(f"http://127.0.0.1:{port}/health")
