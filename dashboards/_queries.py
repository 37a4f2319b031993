"""The PromQL the dashboard asks, in one place, so the page and its tests agree on it.

Node measurements read the `nodes` job (one series set per inference node, labelled
`node`); the router's own request series are a different job and would double-count every
request, so from the `router` job only its per-node gauges are read (drain, health,
requests in flight).
"""

from __future__ import annotations

from slo import format_duration

NODE_JOB = 'job="nodes"'
ROUTER_JOB = 'job="router"'


def request_rate_by_status(window_s: float) -> str:
    """Per node and status class: the error ratio needs both, so it is one query."""
    return (
        f"sum by (node, status) (rate(http_requests_total{{{NODE_JOB}}}"
        f"[{format_duration(window_s)}]))"
    )


def latency_quantile(quantile: float, window_s: float) -> str:
    return (
        f"histogram_quantile({quantile:g}, sum by (node, le) "
        f"(rate(vllm:e2e_request_latency_seconds_bucket{{{NODE_JOB}}}"
        f"[{format_duration(window_s)}])))"
    )


def ttft_quantile(quantile: float, window_s: float) -> str:
    """Time to first token: what a streaming user waits before anything appears."""
    return (
        f"histogram_quantile({quantile:g}, sum by (node, le) "
        f"(rate(vllm:time_to_first_token_seconds_bucket{{{NODE_JOB}}}"
        f"[{format_duration(window_s)}])))"
    )


NODE_UP = f"max by (node) (up{{{NODE_JOB}}})"
GPU_UTIL_PERCENT = f"avg by (node) (DCGM_FI_DEV_GPU_UTIL{{{NODE_JOB}}})"
QUEUED_REQUESTS = f"sum by (node) (vllm:num_requests_waiting{{{NODE_JOB}}})"
KV_CACHE_USAGE = f"max by (node) (vllm:kv_cache_usage_perc{{{NODE_JOB}}})"
GPU_TEMPERATURE_CELSIUS = f"max by (node) (DCGM_FI_DEV_GPU_TEMP{{{NODE_JOB}}})"
GPU_POWER_WATTS = f"sum by (node) (DCGM_FI_DEV_POWER_USAGE{{{NODE_JOB}}})"
GPU_MEMORY_USED_MIB = f"sum by (node) (DCGM_FI_DEV_FB_USED{{{NODE_JOB}}})"
GPU_MEMORY_FREE_MIB = f"sum by (node) (DCGM_FI_DEV_FB_FREE{{{NODE_JOB}}})"

ROUTER_NODE_DRAINING = f"max by (node) (inferops_router_node_draining{{{ROUTER_JOB}}})"
ROUTER_NODE_HEALTHY = f"max by (node) (inferops_router_node_healthy{{{ROUTER_JOB}}})"
ROUTER_IN_FLIGHT = f"sum by (node) (inferops_router_in_flight{{{ROUTER_JOB}}})"

SLO_SLI = "slo:sli:ratio"
SLO_OBJECTIVE = "slo:objective:ratio"
SLO_BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
SLO_BURN_RATE = "slo:burn_rate:ratio"


def request_rate(window_s: float) -> str:
    return f"sum by (node) (rate(http_requests_total{{{NODE_JOB}}}[{format_duration(window_s)}]))"
