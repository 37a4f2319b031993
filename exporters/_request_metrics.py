"""Request metrics under vLLM's names, so dashboards and rules written for vLLM work unchanged.

Followed: vLLM 0.11.x, `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger.__init__`): metric
names, types, help texts, label names (`model_name`, `engine`; `finished_reason` on
`vllm:request_success`) and histogram buckets are copied from there. vLLM 0.11 exports
`vllm:inter_token_latency_seconds` (which replaced `vllm:time_per_output_token_seconds`) and
labels every series with `engine` (the engine core index, "0" for a single engine); its
`FinishReason` values are `stop`, `length` and `abort`. The prefix-cache counters
(`vllm:prefix_cache_queries`, `vllm:prefix_cache_hits`, in tokens) and
`vllm:num_preemptions` are vLLM V1's too. As in vLLM, every labelled child is
created up front, so a fresh server already exports zero-valued series.

`http_requests_total{handler,method,status}` is what prometheus-fastapi-instrumentator
(which vLLM's OpenAI API server installs) exports with its default `should_group_status_codes`:
status `2xx`, `4xx`, `5xx`, ...; name, help text and label names from its `metrics.default()`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ENGINE = "0"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
FINISHED_REASONS = ("stop", "length", "abort")

TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
    0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)
INTER_TOKEN_LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)
REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)
"""vLLM's `request_latency_buckets`: e2e latency and queue time."""


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """One HTTP request as the server finished it. Times in seconds; None: not measured.

    `finished_reason` (`stop`, `length`, `abort`) is set for a request the engine finished,
    None for one that never reached it (a 4xx, an injected 5xx).
    """

    handler: str
    method: str
    status_code: int
    e2e_latency_s: float | None = None
    time_to_first_token_s: float | None = None
    queue_time_s: float | None = None
    prompt_tokens: int = 0
    generation_tokens: int = 0
    finished_reason: str | None = None
    inter_token_latencies_s: Sequence[float] = ()
    trace_id: str | None = None
    """The request's trace (32 hex digits): its latency observations carry it as an exemplar,
    so a slow bucket on a dashboard links to the trace that landed there."""

    def __post_init__(self) -> None:
        if isinstance(self.status_code, bool) or not isinstance(self.status_code, int) or not (
            100 <= self.status_code <= 599
        ):
            raise ValueError(
                f"status_code must be an HTTP status 100..599, got {self.status_code!r}"
            )
        for name in ("e2e_latency_s", "time_to_first_token_s", "queue_time_s"):
            value = getattr(self, name)
            if value is not None:
                _check_seconds(name, value)
        for name in ("prompt_tokens", "generation_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.finished_reason is not None and self.finished_reason not in FINISHED_REASONS:
            raise ValueError(
                f"finished_reason must be one of {', '.join(FINISHED_REASONS)} or None, "
                f"got {self.finished_reason!r}"
            )
        if self.trace_id is not None and not _TRACE_ID.fullmatch(self.trace_id):
            raise ValueError(
                f"trace_id must be 32 lowercase hex digits, got {self.trace_id!r}")
        latencies = tuple(self.inter_token_latencies_s)
        for value in latencies:
            _check_seconds("inter_token_latencies_s", value)
        object.__setattr__(self, "inter_token_latencies_s", latencies)

    @property
    def status_class(self) -> str:
        """`2xx`, `4xx`, `5xx`, ... as prometheus-fastapi-instrumentator groups status codes."""
        return f"{self.status_code // 100}xx"


def _check_seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


class RequestMetrics:
    """vLLM's request metrics and the API server's `http_requests_total`, on `registry`."""

    def __init__(self, registry: CollectorRegistry, *, model_name: str) -> None:
        if not model_name:
            raise ValueError("model_name must not be empty")
        self.registry = registry
        self.model_name = model_name
        labels = ("model_name", "engine")
        values = (model_name, ENGINE)

        self._http_requests = Counter(
            "http_requests_total", "Total number of requests by method, status and handler.",
            labelnames=("method", "status", "handler"), registry=registry,
        )
        self._running = Gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._kv_cache_usage = Gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._prefix_cache_queries = Counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._prefix_cache_hits = Counter(
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._preemptions = Counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        self._generation_tokens = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.",
            labelnames=labels, registry=registry,
        ).labels(*values)
        success = Counter(
            "vllm:request_success", "Count of successfully processed requests.",
            labelnames=(*labels, "finished_reason"), registry=registry,
        )
        self._success = {reason: success.labels(*values, reason) for reason in FINISHED_REASONS}
        self._ttft = Histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            labelnames=labels, buckets=TTFT_BUCKETS, registry=registry,
        ).labels(*values)
        self._itl = Histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
            labelnames=labels, buckets=INTER_TOKEN_LATENCY_BUCKETS, registry=registry,
        ).labels(*values)
        self._e2e = Histogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
            labelnames=labels, buckets=REQUEST_LATENCY_BUCKETS, registry=registry,
        ).labels(*values)
        self._queue = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            labelnames=labels, buckets=REQUEST_LATENCY_BUCKETS, registry=registry,
        ).labels(*values)

    def record(self, outcome: RequestOutcome) -> None:
        """Count one finished HTTP request and observe whatever it measured."""
        self._http_requests.labels(outcome.method, outcome.status_class, outcome.handler).inc()
        if outcome.finished_reason is not None:
            self._success[outcome.finished_reason].inc()
        exemplar = None if outcome.trace_id is None else {"trace_id": outcome.trace_id}
        if outcome.e2e_latency_s is not None:
            self._e2e.observe(outcome.e2e_latency_s, exemplar)
        if outcome.time_to_first_token_s is not None:
            self._ttft.observe(outcome.time_to_first_token_s, exemplar)
        if outcome.queue_time_s is not None:
            self._queue.observe(outcome.queue_time_s)
        for latency in outcome.inter_token_latencies_s:
            self._itl.observe(latency)
        if outcome.prompt_tokens:
            self._prompt_tokens.inc(outcome.prompt_tokens)
        if outcome.generation_tokens:
            self._generation_tokens.inc(outcome.generation_tokens)

    def set_running(self, n: int) -> None:
        self._running.set(_count("running", n))

    def set_waiting(self, n: int) -> None:
        self._waiting.set(_count("waiting", n))

    def set_kv_cache_usage(self, ratio: float) -> None:
        """`ratio` of the KV cache in use, 0..1 (vLLM's `_perc` gauge is a ratio too)."""
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"KV-cache usage must be a ratio in 0..1, got {ratio!r}")
        self._kv_cache_usage.set(ratio)

    def count_prefix_cache(self, queries_tokens: int, hits_tokens: int) -> None:
        """Prompt tokens looked up in the prefix cache and how many of them were cached (the
        hit rate is `rate(hits) / rate(queries)`, as vLLM's dashboards compute it)."""
        queries = _count("queries_tokens", queries_tokens)
        hits = _count("hits_tokens", hits_tokens)
        if hits > queries:
            raise ValueError(f"hits_tokens ({hits}) cannot exceed queries_tokens ({queries})")
        self._prefix_cache_queries.inc(queries)
        self._prefix_cache_hits.inc(hits)

    def count_preemptions(self, n: int) -> None:
        """Running requests the engine preempted (KV cache full) since the last call."""
        self._preemptions.inc(_count("preemptions", n))


def _count(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {n!r}")
    return n
