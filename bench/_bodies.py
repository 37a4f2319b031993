"""Realistic /metrics bodies and scraped samples, from real prometheus_client registries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from collectors import ScrapedSample, parse_exposition
from exporters import GpuCollector, RequestMetrics, RequestOutcome, SimulatedGpuBackend
from exporters._request_metrics import (
    FINISHED_REASONS,
    INTER_TOKEN_LATENCY_BUCKETS,
    REQUEST_LATENCY_BUCKETS,
    TTFT_BUCKETS,
)

MODEL = "inferops-tiny"
JOB = "nodes"


def large_exposition(*, engines: int = 16, gpus: int = 8, seed: int = 0) -> str:
    """One big vLLM-like + dcgm-like body (~2,000 samples with the defaults).

    vLLM's request metrics (its names, buckets and `model_name`/`engine` labels) for
    `engines` engine cores, as a data-parallel vLLM server exports them, with observed
    values spread over the buckets; `http_requests_total` for a few handlers; and the
    dcgm-exporter families of `gpus` simulated GPUs through the real `GpuCollector`.
    """
    rng = random.Random(seed)
    registry = CollectorRegistry()
    labels = ["model_name", "engine"]
    histograms = [
        Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labels,
            buckets=TTFT_BUCKETS,
            registry=registry,
        ),
        Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            labels,
            buckets=INTER_TOKEN_LATENCY_BUCKETS,
            registry=registry,
        ),
        Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            labels,
            buckets=REQUEST_LATENCY_BUCKETS,
            registry=registry,
        ),
        Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            labels,
            buckets=REQUEST_LATENCY_BUCKETS,
            registry=registry,
        ),
    ]
    success = Counter(
        "vllm:request_success",
        "Count of successfully processed requests.",
        [*labels, "finished_reason"],
        registry=registry,
    )
    prompt = Counter(
        "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=registry
    )
    generation = Counter(
        "vllm:generation_tokens",
        "Number of generation tokens processed.",
        labels,
        registry=registry,
    )
    gauges = [
        Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            labels,
            registry=registry,
        ),
        Gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            labels,
            registry=registry,
        ),
        Gauge(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            labels,
            registry=registry,
        ),
    ]
    http = Counter(
        "http_requests",
        "Total number of requests by method, status and handler.",
        ["handler", "method", "status"],
        registry=registry,
    )
    for engine in range(engines):
        values = (MODEL, str(engine))
        for histogram in histograms:
            child = histogram.labels(*values)
            for _ in range(50):
                child.observe(rng.lognormvariate(-1.5, 1.2))
        for reason in FINISHED_REASONS:
            success.labels(*values, reason).inc(rng.randrange(1000))
        prompt.labels(*values).inc(rng.randrange(10**6))
        generation.labels(*values).inc(rng.randrange(10**6))
        for gauge in gauges:
            gauge.labels(*values).set(rng.random())
    for handler in ("/v1/completions", "/v1/chat/completions", "/v1/models", "/health"):
        for status in ("2xx", "4xx", "5xx"):
            http.labels(handler, "POST" if handler.startswith("/v1/c") else "GET", status).inc(
                rng.randrange(10**5)
            )
    backend = SimulatedGpuBackend(gpus=gpus, hostname="bench-node", seed=seed)
    backend.record_work(0.8, 0.7)
    collector = GpuCollector(backend, hostname="bench-node")
    registry.register(collector)
    try:
        return generate_latest(registry).decode()
    finally:
        collector.close()
        backend.close()


@dataclass
class SimulatedNode:
    """One reference node's /metrics (RequestMetrics + one simulated GPU), fed fake traffic."""

    name: str
    port: int
    rng: random.Random
    registry: CollectorRegistry
    metrics: RequestMetrics
    backend: SimulatedGpuBackend
    collector: GpuCollector

    @classmethod
    def create(cls, index: int, *, seed: int = 0) -> SimulatedNode:
        name = f"node-{index}"
        registry = CollectorRegistry()
        metrics = RequestMetrics(registry, model_name=MODEL)
        backend = SimulatedGpuBackend(gpus=1, hostname=name, seed=seed + index)
        collector = GpuCollector(backend, hostname=name)
        registry.register(collector)
        return cls(
            name, 18001 + index, random.Random(seed + index), registry, metrics, backend, collector
        )

    @property
    def target_labels(self) -> dict[str, str]:
        return {"instance": f"127.0.0.1:{self.port}", "job": JOB, "node": self.name}

    def serve_one_second(self, *, requests: int = 8, error_ratio: float = 0.02) -> None:
        """Record about a second's worth of finished requests."""
        rng = self.rng
        for _ in range(requests):
            failed = rng.random() < error_ratio
            ttft = rng.lognormvariate(-2.5, 0.6)
            tokens = rng.randrange(8, 64)
            itl = [rng.lognormvariate(-3.5, 0.3) for _ in range(3)]
            self.metrics.record(
                RequestOutcome(
                    handler="/v1/completions",
                    method="POST",
                    status_code=500 if failed else 200,
                    e2e_latency_s=None if failed else ttft + tokens * 0.03,
                    time_to_first_token_s=None if failed else ttft,
                    queue_time_s=None if failed else rng.random() * 0.01,
                    prompt_tokens=rng.randrange(8, 128),
                    generation_tokens=0 if failed else tokens,
                    finished_reason=None if failed else rng.choice(("length", "stop")),
                    inter_token_latencies_s=() if failed else tuple(itl),
                )
            )
        running = rng.randrange(0, 9)
        self.metrics.set_running(running)
        self.metrics.set_waiting(rng.randrange(0, 3))
        self.metrics.set_kv_cache_usage(running / 16)
        self.backend.record_work(min(1.0, running / 8), 0.25 + running / 16)

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def scrape(self, at_s: float) -> list[ScrapedSample]:
        """What the Scraper appends for one good scrape: the body's samples with the target
        labels, then `up`, `scrape_duration_seconds` and `scrape_samples_scraped`."""
        target = self.target_labels
        parsed = parse_exposition(self.render(), default_timestamp_s=at_s)
        batch = [
            ScrapedSample(s.name, {**s.labels, **target}, s.value, s.timestamp_s) for s in parsed
        ]
        batch.append(ScrapedSample("up", target, 1.0, at_s))
        batch.append(ScrapedSample("scrape_duration_seconds", target, 0.004, at_s))
        batch.append(ScrapedSample("scrape_samples_scraped", target, float(len(parsed)), at_s))
        return batch

    def close(self) -> None:
        self.collector.close()
        self.backend.close()


def fleet_scrapes(
    *, nodes: int, seconds: int, start_s: float, seed: int = 0
) -> Iterator[list[ScrapedSample]]:
    """One batch per node per second, in time order: `nodes` nodes scraped every second."""
    fleet = [SimulatedNode.create(i, seed=seed) for i in range(nodes)]
    try:
        for second in range(seconds):
            for node in fleet:
                node.serve_one_second()
                yield node.scrape(start_s + second)
    finally:
        for node in fleet:
            node.close()
