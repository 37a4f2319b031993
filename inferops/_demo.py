"""`inferops demo`: the whole loop on one machine — fault, alert, remediation, recovery.

It starts the reference fleet and the dashboard as child processes, runs the control plane
and a load generator here, injects one fault into one node after warm-up, prints the
timeline as it happens and writes a JSON report. It exits 0 only when the loop closed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reference_server import ENV_API_KEYS, generate_api_key

from ._control_plane import ControlPlane
from ._demo_report import Timeline, build_report, loop_closed, print_summary
from ._exceptions import DemoError
from ._load import LoadGenerator
from ._processes import ChildProcess, free_port_block, inferops_argv, wait_http_ok
from ._settings import ENV_ADMIN_TOKEN, Settings

logger = logging.getLogger("inferops.demo")

DEFAULTS_DIR = Path(__file__).parent / "defaults"

FAULTS: dict[str, dict[str, Any]] = {
    "error-burst": {"kind": "error-burst", "ratio": 1.0},
    "latency": {"kind": "latency", "seconds": 3.0},
    "crash": {"kind": "crash"},
    "gpu-xid": {"kind": "gpu-xid", "code": 79},
}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    nodes: int = 3
    fault: str = "error-burst"
    duration_s: float = 60.0
    warmup_s: float = 12.0
    report_path: Path | None = None
    dashboard: bool = True
    keep_running: bool = False
    concurrency: int = 4
    work_dir: Path = field(default_factory=lambda: Path(".inferops"))

    def validate(self) -> None:
        if self.fault not in FAULTS:
            raise DemoError(
                f"--fault: unknown fault {self.fault!r}; choose one of {', '.join(FAULTS)}"
            )
        if self.nodes < 2:
            raise DemoError(
                f"--nodes: the demo needs at least 2 nodes to drain one, got {self.nodes}"
            )
        if self.duration_s < self.warmup_s + 20:
            raise DemoError(
                f"--duration: needs at least {self.warmup_s + 20:.0f} s "
                f"(warm-up {self.warmup_s:.0f} s + 20 s to detect and mitigate), "
                f"got {self.duration_s:.0f}"
            )


def demo_settings(*, store_url: str, router_port: int, nodes: int, dashboard_port: int) -> Settings:
    """Settings of the demo's control plane: 1-second scrapes and the demo burn-rate windows."""
    node_targets = [
        {"targets": [f"127.0.0.1:{router_port + 1 + i}"], "labels": {"node": f"node-{i}"}}
        for i in range(nodes)
    ]
    return Settings.model_validate(
        {
            "store": {"url": store_url},
            "global": {"scrape_interval": 1.0, "scrape_timeout": 0.8, "evaluation_interval": 1.0},
            "scrape_configs": [
                {
                    "job_name": "router",
                    "static_configs": [{"targets": [f"127.0.0.1:{router_port}"]}],
                },
                {"job_name": "nodes", "static_configs": node_targets},
            ],
            "slo": {"files": ["fleet-slos.yaml"], "windows": "demo-v1"},
            "alerting": {
                "rule_files": ["node-alerts.yaml"],
                "external_url": f"http://127.0.0.1:{dashboard_port}",
            },
            "remediation": {
                "fleet_url": f"http://127.0.0.1:{router_port}",
                "policy_file": "remediation-policy.yaml",
                "cooldown": 60.0,
                "verify_timeout": 10.0,
                # A few nodes on a busy laptop: a load-induced false positive may drain one
                # node before the fault; the demo still drains the faulty one (never the last).
                "max_unavailable": str(max(1, nodes - 1)),
                "breaker_max_share": 1.0,
            },
            "dashboard": {"port": dashboard_port},
            "base_dir": DEFAULTS_DIR,
        }
    )


class Demo:
    def __init__(self, options: DemoOptions, *, out: Callable[[str], None] = print) -> None:
        options.validate()
        self.options = options
        self.out = out
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = (options.work_dir / "demo" / stamp).resolve()
        self.children: list[ChildProcess] = []

    def admin_token(self) -> str:
        token = os.environ.get(ENV_ADMIN_TOKEN)
        if token:
            self.out(f"Admin token: from ${ENV_ADMIN_TOKEN}")
            return token
        token = secrets.token_urlsafe(24)
        path = self.options.work_dir.resolve() / "admin-token"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(token + "\n", encoding="utf-8")
        self.out(f"Admin token: generated, saved in {path} (mode 600)")
        return token

    def run(self) -> int:
        try:
            return asyncio.run(self._run())
        finally:
            for child in reversed(self.children):
                child.stop()

    async def _run(self) -> int:
        opts = self.options
        self.run_dir.mkdir(parents=True, exist_ok=True)
        token = self.admin_token()
        api_key = generate_api_key()  # the load generator's client key, this run only
        env = {**os.environ, ENV_ADMIN_TOKEN: token, ENV_API_KEYS: api_key,
               "PYTHONUNBUFFERED": "1"}
        port = free_port_block(opts.nodes + 2)
        dashboard_port = port + opts.nodes + 1
        router_url = f"http://127.0.0.1:{port}"
        self.out(
            f"Starting a {opts.nodes}-node reference fleet (logs: {self.run_dir}/fleet.log) ..."
        )
        fleet = ChildProcess(
            "fleet",
            inferops_argv("fleet", "up", "--nodes", str(opts.nodes), "--port", str(port)),
            log_path=self.run_dir / "fleet.log",
            env=env,
        )
        self.children.append(fleet)
        await asyncio.to_thread(self._wait_fleet, fleet, router_url)
        self.out(f"Fleet up: router {router_url}, nodes on ports {port + 1}-{port + opts.nodes}")

        store_url = f"sqlite:///{self.run_dir / 'inferops.db'}"
        settings = demo_settings(
            store_url=store_url, router_port=port, nodes=opts.nodes, dashboard_port=dashboard_port
        )
        control_plane = ControlPlane(settings, admin_token=token)
        if opts.dashboard:
            dashboard = ChildProcess(
                "dashboard",
                inferops_argv(
                    "dashboard",
                    "--store",
                    store_url,
                    "--port",
                    str(dashboard_port),
                ),
                log_path=self.run_dir / "dashboard.log",
                env=env,
            )
            self.children.append(dashboard)
            self.out(f"Dashboard: http://127.0.0.1:{dashboard_port}/")
        try:
            return await self._loop(control_plane, router_url, token, api_key)
        finally:
            control_plane.close()

    def _wait_fleet(self, fleet: ChildProcess, router_url: str) -> None:
        deadline = time.monotonic() + 180
        while True:
            response = wait_http_ok(
                f"{router_url}/health",
                timeout_s=max(1.0, deadline - time.monotonic()),
                child=fleet,
                ready="serve",
            )
            if response.json().get("healthy_nodes") == self.options.nodes:
                return
            if time.monotonic() > deadline:
                raise DemoError(f"only {response.json().get('healthy_nodes')} nodes became healthy")
            time.sleep(0.5)

    async def _loop(
        self, control_plane: ControlPlane, router_url: str, token: str, api_key: str
    ) -> int:
        opts = self.options
        node = "node-1"
        started = time.time()
        timeline = Timeline(self.out, started)
        load = LoadGenerator(router_url, concurrency=opts.concurrency, api_key=api_key)
        tasks = [
            asyncio.create_task(control_plane.run(), name="control-plane"),
            asyncio.create_task(load.run(), name="load"),
            asyncio.create_task(self._watch(control_plane, timeline), name="timeline"),
        ]
        timeline.say(f"control plane and load started ({opts.concurrency} concurrent clients)")
        try:
            await asyncio.sleep(opts.warmup_s)
            injected_at = time.time()
            await asyncio.to_thread(self._inject, router_url, token, node)
            timeline.say(f"FAULT injected  {opts.fault} on {node}", injected_at)
            await self._wait_until(started + opts.duration_s, control_plane, tasks)
            if not opts.keep_running:
                load.stop()
                await asyncio.wait_for(tasks[1], timeout=35)
            await asyncio.to_thread(control_plane.wait_notifications)
            report = build_report(
                fault=opts.fault,
                node=node,
                injected_at_s=injected_at,
                alerts=control_plane.alert_store.recent(1000),
                decisions=control_plane.decisions.recent(1000),
                records=list(load.records),
                slo_statuses=[
                    {
                        "name": s.name,
                        "objective": s.objective,
                        "sli": s.sli_value,
                        "budget_remaining": s.error_budget_remaining,
                    }
                    for s in control_plane.last_slo_statuses
                ],
            )
            closed, why = loop_closed(report, load.records)
            print_summary(self.out, report, closed, why)
            self._write_report(report)
            if opts.keep_running:
                self.out(
                    f"Still running for exploring (router {router_url}); press Ctrl-C to stop."
                )
                await asyncio.Event().wait()
            return 0 if closed else 1
        finally:
            load.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _wait_until(
        self, deadline_s: float, control_plane: ControlPlane, tasks: list[asyncio.Task[Any]]
    ) -> None:
        while time.time() < deadline_s:
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise DemoError(f"{task.get_name()} stopped: {task.exception()!r}")
            if not self.children[0].running():
                raise DemoError(f"the fleet exited; last lines:\n{self.children[0].tail()}")
            await asyncio.sleep(0.5)

    def _inject(self, router_url: str, token: str, node: str) -> None:
        response = httpx.post(
            f"{router_url}/admin/nodes/{node}/faults",
            json=FAULTS[self.options.fault],
            headers={"Authorization": f"Bearer {token}"},
            timeout=5.0,
        )
        if response.status_code != 200:
            raise DemoError(f"injecting {self.options.fault} into {node} failed: {response.text}")

    async def _watch(self, control_plane: ControlPlane, timeline: Timeline) -> None:
        """Print alerts and decisions as they appear; a failed read is logged, then retried."""
        while True:
            try:
                alerts, decisions = await asyncio.to_thread(
                    lambda: (
                        control_plane.alert_store.recent(200),
                        control_plane.decisions.recent(200),
                    )
                )
            except Exception:
                logger.warning("timeline: reading alerts and decisions failed", exc_info=True)
            else:
                events: list[tuple[float, Callable[[], None]]] = []
                for alert in alerts:
                    at_s = alert.fired_at_s or alert.active_at_s
                    events.append((at_s, functools.partial(timeline.alert, alert)))
                for decision in decisions:
                    print_decision = functools.partial(timeline.decision, decision)
                    events.append((decision.started_at_s, print_decision))
                for _, show in sorted(events, key=lambda event: event[0]):
                    show()
            await asyncio.sleep(0.5)

    def _write_report(self, report: dict[str, Any]) -> None:
        text = json.dumps(report, indent=2) + "\n"
        (self.run_dir / "report.json").write_text(text, encoding="utf-8")
        if self.options.report_path is not None:
            self.options.report_path.parent.mkdir(parents=True, exist_ok=True)
            self.options.report_path.write_text(text, encoding="utf-8")
            self.out(f"  report:       {self.options.report_path}")
