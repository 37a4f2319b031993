"""`run_fleet`: node processes, the router in front of them, and a clean stop.

Nothing is started before every port the fleet needs was found free, and whatever was
started is stopped on the way out, however the way out is taken (a signal, a router
that failed, every node dying while starting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import uvicorn

from ._config import FleetConfig, NodeSpec
from ._exceptions import FleetStartError
from ._router import Router
from ._router_app import create_router_app
from ._supervisor import NodeCommand, NodeSupervisor
from ._supervisor import node_command as default_node_command
from ._tracing import TracingConfig, build_tracer_provider

ROUTER_GRACEFUL_SHUTDOWN_S = 2
"""How long open connections to the router may finish once the fleet is told to stop."""


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: the fleet owns SIGINT and SIGTERM so that
    the nodes are always stopped after the router (uvicorn would re-raise the signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _StopSignals:
    """SIGINT/SIGTERM ask the router to stop (a second one: at once). Only a flag is set,
    never an exception raised, so no start or stop is ever interrupted half-way."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.server: uvicorn.Server | None = None
        self.supervisor: NodeSupervisor | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _: FrameType | None) -> None:
        again = self.received is not None
        self.received = signum
        if self.supervisor is not None:
            self.supervisor.expect_exit()
        if self.server is not None:
            self.server.should_exit = True
            if again:
                self.server.force_exit = True


def run_fleet(
    config: FleetConfig,
    *,
    node_command: NodeCommand | None = None,
    out: Callable[[str], None] | None = None,
) -> None:
    """Start `config.nodes` node processes and the router; block until SIGINT or SIGTERM;
    stop the router, then every node. Raises `FleetStartError` (nothing left running) when
    a port is taken or every node died while starting. `node_command` replaces
    `python -m reference_server.node ...` (tests, other node implementations)."""
    say = out or _say
    sock = _listen(config.host, config.port)
    try:
        for spec in config.node_specs():
            _check_free(spec)
        supervisor = NodeSupervisor.for_config(
            config, command=node_command or _traced_node_command(config))
        _quiet_http_client_logs()
        with _StopSignals() as stop:
            stop.supervisor = supervisor
            try:
                supervisor.start_all()
                asyncio.run(_serve(config, supervisor, sock, stop, say))
            finally:
                supervisor.stop_all()
        if stop.received is not None:
            say(f"Fleet stopped ({signal.Signals(stop.received).name}); all nodes stopped")
    finally:
        sock.close()


async def _serve(config: FleetConfig, supervisor: NodeSupervisor, sock: socket.socket,
                 stop: _StopSignals, say: Callable[[str], None]) -> None:
    provider = build_tracer_provider(TracingConfig(
        "router", config.otlp_endpoint, config.trace_sample_ratio,
        resource_attributes={"inferops.model_name": config.model_name}))
    router = Router.for_config(config, controller=supervisor, tracer_provider=provider)
    server = _Server(uvicorn.Config(
        create_router_app(router), host=config.host, port=config.port, log_level="warning",
        access_log=False, lifespan="on", timeout_graceful_shutdown=ROUTER_GRACEFUL_SHUTDOWN_S,
    ))
    stop.server = server
    if stop.received is not None:
        if provider is not None:
            provider.shutdown()
        return
    monitor = asyncio.create_task(_announce(config, router, supervisor, server, say))
    try:
        await server.serve(sockets=[sock])
    finally:
        monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await monitor
        if provider is not None:  # flush the batched spans
            await asyncio.to_thread(provider.shutdown)
    if not server.started:
        raise FleetStartError(f"the router did not start on {config.router_url}")


async def _announce(config: FleetConfig, router: Router, supervisor: NodeSupervisor,
                    server: uvicorn.Server, say: Callable[[str], None]) -> None:
    """Say when the router listens and when each node first serves; fail the fleet when
    every node process exited before any became healthy."""
    while not server.started:
        await asyncio.sleep(0.05)
    say(f"Router listening on {config.router_url}; starting {config.nodes} node(s) "
        f"(admin API at {config.router_url}/admin/nodes, bearer token)")
    announced: set[str] = set()
    deadline = time.monotonic() + config.node_start_timeout_s
    try:
        while len(announced) < config.nodes:
            for node in router.pool.nodes:
                if node.ever_healthy and node.name not in announced:
                    announced.add(node.name)
                    say(f"{node.name} serving on {node.url} (pid {supervisor.pid(node.name)})")
            codes = {name: supervisor.exit_code(name) for name in supervisor.names}
            if not announced and all(code is not None for code in codes.values()):
                raise FleetStartError(
                    "every node exited while starting ("
                    + ", ".join(f"{name}: exit code {code}" for name, code in codes.items())
                    + "); their output is above, prefixed with their names")
            if time.monotonic() > deadline:
                missing = [n.name for n in router.pool.nodes if n.name not in announced]
                say(f"Fleet up with {len(announced)} of {config.nodes} nodes serving; not healthy "
                    f"after {config.node_start_timeout_s:g} s: {', '.join(missing)}")
                return
            await asyncio.sleep(0.1)
        say(f"Fleet ready: router {config.router_url} in front of {config.nodes} node(s)")
    except FleetStartError:
        server.should_exit = True
        raise


def _traced_node_command(config: FleetConfig) -> NodeCommand | None:
    """The default node command plus the fleet's tracing flags (None: no tracing, the
    supervisor's default command as it is)."""
    if config.otlp_endpoint is None:
        return None
    plain = default_node_command(config)
    endpoint, ratio = config.otlp_endpoint, str(config.trace_sample_ratio)

    def argv(spec: NodeSpec) -> list[str]:
        return [*plain(spec), "--otlp-endpoint", endpoint, "--trace-sample-ratio", ratio]

    return argv


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise FleetStartError(
            f"the router cannot listen on {host}:{port}: {error.strerror or error} "
            "(is another fleet running? choose another --port)") from None
    sock.set_inheritable(False)
    return sock


def _check_free(spec: NodeSpec) -> None:
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((spec.host, spec.port))
        except OSError as error:
            raise FleetStartError(
                f"{spec.name} cannot listen on {spec.host}:{spec.port}: "
                f"{error.strerror or error} (nodes listen on the ports right after the "
                "router's; choose another --port)") from None


def _quiet_http_client_logs() -> None:
    """httpx logs every request at INFO: twice a second per node from the health checks."""
    for name in ("httpx", "httpcore"):
        library = logging.getLogger(name)
        if library.level == logging.NOTSET:
            library.setLevel(logging.WARNING)


def _say(line: str) -> None:
    print(line, flush=True)
