"""The control plane as its own process (`inferops run`), so a drill can SIGKILL it in the
middle of a remediation and start it again on the same store.

The settings are the game day's own, written to a YAML file with every relative path made
absolute; the store, decisions and alerts are read back through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import yaml

from alerting import AlertStore
from collectors import open_database
from remediation import DecisionLog
from slo import SloSpec, load_slo_specs

from ._control_plane import ControlPlane
from ._exceptions import DemoError
from ._processes import ChildProcess, inferops_argv
from ._settings import Settings

_START_TIMEOUT_S = 120.0


def settings_yaml(settings: Settings) -> str:
    """`settings` as a YAML file `inferops run -c` reads back unchanged (absolute paths)."""
    data = settings.model_dump(mode="json", by_alias=True)
    data["slo"]["files"] = [str(settings.resolve(f)) for f in settings.slo.files]
    data["alerting"]["rule_files"] = [str(settings.resolve(f))
                                      for f in settings.alerting.rule_files]
    policy = settings.remediation.policy_file
    data["remediation"]["policy_file"] = None if policy is None else str(settings.resolve(policy))
    windows = settings.burn_rate_windows()
    data["slo"]["windows"] = windows
    return yaml.safe_dump(data, sort_keys=False)


class ControlPlaneProcess:
    """`inferops run -c CONFIG` as a child in its own process group."""

    def __init__(self, settings: Settings, *, run_dir: Path, name: str,
                 env: Mapping[str, str]) -> None:
        self.config_path = run_dir / f"{name}.control-plane.yaml"
        self.config_path.write_text(settings_yaml(settings), encoding="utf-8")
        self._run_dir = run_dir
        self._name = name
        self._env = dict(env)
        self._child: ChildProcess | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self._child = ChildProcess(
            f"control plane ({self._name})",
            inferops_argv("run", "-c", str(self.config_path)),
            log_path=self._run_dir / f"{self._name}.control-plane-{self.starts}.log",
            env=self._env,
        )

    def running(self) -> bool:
        return self._child is not None and self._child.running()

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs, as in a node failure."""
        child = self._child
        if child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait(10)
        child.stop()

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()

    def tail(self) -> str:
        return "" if self._child is None else self._child.tail()


class InProcessPlane:
    """The control plane on this event loop (every drill but the kill drill)."""

    def __init__(self, settings: Settings, *, admin_token: str) -> None:
        self.control_plane = ControlPlane(settings, admin_token=admin_token)
        self.alerts: AlertStore = self.control_plane.alert_store
        self.decisions: DecisionLog = self.control_plane.decisions
        self.objective = availability_objective(self.control_plane.slo_specs)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.control_plane.run(), name="control-plane")

    def problem(self) -> str | None:
        """Why the control plane stopped, while it should be running."""
        if self._task is not None and self._task.done():
            return f"the control plane stopped: {self._task.exception()!r}"
        return None

    async def settle(self) -> None:
        await asyncio.to_thread(self.control_plane.wait_notifications)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.control_plane.close()


class ProcessPlane:
    """The control plane as `inferops run`; read back through its store."""

    def __init__(self, settings: Settings, *, run_dir: Path, name: str,
                 env: Mapping[str, str]) -> None:
        self.process = ControlPlaneProcess(settings, run_dir=run_dir, name=name, env=env)
        self._health_url = f"http://{settings.api.host}:{settings.api.port}/health"
        self._database = open_database(settings.store.url)
        self.alerts = AlertStore(self._database)
        self.decisions = DecisionLog(self._database)
        self.objective = availability_objective(
            [spec for file in settings.slo.files
             for spec in load_slo_specs(settings.resolve(file))])
        self.killed = False

    async def start(self) -> None:
        """Start it and wait for its API: a fresh interpreter imports for a while."""
        self.process.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.process.running():
                    raise DemoError(f"the control plane exited at start:\n{self.process.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self._health_url)).status_code == 200:
                        return
                await asyncio.sleep(0.5)
        raise DemoError(f"the control plane's API did not answer within {_START_TIMEOUT_S:g} s")

    def problem(self) -> str | None:
        if not self.killed and not self.process.running():
            return f"the control plane exited:\n{self.process.tail()}"
        return None

    async def kill_and_restart(self) -> tuple[float, float]:
        """SIGKILL, then start again one second later; (killed_at, restarted_at)."""
        self.killed = True
        await asyncio.to_thread(self.process.kill)
        killed_at = time.time()
        await asyncio.sleep(1.0)
        restarted_at = time.time()
        await self.start()
        self.killed = False
        return killed_at, restarted_at

    async def settle(self) -> None:
        await asyncio.sleep(2.0)  # its background notifiers finish on their own threads

    async def close(self) -> None:
        await asyncio.to_thread(self.process.stop)
        self._database.dispose()


def availability_objective(specs: Sequence[SloSpec]) -> float:
    """The availability SLO's objective (the error budget is 1 - it); 0.99 without one."""
    for spec in specs:
        if "availability" in spec.name:
            return spec.objective
    return 0.99
