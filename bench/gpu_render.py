"""/metrics render time of 8 simulated GPUs: `GpuCollector` on a `CollectorRegistry`,
rendered by `prometheus_client.generate_latest`.

Two ways the collector can run: sampling the backend at every scrape (no poll interval,
the default) and serving the last sample of a background poller (`poll_interval_s`).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest

from exporters import GpuCollector, SimulatedGpuBackend

from ._common import Options, Result, fmt_ms, summary_ms

NAME = "gpu_render"
GPUS = 8


def _render_times(poll_interval_s: float | None, renders: int) -> tuple[list[float], int]:
    backend = SimulatedGpuBackend(gpus=GPUS, hostname="bench-node")
    backend.record_work(0.8, 0.7)
    collector = GpuCollector(backend, hostname="bench-node", poll_interval_s=poll_interval_s)
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        body = generate_latest(registry)  # warm-up
        times = []
        for _ in range(renders):
            started = time.perf_counter()
            generate_latest(registry)
            times.append(time.perf_counter() - started)
        return times, len(body)
    finally:
        collector.close()
        backend.close()


def run(options: Options) -> Result:
    renders = 500 if options.quick else 5000
    results: dict[str, object] = {}
    table: list[tuple[str, str]] = []
    for mode, poll_interval_s in (("sample_at_scrape", None), ("polled", 1.0)):
        times, body_bytes = _render_times(poll_interval_s, renders)
        stats = summary_ms(times)
        results[mode] = {**stats, "body_bytes": body_bytes}
        table.append(
            (f"{mode} p50 / p99", f"{fmt_ms(stats['p50_ms'])} / {fmt_ms(stats['p99_ms'])}")
        )
    return Result(params={"gpus": GPUS, "renders": renders}, results=results, table=table)
