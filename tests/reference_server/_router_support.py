"""Shared helpers of the router, supervisor and fleet tests: free ports, stand-in node
processes, and a router served by uvicorn in a background thread."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from reference_server import NodeSpec, NodeSupervisor, Router, create_router_app

STANDIN = Path(__file__).with_name("_standin_node.py")
TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLIENT = httpx.Client(timeout=10.0, trust_env=False)
"""Shared by the polling helpers: a client per poll costs more CPU than the poll."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int) -> int:
    """P such that P..P+count-1 are free (a random start, retried)."""
    for _ in range(200):
        base = free_port()
        if base + count > 65000:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no block of {count} free ports")


def standin_argv(spec: NodeSpec, *extra: str) -> list[str]:
    return [sys.executable, str(STANDIN), "--name", spec.name, "--host", spec.host,
            "--port", str(spec.port), *extra]


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def answers_200(url: str) -> bool:
    try:
        return CLIENT.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


class StandinNode:
    """One stand-in node process."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.process = subprocess.Popen(
            standin_argv(spec), env={**os.environ, "INFEROPS_ADMIN_TOKEN": TOKEN},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return self.spec.url

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        wait_until(lambda: answers_200(f"{self.url}/health") or self.process.poll() is not None,
                   timeout_s, f"{self.spec.name} to start")
        assert self.process.poll() is None, f"{self.spec.name} exited"

    def stats(self) -> dict[str, Any]:
        return dict(CLIENT.get(f"{self.url}/_test/stats", timeout=2.0).json())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def standin_nodes(count: int) -> Iterator[list[StandinNode]]:
    base = free_port_block(count)
    nodes = [StandinNode(NodeSpec(f"node-{i}", "127.0.0.1", base + i)) for i in range(count)]
    try:
        for node in nodes:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


class RouterServer:
    """A `Router` served by uvicorn on a free port, in a thread of the test process."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_router_app(router), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="router", daemon=True)

    def __enter__(self) -> RouterServer:
        self.thread.start()
        wait_until(lambda: self.server.started, 10.0, "the router to start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def nodes(self) -> dict[str, dict[str, Any]]:
        answer = CLIENT.get(f"{self.url}/admin/nodes", headers=AUTH, timeout=5.0)
        assert answer.status_code == 200, answer.text
        return {node["name"]: node for node in answer.json()["nodes"]}

    def wait_status(self, name: str, status: str, timeout_s: float = 5.0) -> None:
        wait_until(lambda: self.nodes()[name]["status"] == status, timeout_s,
                   f"{name} to read {status!r}")


def router_for(nodes: Sequence[StandinNode], **kwargs: Any) -> Router:
    options: dict[str, Any] = {"health_interval_s": 0.25, "health_timeout_s": 0.5} | kwargs
    return Router([node.spec for node in nodes], admin_token=TOKEN, **options)


def completion(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "inferops-tiny", "prompt": "hello", "max_tokens": 3, "stream": stream,
            **extra}


class SupervisedFleet:
    """A router with a supervisor of stand-in node processes (so it can cycle them)."""

    def __init__(self, count: int, **router_options: Any) -> None:
        base = free_port_block(count)
        self.specs = [NodeSpec(f"node-{i}", "127.0.0.1", base + i) for i in range(count)]
        self.extra: dict[str, list[str]] = {spec.name: [] for spec in self.specs}
        self.output = io.StringIO()
        self.supervisor = NodeSupervisor(
            self.specs, command=lambda spec: standin_argv(spec, *self.extra[spec.name]),
            admin_token=TOKEN, stop_grace_s=3.0, stdout=self.output, stderr=self.output,
        )
        options: dict[str, Any] = {"health_interval_s": 0.25, "health_timeout_s": 0.5,
                                   "drain_timeout_s": 5.0, "node_start_timeout_s": 20.0}
        self.router = Router(self.specs, admin_token=TOKEN, controller=self.supervisor,
                             **(options | router_options))
        self.server = RouterServer(self.router)

    def __enter__(self) -> SupervisedFleet:
        self.supervisor.start_all()
        self.server.__enter__()
        wait_until(lambda: all(n["healthy"] for n in self.server.nodes().values()), 20,
                   "every node healthy")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.__exit__()
        self.supervisor.stop_all()

    def cycle(self, name: str, timeout_s: float = 30.0) -> httpx.Response:
        return httpx.post(f"{self.server.url}/admin/nodes/{name}/cycle", headers=AUTH,
                          timeout=timeout_s)


def series(server: RouterServer, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of one metric on the router's /metrics, by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        match = re.fullmatch(r"([^{\s]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")))
            found[labels] = float(match.group(3))
    return found


def count(server: RouterServer, name: str, **labels: str) -> float:
    return series(server, name).get(tuple(sorted(labels.items())), 0.0)
