"""/metrics render time of 8 simulated GPUs (~44 series each): prometheus_client's generic
path (`generate_latest` over a registry holding a `GpuCollector`) against the direct renderer
(`GpuCollector.exposition()`), which writes the same bytes.

Two ways the collector can run: serving the last sample of a background poller
(`poll_interval_s`, what `inferops exporter gpu` does; the render alone is timed) and sampling
the backend at every scrape (no poll interval, what a reference node does; the simulation's
sample is included in both paths). The two paths are timed in alternating batches, so a burst
of load from elsewhere on the machine hits both alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

from exporters import GpuCollector, SimulatedGpuBackend

from ._common import Options, Result, fmt_ms, summary_ms

NAME = "gpu_render"
GPUS = 8
BATCH = 50


def _timed(render: Callable[[], bytes], count: int, into: list[float]) -> None:
    for _ in range(count):
        started = time.perf_counter()
        render()
        into.append(time.perf_counter() - started)


def _compare(poll_interval_s: float | None, renders: int) -> dict[str, object]:
    backend = SimulatedGpuBackend(gpus=GPUS, hostname="bench-node")
    backend.record_work(0.8, 0.7)
    backend.inject_fault("xid", code=79, gpu=3)  # an XID counter series too, as in a fleet
    collector = GpuCollector(backend, hostname="bench-node", poll_interval_s=poll_interval_s)
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        body = generate_latest(registry)  # warm-up, both paths
        fast_body = collector.exposition()
        if poll_interval_s is not None and fast_body != body:
            raise AssertionError("the direct renderer no longer writes generate_latest's bytes")
        generic: list[float] = []
        fast: list[float] = []
        while len(generic) < renders:
            _timed(lambda: generate_latest(registry), BATCH, generic)
            _timed(collector.exposition, BATCH, fast)
    finally:
        collector.close()
        backend.close()
    generic_stats, fast_stats = summary_ms(generic), summary_ms(fast)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {
        "series": series,
        "body_bytes": len(body),
        "generic": generic_stats,
        "fast": fast_stats,
        "ratio_p50": generic_stats["p50_ms"] / fast_stats["p50_ms"],
        "ratio_p99": generic_stats["p99_ms"] / fast_stats["p99_ms"],
    }


def run(options: Options) -> Result:
    renders = 1000 if options.quick else 10000
    results: dict[str, object] = {}
    table: list[tuple[str, str]] = []
    for mode, poll_interval_s in (("polled", 1.0), ("sample_at_scrape", None)):
        found = _compare(poll_interval_s, renders)
        results[mode] = found
        generic, fast = found["generic"], found["fast"]
        assert isinstance(generic, dict) and isinstance(fast, dict)
        table += [
            (f"{mode}: series / bytes", f"{found['series']} / {found['body_bytes']:,}"),
            (f"{mode}: generic p50 / p99",
             f"{fmt_ms(generic['p50_ms'])} / {fmt_ms(generic['p99_ms'])}"),
            (f"{mode}: fast p50 / p99", f"{fmt_ms(fast['p50_ms'])} / {fmt_ms(fast['p99_ms'])}"),
            (f"{mode}: ratio p50 / p99",
             f"{found['ratio_p50']:.1f}x / {found['ratio_p99']:.1f}x"),
        ]
    return Result(params={"gpus": GPUS, "renders": renders, "batch": BATCH}, results=results,
                  table=table)
