"""The router's view of its nodes: health, drain intent, outstanding requests, and choice.

All state lives on the router's event loop; nothing here is thread-safe, nothing needs to be.
Status of a node, as the admin API reports it: drained by an admin -> "draining" while
requests it was given are still in flight, else "drained" (drain intent wins over down);
otherwise "down" if its last health check or proxied connection failed, else "serving".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import httpx

from ._config import LEAST_OUTSTANDING, ROUND_ROBIN, ROUTING_POLICIES, SESSION_AFFINITY, NodeSpec
from ._exceptions import UnknownNodeError
from ._router_outlier import OutlierDetector, OutlierPolicy, OutlierState

logger = logging.getLogger("reference_server.router")

SERVING, DRAINING, DRAINED, DOWN = "serving", "draining", "drained", "down"

MAX_WEIGHT = 1000.0


class PooledNode:
    """One node as the router sees it."""

    def __init__(self, spec: NodeSpec, detector: OutlierDetector | None = None) -> None:
        self.spec = spec
        self.outlier = OutlierState()
        self._detector = detector
        self.healthy = False
        self.drained = False
        self.in_flight = 0
        self.last_error: str | None = "not checked yet"
        self.ever_healthy = False
        self.weight = 1.0
        self.idle = asyncio.Event()
        self.idle.set()
        self.cancellers: set[Callable[[], None]] = set()
        """What an immediate drain calls to cut the requests in flight on this node."""
        self.waiting: set[Callable[[], None]] = set()
        """What an ejection calls to move the attempts still waiting for a first byte."""
        self.drain_deadline: asyncio.TimerHandle | None = None

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

    @property
    def ejected(self) -> bool:
        """Passively ejected by the outlier detector (no new requests until it returns)."""
        return self._detector is not None and self._detector.ejected(self.outlier)

    def as_json(self) -> dict[str, Any]:
        until = None if self._detector is None else self._detector.until_unix_s(self.outlier)
        return {"name": self.name, "status": self.status, "healthy": self.healthy,
                "in_flight": self.in_flight, "url": self.url, "weight": self.weight,
                "ejected_until_s": until,
                "consecutive_failures": self.outlier.failures,
                "ejections": self.outlier.ejections}


class NodePool:
    """Nodes in a fixed order, and the routing policy that picks one for a request among
    the available nodes of positive weight (of the request's model pool, when `pools` maps
    model names to node names; a model without a pool may go to any node):
    - least-outstanding (default): fewest outstanding requests per unit of weight, ties
      broken round-robin;
    - round-robin: smooth weighted round robin (nginx's);
    - session-affinity: weighted rendezvous hashing of the session key, so a session keeps
      its node (and its prefix cache) and only the sessions of a node that becomes
      unavailable move; requests without a session key go least-outstanding.
    A node the outlier detector ejected is not eligible until it returns."""

    def __init__(self, specs: Sequence[NodeSpec], *, policy: str = LEAST_OUTSTANDING,
                 pools: Mapping[str, Sequence[str]] | None = None,
                 outlier: OutlierPolicy | None = None,
                 on_eject: Callable[[str, str], None] = lambda _node, _reason: None,
                 clock: Callable[[], float] | None = None) -> None:
        if not specs:
            raise ValueError("a router needs at least one node")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"node names must be unique: {names}")
        if policy not in ROUTING_POLICIES:
            raise ValueError(f"routing policy must be one of {', '.join(ROUTING_POLICIES)}, "
                             f"got {policy!r}")
        self.policy = policy
        self.outlier = OutlierDetector(outlier if outlier is not None else OutlierPolicy(),
                                       groups=self._ejection_groups, on_eject=on_eject,
                                       **({} if clock is None else {"clock": clock}))
        self.nodes: tuple[PooledNode, ...] = tuple(PooledNode(spec, self.outlier)
                                                   for spec in specs)
        self._by_name = {node.name: node for node in self.nodes}
        self._next = 0
        self._smooth: dict[str, float] = dict.fromkeys(names, 0.0)
        self.pools: dict[str, frozenset[str]] = {}
        for model, members in (pools or {}).items():
            unknown = [name for name in members if name not in self._by_name]
            if unknown or not members:
                raise ValueError(f"pool of model {model!r}: unknown or no nodes: {unknown}")
            self.pools[model] = frozenset(members)

    def _ejection_groups(self, name: str) -> list[Sequence[PooledNode]]:
        """The fleet, and every model pool `name` belongs to (max_ejection_percent of each)."""
        return [self.nodes, *([n for n in self.nodes if n.name in members]
                              for members in self.pools.values() if name in members)]

    def routable(self, node: PooledNode) -> bool:
        """Healthy, undrained and not ejected: may get new requests (weight allowing)."""
        return node.available and not node.ejected

    def succeeded(self, node: PooledNode) -> None:
        """A relayed answer that was not a server failure: the failure streak ends."""
        self.outlier.success(node.outlier)

    def failed(self, node: PooledNode, reason: str) -> bool:
        """A failed attempt (5xx, connect, read, first-byte timeout); True if it ejected
        the node, in which case the requests still waiting for its first byte are cut
        (and retried elsewhere, as nothing reached their clients yet)."""
        if not self.outlier.failure(node, reason):
            return False
        waiting = list(node.waiting)
        node.waiting.clear()
        for cancel in waiting:
            cancel()
        return True

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

    def pick(self, exclude: Collection[str] = (), *, model: str | None = None,
             session: str | None = None) -> PooledNode | None:
        pool = self.pools.get(model) if model is not None else None
        if self.policy == ROUND_ROBIN:
            return self._smooth_round_robin(exclude, pool)
        if self.policy == SESSION_AFFINITY and session is not None:
            return self._rendezvous(session, exclude, pool)
        best: PooledNode | None = None
        best_index = 0
        count = len(self.nodes)
        for offset in range(count):
            index = (self._next + offset) % count
            node = self.nodes[index]
            if not self._eligible(node, exclude, pool):
                continue
            if best is None or node.in_flight * best.weight < best.in_flight * node.weight:
                best, best_index = node, index
        if best is not None:
            self._next = (best_index + 1) % count
        return best

    @staticmethod
    def _eligible(node: PooledNode, exclude: Collection[str],
                  pool: frozenset[str] | None) -> bool:
        return (node.available and node.weight > 0 and node.name not in exclude
                and (pool is None or node.name in pool) and not node.ejected)

    def _smooth_round_robin(self, exclude: Collection[str],
                            pool: frozenset[str] | None) -> PooledNode | None:
        candidates = [n for n in self.nodes if self._eligible(n, exclude, pool)]
        if not candidates:
            return None
        for node in candidates:
            self._smooth[node.name] += node.weight
        best = max(candidates, key=lambda n: self._smooth[n.name])
        self._smooth[best.name] -= sum(n.weight for n in candidates)
        return best

    def _rendezvous(self, session: str, exclude: Collection[str],
                    pool: frozenset[str] | None) -> PooledNode | None:
        best: PooledNode | None = None
        best_score = -math.inf
        for node in self.nodes:
            if not self._eligible(node, exclude, pool):
                continue
            digest = hashlib.blake2b(f"{session}\x00{node.name}".encode(), digest_size=8)
            unit = (int.from_bytes(digest.digest(), "big") + 0.5) / 2.0**64
            score = node.weight / -math.log(unit)
            if score > best_score:
                best, best_score = node, score
        return best

    def set_weights(self, weights: Mapping[str, float], *, why: str) -> None:
        """Every weight checked before any is set: a bad entry changes nothing."""
        for name, weight in weights.items():
            self.get(name)
            if (isinstance(weight, bool) or not isinstance(weight, int | float)
                    or not math.isfinite(weight) or not 0 <= weight <= MAX_WEIGHT):
                raise ValueError(f"weights.{name}: must be a number in 0..{MAX_WEIGHT:g}, "
                                 f"got {weight!r}")
        for name, weight in weights.items():
            node = self.get(name)
            if node.weight != weight:
                logger.info("%s weight %g -> %g %s", name, node.weight, weight, why)
            node.weight = float(weight)

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

    def cut(self, node: PooledNode) -> int:
        """Cancel every request in flight on `node` (an immediate drain); how many."""
        cancellers = list(node.cancellers)
        node.cancellers.clear()
        for cancel in cancellers:
            cancel()
        return len(cancellers)

    def undrain(self, node: PooledNode, *, why: str = "by admin") -> bool:
        if node.drain_deadline is not None:
            node.drain_deadline.cancel()
            node.drain_deadline = None
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
                self._pool.outlier.expire(node.name, node.outlier)
                await self.check(node)
            except Exception:  # never let one odd answer stop the checks
                logger.exception("health check of %s failed unexpectedly", node.name)
            await asyncio.sleep(max(0.0, self._interval_s - (loop.time() - started)))
