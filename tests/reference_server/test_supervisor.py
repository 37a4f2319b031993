"""`NodeSupervisor`: real child processes started, prefixed, stopped, never auto-restarted."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _router_support import TOKEN, answers_200, free_port_block, standin_argv, wait_until

from reference_server import (
    FleetConfig,
    NodeSpec,
    NodeSupervisor,
    SupervisorError,
    UnknownNodeError,
    node_command,
)


class Output(io.StringIO):
    """What the children printed, as the supervisor relayed it (from its pump threads)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)


@pytest.fixture
def specs() -> list[NodeSpec]:
    base = free_port_block(2)
    return [NodeSpec(f"node-{i}", "127.0.0.1", base + i) for i in range(2)]


@pytest.fixture
def output() -> Output:
    return Output()


@pytest.fixture
def supervisor(specs: list[NodeSpec], output: Output) -> Iterator[NodeSupervisor]:
    supervisor = NodeSupervisor(specs, command=standin_argv, admin_token=TOKEN,
                                stop_grace_s=3.0, stdout=output, stderr=output)
    yield supervisor
    supervisor.stop_all()


def wait_serving(spec: NodeSpec) -> None:
    wait_until(lambda: answers_200(f"{spec.url}/health"), 20.0, f"{spec.name} to serve")


def test_nodes_get_the_token_in_their_environment_never_on_argv(
    supervisor: NodeSupervisor, specs: list[NodeSpec], output: Output
) -> None:
    supervisor.start_all()
    for spec in specs:
        wait_serving(spec)
        pid = supervisor.pid(spec.name)
        assert pid is not None and supervisor.running(spec.name)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert TOKEN.encode() not in cmdline
        assert f"INFEROPS_ADMIN_TOKEN={TOKEN}".encode() in environ
    lines = output.getvalue().splitlines()
    for spec in specs:
        prefix = f"[{spec.name}] {spec.name}: stand-in node on"
        assert any(line.startswith(prefix) for line in lines)
    assert TOKEN not in output.getvalue()


def test_a_crashed_node_is_not_restarted(supervisor: NodeSupervisor, specs: list[NodeSpec],
                                         caplog: pytest.LogCaptureFixture) -> None:
    supervisor.start_all()
    wait_serving(specs[1])
    pid = supervisor.pid("node-1")
    assert pid is not None
    os.kill(pid, 9)
    wait_until(lambda: supervisor.exit_code("node-1") is not None, 5.0, "node-1 to exit")
    time.sleep(0.5)
    assert supervisor.exit_code("node-1") == -9
    assert not supervisor.running("node-1")
    assert supervisor.pid("node-1") == pid  # still the dead one: nobody restarted it
    wait_until(lambda: "exited with code -9; it is not restarted" in caplog.text, 3.0, "the log")


def test_restart_gives_a_new_process_that_serves(supervisor: NodeSupervisor,
                                                 specs: list[NodeSpec]) -> None:
    supervisor.start("node-0")
    wait_serving(specs[0])
    first = supervisor.pid("node-0")
    supervisor.start("node-0")  # already running: nothing happens
    assert supervisor.pid("node-0") == first
    supervisor.restart("node-0")
    assert supervisor.pid("node-0") != first
    wait_serving(specs[0])
    assert supervisor.pid("node-1") is None and not supervisor.running("node-1")


def test_a_node_ignoring_sigterm_is_killed_after_the_grace_period(specs: list[NodeSpec]) -> None:
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)"]
    output = Output()
    supervisor = NodeSupervisor(specs[:1], command=lambda spec: stubborn, admin_token=TOKEN,
                                stop_grace_s=0.5, stdout=output, stderr=output)
    supervisor.start("node-0")
    wait_until(lambda: "[node-0] ready" in output.getvalue(), 10.0, "the child to start")
    started = time.monotonic()
    assert supervisor.stop("node-0") == -9
    assert time.monotonic() - started < 3.0


def test_stop_all_stops_every_node_and_refuses_new_starts(
    supervisor: NodeSupervisor, specs: list[NodeSpec]
) -> None:
    supervisor.start_all()
    pids = [supervisor.pid(spec.name) for spec in specs]
    supervisor.stop_all()
    for pid in pids:
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(SupervisorError, match="stopping"):
        supervisor.start("node-0")


def test_unknown_nodes_and_bad_commands_are_clear_errors(specs: list[NodeSpec]) -> None:
    supervisor = NodeSupervisor(specs, command=lambda spec: ["/nonexistent/python"],
                                admin_token=TOKEN)
    with pytest.raises(UnknownNodeError, match="unknown node 'node-5'; known: node-0, node-1"):
        supervisor.start("node-5")
    with pytest.raises(SupervisorError, match="cannot start node-0"):
        supervisor.start("node-0")
    with pytest.raises(SupervisorError, match="admin_token"):
        NodeSupervisor(specs, command=standin_argv, admin_token="")


def test_the_node_command_follows_the_node_contract() -> None:
    config = FleetConfig(nodes=2, port=18000, admin_token="secret-token", gpu_backend="sim",
                         gpu_type="A100-SXM4-80GB", device="cpu")
    argv = node_command(config)(config.node_specs()[1])
    assert argv == [sys.executable, "-m", "reference_server.node", "--name", "node-1",
                    "--host", "127.0.0.1", "--port", "18002", "--gpu-backend", "sim",
                    "--gpu-type", "A100-SXM4-80GB", "--device", "cpu",
                    "--model-name", "inferops-tiny"]
    assert "secret-token" not in " ".join(argv)
