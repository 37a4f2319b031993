"""Node processes: start, stop, restart, never restarted behind the control plane's back.

Each node is a child process in the fleet's process group (so whoever stops the fleet's
group stops the nodes too). Its output is copied line by line to the fleet's stdout and
stderr, each line prefixed with `[node-i]`. The admin token reaches a child through its
environment only, never its argv. A node that crashes stays down until someone restarts
it (`cycle`): a crash must be visible to the control plane.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Protocol

from ._config import FleetConfig, NodeSpec
from ._exceptions import SupervisorError, UnknownNodeError

logger = logging.getLogger("reference_server.supervisor")

ADMIN_TOKEN_ENV = "INFEROPS_ADMIN_TOKEN"

NodeCommand = Callable[[NodeSpec], Sequence[str]]
"""The argv that starts one node."""


class NodeController(Protocol):
    """What the router needs to cycle a node: restart its process and see whether it lives."""

    def restart(self, name: str) -> None: ...

    def exit_code(self, name: str) -> int | None: ...


def node_command(config: FleetConfig) -> NodeCommand:
    """`python -m reference_server.node ...` with the fleet's settings (no token on argv)."""

    def argv(spec: NodeSpec) -> list[str]:
        return [
            sys.executable, "-m", "reference_server.node",
            "--name", spec.name, "--host", spec.host, "--port", str(spec.port),
            "--gpu-backend", config.gpu_backend, "--gpu-type", config.gpu_type,
            "--device", config.device, "--model-name", config.model_name,
        ]

    return argv


class _Child:
    def __init__(self, process: subprocess.Popen[bytes], pumps: list[threading.Thread]) -> None:
        self.process = process
        self.pumps = pumps
        self.stopping = False


class NodeSupervisor:
    """Starts and stops one process per `NodeSpec`. Thread-safe; every call blocks until
    done. `stop` sends SIGTERM, then SIGKILL after `stop_grace_s`."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        *,
        command: NodeCommand,
        admin_token: str,
        env: Mapping[str, str] | None = None,
        stop_grace_s: float = 5.0,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        if not admin_token:
            raise SupervisorError("admin_token must not be empty")
        self._specs = {spec.name: spec for spec in nodes}
        self._command = command
        base = dict(os.environ if env is None else env)
        self._env = {**base, ADMIN_TOKEN_ENV: admin_token, "PYTHONUNBUFFERED": "1"}
        self._stop_grace_s = stop_grace_s
        self._stdout = stdout
        self._stderr = stderr
        self._children: dict[str, _Child] = {}
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._exit_expected = False

    @classmethod
    def for_config(
        cls, config: FleetConfig, *, command: NodeCommand | None = None
    ) -> NodeSupervisor:
        return cls(
            config.node_specs(), command=command or node_command(config),
            admin_token=config.admin_token, stop_grace_s=config.stop_grace_s,
        )

    def __repr__(self) -> str:
        return f"NodeSupervisor({', '.join(self._specs)})"

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, name: str) -> NodeSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNodeError(name, list(self._specs)) from None

    def start(self, name: str) -> None:
        """Start the node's process; a no-op when it is already running."""
        spec = self.spec(name)
        with self._lock:
            if self._closed:
                raise SupervisorError(f"cannot start {name}: the supervisor is stopping")
            child = self._children.get(name)
            if child is not None and child.process.poll() is None:
                return
            argv = list(self._command(spec))
            try:
                process = subprocess.Popen(
                    argv, env=self._env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )
            except OSError as error:
                raise SupervisorError(f"cannot start {name} ({argv[0]}): {error}") from error
            assert process.stdout is not None and process.stderr is not None
            new = _Child(process, [])
            for stream, target, watch in ((process.stdout, "stdout", True),
                                          (process.stderr, "stderr", False)):
                pump = threading.Thread(
                    target=self._pump, args=(name, new, stream, target, watch),
                    name=f"{name}-{target}", daemon=True,
                )
                new.pumps.append(pump)
            self._children[name] = new
            for pump in new.pumps:
                pump.start()
            logger.info("started %s (pid %d) on port %d", name, process.pid, spec.port)

    def start_all(self) -> None:
        for name in self._specs:
            self.start(name)

    def running(self, name: str) -> bool:
        return self.exit_code(name) is None and self.pid(name) is not None

    def pid(self, name: str) -> int | None:
        self.spec(name)
        with self._lock:
            child = self._children.get(name)
            return None if child is None else child.process.pid

    def exit_code(self, name: str) -> int | None:
        """None while the process runs (or before it was ever started: see `pid`)."""
        self.spec(name)
        with self._lock:
            child = self._children.get(name)
        return None if child is None else child.process.poll()

    def stop(self, name: str) -> int | None:
        """Stop the node (SIGTERM, SIGKILL after the grace period); its exit code."""
        self.spec(name)
        with self._lock:
            child = self._children.get(name)
            if child is None:
                return None
            child.stopping = True
            self._signal(child, signal.SIGTERM)
        code = self._reap(name, child, time.monotonic() + self._stop_grace_s)
        return code

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def expect_exit(self) -> None:
        """The fleet is stopping: nodes that exit from now on (a terminal's Ctrl-C reaches
        the whole process group) are not reported as crashed. Safe in a signal handler."""
        self._exit_expected = True

    def stop_all(self) -> None:
        """Stop every node at once (used at shutdown); no start is accepted afterwards."""
        with self._lock:
            self._closed = True
            children = list(self._children.items())
            for _, child in children:
                child.stopping = True
                self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_grace_s
        for name, child in children:
            self._reap(name, child, deadline)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _signal(child: _Child, signum: int) -> None:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signum)

    def _reap(self, name: str, child: _Child, deadline: float) -> int | None:
        try:
            code = child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) did not stop within %.0f s; killing it",
                           name, child.process.pid, self._stop_grace_s)
            self._signal(child, signal.SIGKILL)
            code = child.process.wait()
        for pump in child.pumps:
            pump.join(timeout=2.0)
        return code

    def _pump(self, name: str, child: _Child, stream: IO[bytes], target: str, watch: bool) -> None:
        prefix = f"[{name}] "
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._write(target, prefix + line + "\n")
        with contextlib.suppress(OSError):
            stream.close()
        if not watch:
            return
        code = child.process.wait()
        if not (child.stopping or self._exit_expected):
            logger.error("%s (pid %d) exited with code %s; it is not restarted automatically "
                         "(cycle it through the admin API)", name, child.process.pid, code)
        else:
            logger.info("%s (pid %d) stopped (exit code %s)", name, child.process.pid, code)

    def _write(self, target: str, text: str) -> None:
        out = (self._stdout or sys.stdout) if target == "stdout" else (self._stderr or sys.stderr)
        with self._write_lock, contextlib.suppress(ValueError, OSError):
            out.write(text)
            out.flush()
