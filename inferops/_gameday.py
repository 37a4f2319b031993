"""`inferops gameday`: chaos drills against the reference fleet under load, judged.

One fleet (child process) serves every scenario; each scenario gets a fresh control plane
with its own store, so one drill's cooldowns, flap counts and breaker never decide the
next one's verdict. Between scenarios the fleet is put back: faults cleared, crashed
nodes cycled, every node undrained at full weight, scrape paths restored.
The control plane scrapes each node through a `ScrapeProxy`, so the scrape-down drill can
break monitoring alone.
"""

from __future__ import annotations

import asyncio
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

from ._demo import demo_settings
from ._exceptions import DemoError
from ._gameday_fixtures import ScrapeProxy, WebhookSink
from ._gameday_process import InProcessPlane, ProcessPlane
from ._gameday_report import ACTED, TAKES_OUT, markdown_table, scenario_report
from ._gameday_scenarios import FaultStep, Scenario
from ._load import LoadGenerator
from ._processes import ChildProcess, free_port_block, inferops_argv, wait_http_ok
from ._settings import ENV_ADMIN_TOKEN, ReceiverSettings, Settings, StaticConfig

ENV_API_TOKEN = "INFEROPS_API_TOKEN"
"""The killed-and-restarted control plane's API token (ApiSettings.token_env's default)."""

logger = logging.getLogger("inferops.gameday")

MAX_NODES_OUT = 1
"""The game day's disruption budget: the control plane may take out one node of three."""
REQUEST_TIMEOUT_S = 10.0
"""A user gives up on a request after this long (a hung node's requests fail so)."""
_ADMIN_TIMEOUT_S = 10.0
_CYCLE_TIMEOUT_S = 120.0
_KILL_WAIT_S = 25.0
_SETTLE_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class GameDayOptions:
    scenarios: tuple[Scenario, ...]
    short: bool = False
    report_dir: Path | None = None
    nodes: int = 3
    concurrency: int = 4
    work_dir: Path = field(default_factory=lambda: Path(".inferops"))

    @property
    def warmup_s(self) -> float:
        """Load before the fault: the 10 s rate windows of the node rules must be full."""
        return 11.0 if self.short else 12.0


def gameday_settings(
    *, store_url: str, router_port: int, scrape_ports: list[int], webhook_url: str | None
) -> Settings:
    """The demo's settings with nodes scraped through their proxies, a one-node disruption
    budget, the default circuit breaker and (for the receiver drill) a webhook receiver."""
    base = demo_settings(store_url=store_url, router_port=router_port,
                         nodes=len(scrape_ports), dashboard_port=router_port)
    jobs = [
        job.model_copy(update={"static_configs": [
            StaticConfig(targets=[f"127.0.0.1:{port}"], labels={"node": f"node-{i}"})
            for i, port in enumerate(scrape_ports)
        ]}) if job.job_name == "nodes" else job
        for job in base.scrape_configs
    ]
    alerting = base.alerting.model_copy(update={
        "receivers": [] if webhook_url is None
        else [ReceiverSettings(name="gameday", url=webhook_url, timeout=2.0)],
        "delivery_initial_backoff": 0.5,
        "delivery_max_backoff": 2.0,
    })
    remediation = base.remediation.model_copy(update={
        "max_unavailable": str(MAX_NODES_OUT),
        "breaker_max_share": 0.5,
    })
    return base.model_copy(update={
        "scrape_configs": jobs, "alerting": alerting, "remediation": remediation,
    })


class GameDay:
    def __init__(self, options: GameDayOptions, *, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.out = out
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = (options.work_dir / "gameday" / stamp).resolve()
        self.report_dir = (options.report_dir or self.run_dir).resolve()
        self.children: list[ChildProcess] = []
        self.reports: list[dict[str, Any]] = []
        self._env: dict[str, str] = {}

    def run(self) -> int:
        """0 when every scenario passed, 1 otherwise."""
        try:
            return asyncio.run(self._run())
        finally:
            for child in reversed(self.children):
                child.stop()

    async def _run(self) -> int:
        opts = self.options
        self.run_dir.mkdir(parents=True, exist_ok=True)
        token = os.environ.get(ENV_ADMIN_TOKEN) or secrets.token_urlsafe(24)
        api_key = generate_api_key()
        env = {**os.environ, ENV_ADMIN_TOKEN: token, ENV_API_KEYS: api_key,
               "PYTHONUNBUFFERED": "1", ENV_API_TOKEN: secrets.token_urlsafe(24)}
        self._env = env
        port = free_port_block(2 * opts.nodes + 2)
        router_url = f"http://127.0.0.1:{port}"
        scrape_ports = [port + opts.nodes + 1 + i for i in range(opts.nodes)]
        webhook = WebhookSink(port + 2 * opts.nodes + 1)
        self.out(f"Starting a {opts.nodes}-node fleet (logs: {self.run_dir}/fleet.log) ...")
        fleet = ChildProcess(
            "fleet", inferops_argv("fleet", "up", "--nodes", str(opts.nodes), "--port", str(port)),
            log_path=self.run_dir / "fleet.log", env=env,
        )
        self.children.append(fleet)
        await asyncio.to_thread(self._wait_healthy, router_url, fleet)
        proxies = {f"node-{i}": ScrapeProxy(p, port + 1 + i) for i, p in enumerate(scrape_ports)}
        for proxy in proxies.values():
            await proxy.start()
        admin = httpx.AsyncClient(base_url=router_url, timeout=_ADMIN_TIMEOUT_S,
                                  headers={"Authorization": f"Bearer {token}"})
        try:
            for index, scenario in enumerate(opts.scenarios):
                if index:
                    await self._reset(admin, proxies, webhook, fleet)
                self.out(f"\n== {scenario.name}: {scenario.description}")
                store_url = f"sqlite:///{self.run_dir / (scenario.name + '.db')}"
                settings = gameday_settings(
                    store_url=store_url, router_port=port, scrape_ports=scrape_ports,
                    webhook_url=webhook.url if scenario.webhook else None)
                report = await self._scenario(scenario, settings, token, api_key, router_url,
                                              admin, proxies, webhook)
                self.reports.append(report)
                self._write(report)
        finally:
            await admin.aclose()
            for proxy in proxies.values():
                await proxy.stop()
            webhook.stop()
        table = markdown_table(self.reports)
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "gameday.md").write_text(table, encoding="utf-8")
        (self.report_dir / "gameday.json").write_text(
            json.dumps(self.reports, indent=2) + "\n", encoding="utf-8")
        self.out("\n" + table)
        self.out(f"Reports: {self.report_dir}")
        return 0 if all(r["passed"] for r in self.reports) else 1

    def _wait_healthy(self, router_url: str, fleet: ChildProcess) -> None:
        deadline = time.monotonic() + 180
        while True:
            response = wait_http_ok(f"{router_url}/health", child=fleet, ready="serve",
                                    timeout_s=max(1.0, deadline - time.monotonic()))
            if response.json().get("healthy_nodes") == self.options.nodes:
                return
            if time.monotonic() > deadline:
                raise DemoError(f"only {response.json().get('healthy_nodes')} nodes healthy")
            time.sleep(0.5)

    async def _scenario(
        self, scenario: Scenario, settings: Settings, token: str, api_key: str,
        router_url: str, admin: httpx.AsyncClient, proxies: dict[str, ScrapeProxy],
        webhook: WebhookSink,
    ) -> dict[str, Any]:
        opts = self.options
        webhook.bodies.clear()
        if scenario.webhook:
            webhook.start()
        plane: InProcessPlane | ProcessPlane
        if scenario.control_plane_process:
            api = settings.api.model_copy(update={"port": free_port_block(1, start=19000)})
            plane = ProcessPlane(settings.model_copy(update={"api": api}), run_dir=self.run_dir,
                                 name=scenario.name, env=self._env)
        else:
            plane = InProcessPlane(settings, admin_token=token)
        load = LoadGenerator(router_url, concurrency=opts.concurrency, api_key=api_key,
                             timeout_s=REQUEST_TIMEOUT_S)
        kill: dict[str, Any] | None = None
        load_task: asyncio.Task[None] | None = None
        try:
            await plane.start()
            load_task = asyncio.create_task(load.run(), name="load")
            fault_at = time.time() + opts.warmup_s
            injected_at: float | None = None  # when the first fault step really happened
            for step in sorted(scenario.steps, key=lambda s: s.at_s):
                await self._sleep_until(fault_at + step.at_s, plane)
                if injected_at is None and step.at_s >= 0:
                    injected_at = time.time()
                if step.kind == "kill-control-plane" and isinstance(plane, ProcessPlane):
                    kill = await self._kill_mid_action(plane, str(step.node), admin)
                else:
                    await self._step(step, admin, proxies, webhook)
                self.out(f"  {time.time() - fault_at:+6.1f}s  {step.kind} {step.node or ''} "
                         f"{dict(step.fault) or ''}".rstrip())
            await self._sleep_until(fault_at + scenario.observe_for_s(short=opts.short), plane)
            load.stop()
            await asyncio.wait([load_task], timeout=REQUEST_TIMEOUT_S + 5)
            if scenario.webhook:
                webhook.start()
                await asyncio.sleep(3.0)  # the outbox retries every <= 2 s
            await plane.settle()
            nodes = (await admin.get("/admin/nodes")).json()["nodes"]
            report = scenario_report(
                scenario, injected_at_s=injected_at or fault_at, judged_at_s=time.time(),
                alerts=plane.alerts.recent(1000), decisions=plane.decisions.recent(1000),
                records=list(load.records), availability_objective=plane.objective,
                max_nodes_out=MAX_NODES_OUT,
                received=webhook.received() if scenario.webhook else None,
                kill=kill,
                drained_at_end=[n["name"] for n in nodes if n["status"] in ("draining", "drained")],
            )
        finally:
            load.stop()
            if load_task is not None:
                load_task.cancel()
                await asyncio.gather(load_task, return_exceptions=True)
            await plane.close()
        for check in report["checks"]:
            self.out(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['check']}: {check['detail']}")
        return report

    async def _kill_mid_action(self, plane: ProcessPlane, node: str,
                               admin: httpx.AsyncClient) -> dict[str, Any]:
        """SIGKILL the control plane while an action on `node` is in flight (or, if none
        shows within 25 s, anyway: the report says which), then start it again."""
        deadline = time.time() + _KILL_WAIT_S
        in_flight: int | None = None
        while time.time() < deadline:
            rows = await asyncio.to_thread(plane.decisions.recent, 20, node=node)
            acting = [d for d in rows if d.action in TAKES_OUT and d.finished_at_s is None]
            if acting:
                in_flight = acting[0].id
                break
            if any(d.action in TAKES_OUT and d.outcome in ACTED for d in rows):
                break  # it finished between two looks: too late to catch it
            await asyncio.sleep(0.02)
        killed_at, restarted_at = await plane.kill_and_restart()
        state = next(n for n in (await admin.get("/admin/nodes")).json()["nodes"]
                     if n["name"] == node)
        what = "no action in flight" if in_flight is None else f"decision {in_flight} in flight"
        self.out(f"  SIGKILL control plane ({what}); restarted")
        return {"node": node, "decision_id": in_flight, "killed_at": killed_at,
                "restarted_at": restarted_at,
                "node_drained_at_kill": state["status"] in ("draining", "drained")}

    async def _sleep_until(self, at_s: float, plane: InProcessPlane | ProcessPlane) -> None:
        while (left := at_s - time.time()) > 0:
            if (problem := plane.problem()) is not None:
                raise DemoError(problem)
            if not self.children[0].running():
                raise DemoError(f"the fleet exited; last lines:\n{self.children[0].tail()}")
            await asyncio.sleep(min(0.5, left))

    async def _step(self, step: FaultStep, admin: httpx.AsyncClient,
                    proxies: dict[str, ScrapeProxy], webhook: WebhookSink) -> None:
        if step.kind == "inject":
            response = await admin.post(f"/admin/nodes/{step.node}/faults", json=dict(step.fault))
            if response.status_code != 200:
                raise DemoError(f"injecting {dict(step.fault)} into {step.node} failed: "
                                f"HTTP {response.status_code} {response.text[:200]}")
        elif step.kind == "clear":
            await admin.delete(f"/admin/nodes/{step.node}/faults")
        elif step.kind == "block-scrape":
            await proxies[str(step.node)].stop()
        elif step.kind == "unblock-scrape":
            await proxies[str(step.node)].start()
        elif step.kind == "stop-webhook":
            await asyncio.to_thread(webhook.stop)
        elif step.kind == "start-webhook":
            await asyncio.to_thread(webhook.start)

    async def _reset(self, admin: httpx.AsyncClient, proxies: dict[str, ScrapeProxy],
                     webhook: WebhookSink, fleet: ChildProcess) -> None:
        """Put the fleet back as it was: no faults, every node serving at full weight."""
        await asyncio.to_thread(webhook.stop)
        for proxy in proxies.values():
            await proxy.start()
        nodes = (await admin.get("/admin/nodes")).json()["nodes"]
        for node in nodes:
            name = node["name"]
            try:
                await admin.delete(f"/admin/nodes/{name}/faults")
            except httpx.HTTPError:
                logger.info("clearing faults of %s failed (it may be down)", name)
        nodes = (await admin.get("/admin/nodes")).json()["nodes"]
        for node in nodes:
            name = node["name"]
            if not node["healthy"]:
                response = await admin.post(f"/admin/nodes/{name}/cycle",
                                            timeout=_CYCLE_TIMEOUT_S)
                if response.status_code != 200:
                    logger.warning("cycling %s: HTTP %s %s", name, response.status_code,
                                   response.text[:200])
            await admin.post(f"/admin/nodes/{name}/undrain")
            await admin.post(f"/admin/nodes/{name}/weight", json={"weight": 1.0})
        router_url = str(admin.base_url).rstrip("/")
        await asyncio.to_thread(self._wait_healthy, router_url, fleet)
        await self._wait_not_ejected(admin)
        await self._wait_idle([proxy.target_port for proxy in proxies.values()])
        self.out("  (fleet reset: faults cleared, every node serving and idle)")

    async def _wait_not_ejected(self, admin: httpx.AsyncClient) -> None:
        """Wait until the router's outlier detector has let every node back: a node still
        ejected from the last drill reads as unhealthy to the next one's control plane."""
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            nodes = (await admin.get("/admin/nodes")).json()["nodes"]
            ejected = [node["name"] for node in nodes if node.get("ejected_until_s")]
            if not ejected:
                return
            await asyncio.sleep(0.5)
        logger.warning("nodes still ejected after %g s; going on", _SETTLE_TIMEOUT_S)

    async def _wait_idle(self, node_ports: list[int]) -> None:
        """Wait until no node still works off the last drill's backlog (a node released from
        a hang runs its stuck requests; their latency must not count against the next one)."""
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        async with httpx.AsyncClient(timeout=_ADMIN_TIMEOUT_S) as client:
            for port in node_ports:
                while time.monotonic() < deadline:
                    try:
                        body = (await client.get(f"http://127.0.0.1:{port}/health")).json()
                    except (httpx.HTTPError, ValueError):
                        body = {}
                    if body.get("running") == 0 and body.get("waiting") == 0:
                        break
                    await asyncio.sleep(0.5)
                else:
                    logger.warning("node on port %d still busy after %g s; going on", port,
                                   _SETTLE_TIMEOUT_S)
                    return

    def _write(self, report: dict[str, Any]) -> None:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.report_dir / f"{report['scenario']}.json"
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

