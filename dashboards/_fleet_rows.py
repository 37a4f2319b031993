"""The fleet table's rows: the node's own series, its GPUs' and the router's view of it.

Kept apart from `DashboardData` because the status of a node takes two sources that can
disagree (the scrape of the node and the router's gauges), and that reasoning deserves
its own tests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from collectors import InstantSample, MetricSource

from . import _queries
from ._node_order import natural_sort_key
from ._rows import FleetRow, NodeStatus

ERROR_STATUS = "5xx"
MIB = 1024 * 1024


def node_status(
    *, up: float | None, healthy: float | None, draining: float | None, in_flight: float | None
) -> NodeStatus:
    """Mirrors the router's own `/admin/nodes` status, with a failed scrape counted as down.

    A node with no router gauges (a fleet without the reference router) is serving when
    its scrape succeeds.
    """
    if up is not None and up <= 0:
        return NodeStatus.DOWN
    if draining is not None and draining > 0:
        if healthy is not None and healthy <= 0:
            return NodeStatus.DOWN
        return NodeStatus.DRAINING if (in_flight or 0.0) > 0 else NodeStatus.DRAINED
    if healthy is not None:
        return NodeStatus.SERVING if healthy > 0 else NodeStatus.DOWN
    if up is not None:
        return NodeStatus.SERVING
    return NodeStatus.UNKNOWN


def read_fleet(source: MetricSource, at_s: float, window_s: float) -> list[FleetRow]:
    """One row per node seen in any node or router series at `at_s`, in natural order."""

    def by_node(expr: str) -> dict[str, float]:
        return values_by_label(source.query(expr, at_s), "node")

    up = by_node(_queries.NODE_UP)
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    for sample in source.query(_queries.request_rate_by_status(window_s), at_s):
        node = sample.labels.get("node")
        if node is None or math.isnan(sample.value):
            continue
        requests[node] += sample.value
        if sample.labels.get("status") == ERROR_STATUS:
            errors[node] += sample.value
    p50 = by_node(_queries.latency_quantile(0.5, window_s))
    p99 = by_node(_queries.latency_quantile(0.99, window_s))
    gpu = by_node(_queries.GPU_UTIL_PERCENT)
    queue = by_node(_queries.QUEUED_REQUESTS)
    kv_usage = by_node(_queries.KV_CACHE_USAGE)
    ttft_p50 = by_node(_queries.ttft_quantile(0.5, window_s))
    ttft_p99 = by_node(_queries.ttft_quantile(0.99, window_s))
    temperature = by_node(_queries.GPU_TEMPERATURE_CELSIUS)
    power = by_node(_queries.GPU_POWER_WATTS)
    memory_used = by_node(_queries.GPU_MEMORY_USED_MIB)
    memory_free = by_node(_queries.GPU_MEMORY_FREE_MIB)
    draining = by_node(_queries.ROUTER_NODE_DRAINING)
    healthy = by_node(_queries.ROUTER_NODE_HEALTHY)
    in_flight = by_node(_queries.ROUTER_IN_FLIGHT)
    nodes: set[str] = set(requests)
    for values in (
        up,
        p50,
        p99,
        gpu,
        queue,
        kv_usage,
        ttft_p50,
        ttft_p99,
        temperature,
        power,
        memory_used,
        memory_free,
        draining,
        healthy,
        in_flight,
    ):
        nodes |= set(values)
    return [
        FleetRow(
            node=node,
            up=None if node not in up else up[node] > 0,
            requests_per_s=requests.get(node),
            p50_s=p50.get(node),
            p99_s=p99.get(node),
            error_ratio=ratio(errors.get(node, 0.0), requests.get(node)),
            gpu_util_percent=gpu.get(node),
            queue=queue.get(node),
            kv_usage=kv_usage.get(node),
            status=node_status(
                up=up.get(node),
                healthy=healthy.get(node),
                draining=draining.get(node),
                in_flight=in_flight.get(node),
            ),
            ttft_p50_s=ttft_p50.get(node),
            ttft_p99_s=ttft_p99.get(node),
            gpu_temperature_celsius=temperature.get(node),
            gpu_power_watts=power.get(node),
            gpu_memory_used_bytes=_mib_to_bytes(memory_used.get(node)),
            gpu_memory_total_bytes=_memory_total_bytes(
                memory_used.get(node), memory_free.get(node)
            ),
            in_flight=in_flight.get(node),
        )
        for node in sorted(nodes, key=natural_sort_key)
    ]


def values_by_label(samples: Iterable[InstantSample], label: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for sample in samples:
        key = sample.labels.get(label)
        if key is not None and not math.isnan(sample.value):
            values[key] = sample.value
    return values


def ratio(part: float, whole: float | None) -> float | None:
    """None over no requests: an idle node has no error ratio, not a perfect one."""
    if whole is None or whole <= 0:
        return None
    return part / whole


def _mib_to_bytes(mib: float | None) -> float | None:
    return None if mib is None else mib * MIB


def _memory_total_bytes(used_mib: float | None, free_mib: float | None) -> float | None:
    """Only when both are known: a total from one of them would be a wrong number."""
    if used_mib is None or free_mib is None:
        return None
    return (used_mib + free_mib) * MIB
