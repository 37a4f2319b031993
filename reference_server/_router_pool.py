"""The router's view of its nodes: health, drain intent, outstanding requests, and choice.

All state lives on the router's event loop; nothing here is thread-safe, nothing needs to be.
Status of a node, as the admin API reports it: drained by an admin -> "draining" while
requests it was given are still in flight, else "drained" (drain intent wins over down);
otherwise "down" if its last health check or proxied connection failed, else "serving".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from typing import Any

import httpx

from ._config import NodeSpec
from ._exceptions import UnknownNodeError

logger = logging.getLogger("reference_server.router")

SERVING, DRAINING, DRAINED, DOWN = "serving", "draining", "drained", "down"


class PooledNode:
    """One node as the router sees it."""

    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self.healthy = False
        self.drained = False
        self.in_flight = 0
        self.last_error: str | None = "not checked yet"
        self.ever_healthy = False
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def status(self) -> str:
        if self.drained:
            return DRAINING if self.in_flight > 0 else DRAINED
        return SERVING if self.healthy else DOWN

    @property
    def available(self) -> bool:
        return self.healthy and not self.drained

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "healthy": self.healthy,
                "in_flight": self.in_flight, "url": self.url}


class NodePool:
    """Nodes in a fixed order; `pick` chooses the available node with the fewest
    outstanding requests, ties broken round-robin."""

    def __init__(self, specs: Sequence[NodeSpec]) -> None:
        if not specs:
            raise ValueError("a router needs at least one node")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique: {names}")
        self.nodes: tuple[PooledNode, ...] = tuple(PooledNode(spec) for spec in specs)
        self._by_name = {node.name: node for node in self.nodes}
        self._next = 0

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def get(self, name: str) -> PooledNode:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownNodeError(name, self.names) from None

    @property
    def healthy_count(self) -> int:
        return sum(node.healthy for node in self.nodes)

    def pick(self, exclude: Collection[str] = ()) -> PooledNode | None:
        best: PooledNode | None = None
        best_index = 0
        count = len(self.nodes)
        for offset in range(count):
            index = (self._next + offset) % count
            node = self.nodes[index]
            if not node.available or node.name in exclude:
                continue
            if best is None or node.in_flight < best.in_flight:
                best, best_index = node, index
        if best is not None:
            self._next = (best_index + 1) % count
        return best

    def acquire(self, node: PooledNode) -> None:
        node.in_flight += 1
        node.idle.clear()

    def release(self, node: PooledNode) -> None:
        node.in_flight = max(0, node.in_flight - 1)
        if node.in_flight == 0:
            node.idle.set()

    async def wait_idle(self, node: PooledNode, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(node.idle.wait(), timeout_s)
        return node.in_flight == 0

    def set_health(self, node: PooledNode, healthy: bool, reason: str | None = None) -> None:
        was = node.healthy
        node.healthy = healthy
        node.last_error = None if healthy else reason
        if healthy and not was:
            node.ever_healthy = True
            logger.info("%s is healthy (%s)", node.name, node.url)
        elif was and not healthy:
            logger.warning("%s is down: %s", node.name, reason)

    def drain(self, node: PooledNode, *, why: str = "by admin") -> bool:
        changed = not node.drained
        node.drained = True
        if changed:
            logger.info("%s drained %s (%d in flight)", node.name, why, node.in_flight)
        return changed

    def undrain(self, node: PooledNode, *, why: str = "by admin") -> bool:
        changed = node.drained
        node.drained = False
        if changed:
            logger.info("%s undrained %s (%s)", node.name, why, node.status)
        return changed


async def check_health(
    client: httpx.AsyncClient, node: PooledNode, timeout_s: float
) -> tuple[bool, str | None]:
    """One GET /health: healthy only on a 200 that names this node (when it names one)."""
    try:
        response = await client.get(f"{node.url}/health", timeout=timeout_s)
    except httpx.TimeoutException:
        return False, f"/health did not answer within {timeout_s:g} s"
    except httpx.HTTPError as error:
        return False, f"/health failed: {type(error).__name__}: {error}"
    if response.status_code != 200:
        return False, f"/health answered {response.status_code}"
    with contextlib.suppress(ValueError):
        body = response.json()
        name = body.get("name") if isinstance(body, dict) else None
        if isinstance(name, str) and name != node.name:
            return False, f"port {node.spec.port} answers as {name!r}, not {node.name!r}"
    return True, None


class HealthChecker:
    """Checks every node every `interval_s`, each node on its own schedule, so a hung node
    (answering nothing until `timeout_s`) never delays the others."""

    def __init__(
        self, pool: NodePool, client: httpx.AsyncClient, *, interval_s: float, timeout_s: float
    ) -> None:
        self._pool = pool
        self._client = client
        self._interval_s = interval_s
        self._timeout_s = timeout_s

    async def check(self, node: PooledNode) -> bool:
        healthy, reason = await check_health(self._client, node, self._timeout_s)
        self._pool.set_health(node, healthy, reason)
        return healthy

    async def run(self) -> None:
        await asyncio.gather(*(self._watch(node) for node in self._pool.nodes))

    async def _watch(self, node: PooledNode) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.check(node)
            except Exception:  # never let one odd answer stop the checks
                logger.exception("health check of %s failed unexpectedly", node.name)
            await asyncio.sleep(max(0.0, self._interval_s - (loop.time() - started)))
