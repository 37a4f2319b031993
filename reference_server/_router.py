"""The router's state and actions: nodes, health checks, drain/undrain/cycle, faults, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import httpx
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from exporters import RequestMetrics

from ._api_keys import ApiKey
from ._config import DEFAULT_MODEL_NAME, LEAST_OUTSTANDING, FleetConfig, NodeSpec
from ._exceptions import CycleError
from ._gateway_access import Gateway
from ._openai_schema import openai_error
from ._router_outlier import OutlierPolicy
from ._router_pool import HealthChecker, NodePool, PooledNode, check_health
from ._router_proxy import RequestProxy
from ._router_tracing import ProxyTracing
from ._supervisor import NodeController
from ._upstream_pool import UpstreamPool, UpstreamTimeouts

logger = logging.getLogger("reference_server.router")

FAULTS_TIMEOUT_S = 5.0
"""How long the router waits for a node to answer a forwarded fault request."""

PROFILE_TIMEOUT_S = 330.0
"""How long the router waits for a forwarded profile (a capture may last minutes)."""

IMMEDIATE, ALLOW_COMPLETION, UNTIL_DEADLINE = (
    "immediate", "allow-completion", "allow-completion-until-deadline")
DRAIN_MODES = (IMMEDIATE, ALLOW_COMPLETION, UNTIL_DEADLINE)


class _RouterCollector(Collector):
    """Per-node gauges, read from the pool at scrape time."""

    def __init__(self, pool: NodePool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        families: tuple[tuple[str, str, Callable[[PooledNode], float]], ...] = (
            ("inferops_router_node_healthy", "1 if the node's last health check succeeded.",
             lambda n: float(n.healthy)),
            ("inferops_router_node_draining", "1 if an admin drained the node (no new requests).",
             lambda n: float(n.drained)),
            ("inferops_router_in_flight", "Requests the router has outstanding on the node.",
             lambda n: float(n.in_flight)),
            ("inferops_router_node_weight", "The node's routing weight (0: no new requests).",
             lambda n: n.weight),
            ("inferops_router_node_ejected", "1 while the router's outlier detection has the "
             "node ejected (no new requests).", lambda n: float(n.ejected)),
        )
        for name, documentation, value in families:
            family = GaugeMetricFamily(name, documentation, labels=["node"])
            for node in self._pool.nodes:
                family.add_metric([node.name], value(node))
            yield family


class Router:
    """Proxies `/v1/*` to healthy, undrained nodes and carries out admin actions.
    `controller` restarts node processes (the fleet's supervisor); without one, `cycle`
    is refused. `start()` and `close()` run on the event loop that serves the app."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        *,
        admin_token: str,
        model_name: str = DEFAULT_MODEL_NAME,
        controller: NodeController | None = None,
        health_interval_s: float = 0.5,
        health_timeout_s: float = 1.0,
        drain_timeout_s: float = 30.0,
        node_start_timeout_s: float = 120.0,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 300.0,
        registry: CollectorRegistry | None = None,
        routing_policy: str = LEAST_OUTSTANDING,
        pools: dict[str, list[str]] | None = None,
        api_keys: Sequence[ApiKey] = (),
        outlier: OutlierPolicy | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if not admin_token:
            raise ValueError("admin_token must not be empty")
        self.registry = registry if registry is not None else CollectorRegistry()
        self.ejections = Counter(
            "inferops_router_ejections", "Nodes ejected by the router's outlier detection, by "
            "the kind of the failure that ejected them.", ["node", "reason"],
            registry=self.registry,
        )
        self.pool = NodePool(nodes, policy=routing_policy, pools=pools, outlier=outlier,
                             on_eject=lambda node, reason: self.ejections.labels(
                                 node=node, reason=reason).inc())
        self.admin_token = admin_token
        self.model_name = model_name
        self.controller = controller
        self.health_interval_s = health_interval_s
        self.health_timeout_s = health_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.node_start_timeout_s = node_start_timeout_s
        self._timeouts = UpstreamTimeouts(connect_s=connect_timeout_s, read_s=read_timeout_s,
                                          write_s=30.0, keepalive_expiry_s=2.0)
        self.metrics = RequestMetrics(self.registry, model_name=model_name)
        self.retries = Counter(
            "inferops_router_retries", "Requests retried on another node, by the node that "
            "failed and why (connect, read, timeout, 5xx).", ["node", "reason"],
            registry=self.registry,
        )
        self.cut = Counter(
            "inferops_router_drain_cut", "Requests an immediate drain (or a drain deadline) "
            "cut on a node: streams ended early, or requests moved before their first byte.",
            ["node", "what"], registry=self.registry,
        )
        self.gateway = Gateway(api_keys, self.registry) if api_keys else None
        """Without keys, /v1/* is open (a library router); `inferops fleet up` always has keys."""
        self.registry.register(_RouterCollector(self.pool))
        self._cycling: set[str] = set()
        self._upstream: UpstreamPool | None = None
        self._control_client: httpx.AsyncClient | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._proxy: RequestProxy | None = None
        self._tracing = None if tracer_provider is None else ProxyTracing(
            tracer_provider.get_tracer("reference_server.router"))
        """Spans per proxied request (`_router_tracing`); whoever built the provider owns it."""

    @classmethod
    def for_config(cls, config: FleetConfig, *, controller: NodeController | None = None,
                   tracer_provider: TracerProvider | None = None) -> Router:
        return cls(
            config.node_specs(), admin_token=config.admin_token, model_name=config.model_name,
            controller=controller, health_interval_s=config.health_interval_s,
            health_timeout_s=config.health_timeout_s, drain_timeout_s=config.drain_timeout_s,
            node_start_timeout_s=config.node_start_timeout_s,
            routing_policy=config.routing_policy,
            pools={model: list(names) for model, names in config.model_pools.items()},
            api_keys=config.api_keys, outlier=config.outlier, tracer_provider=tracer_provider,
        )

    def __repr__(self) -> str:
        return f"Router({', '.join(self.pool.names)})"

    @property
    def proxy(self) -> RequestProxy:
        if self._proxy is None:
            raise RuntimeError("the router is not started")
        return self._proxy

    @property
    def upstream(self) -> UpstreamPool:
        """The keep-alive connections `/v1/*` is relayed over (`opened` counts them)."""
        if self._upstream is None:
            raise RuntimeError("the router is not started")
        return self._upstream

    async def start(self) -> None:
        self._upstream = UpstreamPool(self._timeouts, max_idle_per_origin=200)
        self._control_client = httpx.AsyncClient(
            timeout=httpx.Timeout(FAULTS_TIMEOUT_S, connect=1.0), trust_env=False,
        )
        self._proxy = RequestProxy(self.pool, self._upstream, model_name=self.model_name,
                                   metrics=self.metrics, retries=self.retries, cut=self.cut,
                                   gateway=self.gateway, first_byte_timeout_s=(
                                       self.pool.outlier.policy.first_byte_timeout_s),
                                   tracing=self._tracing)
        checker = HealthChecker(self.pool, self._control_client,
                                interval_s=self.health_interval_s, timeout_s=self.health_timeout_s)
        self._health_task = asyncio.create_task(checker.run(), name="router-health")

    async def close(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        if self._upstream is not None:
            await self._upstream.aclose()
        if self._control_client is not None:
            await self._control_client.aclose()

    def health(self) -> tuple[int, dict[str, object]]:
        healthy = self.pool.healthy_count
        body: dict[str, object] = {
            "status": "ok" if healthy else "unavailable",
            "healthy_nodes": healthy,
            "nodes": len(self.pool.nodes),
            "serving_nodes": sum(self.pool.routable(node) for node in self.pool.nodes),
        }
        return (200 if healthy else 503), body

    # -- admin actions --------------------------------------------------------------------

    def drain(self, name: str, mode: str = ALLOW_COMPLETION,
              deadline_s: float | None = None) -> PooledNode:
        """No new requests for `name`; then, by mode: cut what is in flight now
        (immediate), let it finish (allow-completion), or let it finish until `deadline_s`
        and cut what is still running then (allow-completion-until-deadline)."""
        if mode not in DRAIN_MODES:
            raise ValueError(f"mode: must be one of {', '.join(DRAIN_MODES)}, got {mode!r}")
        if mode == UNTIL_DEADLINE and (deadline_s is None or not 0 < deadline_s <= 86400):
            raise ValueError(f"deadline_s: {mode} needs a number of seconds in (0, 86400], "
                             f"got {deadline_s!r}")
        node = self.pool.get(name)
        self.pool.drain(node, why=f"by admin ({mode})")
        if node.drain_deadline is not None:
            node.drain_deadline.cancel()
            node.drain_deadline = None
        if mode == IMMEDIATE:
            self._cut_in_flight(node, mode)
        elif mode == UNTIL_DEADLINE:
            assert deadline_s is not None
            node.drain_deadline = asyncio.get_running_loop().call_later(
                deadline_s, self._deadline_reached, node, deadline_s)
        return node

    def _cut_in_flight(self, node: PooledNode, why: str) -> None:
        count = self.pool.cut(node)
        if count:
            logger.warning("%s: cut %d request(s) in flight (%s)", node.name, count, why)

    def _deadline_reached(self, node: PooledNode, deadline_s: float) -> None:
        node.drain_deadline = None
        if node.drained:
            self._cut_in_flight(node, f"drain deadline of {deadline_s:g} s reached")

    def set_weights(self, weights: dict[str, float]) -> None:
        self.pool.set_weights(weights, why="by admin")

    def undrain(self, name: str) -> PooledNode:
        node = self.pool.get(name)
        if name in self._cycling:
            raise CycleError(name, "undrain", "a cycle of this node is in progress",
                             status_code=409, left_drained=False)
        self.pool.undrain(node)
        return node

    async def cycle(self, name: str) -> PooledNode:
        """Drain, wait for in-flight requests (up to drain_timeout_s), restart the process,
        wait for /health 200 (up to node_start_timeout_s), undrain. On failure the node
        stays drained and `CycleError` names the step."""
        node = self.pool.get(name)
        if self.controller is None:
            raise CycleError(name, "restart", "this router has no supervisor to restart "
                             "node processes", status_code=501, left_drained=False)
        if name in self._cycling:
            raise CycleError(name, "start", "a cycle of this node is already in progress",
                             status_code=409, left_drained=False)
        self._cycling.add(name)
        started = time.monotonic()
        try:
            self.pool.drain(node, why="for a cycle")
            if not await self.pool.wait_idle(node, self.drain_timeout_s):
                logger.warning("cycle %s: %d request(s) still in flight after %g s; restarting "
                               "anyway", name, node.in_flight, self.drain_timeout_s)
            logger.info("cycle %s: restarting the process", name)
            try:
                await asyncio.to_thread(self.controller.restart, name)
            except Exception as error:
                raise CycleError(name, "restart", str(error)) from error
            self.pool.set_health(node, False, "restarting")
            await self._wait_healthy(node)
            self.pool.undrain(node, why=f"after a cycle of {time.monotonic() - started:.1f} s")
            return node
        except CycleError as error:
            logger.error("%s", error)
            raise
        finally:
            self._cycling.discard(name)

    async def _wait_healthy(self, node: PooledNode) -> None:
        assert self.controller is not None and self._control_client is not None
        deadline = time.monotonic() + self.node_start_timeout_s
        reason: str | None = "not checked"
        while time.monotonic() < deadline:
            code = await asyncio.to_thread(self.controller.exit_code, node.name)
            if code is not None:
                raise CycleError(node.name, "wait healthy",
                                 f"the restarted process exited with code {code}")
            healthy, reason = await check_health(self._control_client, node, self.health_timeout_s)
            if healthy:
                self.pool.set_health(node, True)
                return
            await asyncio.sleep(min(0.25, self.health_interval_s))
        raise CycleError(node.name, "wait healthy",
                         f"not healthy within {self.node_start_timeout_s:g} s ({reason})",
                         status_code=504)

    async def forward_faults(self, name: str, method: str, body: bytes) -> Response:
        """POST or DELETE the node's /admin/faults with the admin token; relay its answer."""
        what = "cleared faults" if method == "DELETE" else f"fault {_fault_kind(body)}"
        return await self._forward(name, method, "/admin/faults",
                                   body if method == "POST" else None, what, FAULTS_TIMEOUT_S)

    async def forward_profile(self, name: str, body: bytes) -> Response:
        """POST the node's /admin/profile (a torch.profiler capture); relay its answer."""
        return await self._forward(name, "POST", "/admin/profile", body, "profile",
                                   PROFILE_TIMEOUT_S)

    async def _forward(self, name: str, method: str, path: str, body: bytes | None, what: str,
                       timeout_s: float) -> Response:
        node = self.pool.get(name)
        assert self._control_client is not None
        try:
            answer = await self._control_client.request(
                method, f"{node.url}{path}", content=body,
                headers={"Authorization": f"Bearer {self.admin_token}",
                         "Content-Type": "application/json"},
                timeout=httpx.Timeout(timeout_s, connect=1.0),
            )
        except httpx.HTTPError as error:
            logger.warning("%s did not answer %s %s: %s", name, method, path,
                           type(error).__name__)
            return openai_error(
                503, f"{name} did not answer {method} {path} "
                f"({type(error).__name__}: {error or 'no detail'})", "server_error")
        logger.info("%s on %s: the node answered %d", what, name, answer.status_code)
        return Response(answer.content, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type", "application/json"))


def _fault_kind(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        kind = json.loads(body).get("kind")
        if isinstance(kind, str):
            return repr(kind)[:40]
    return "(unreadable body)"
