"""The NVML backend on the GPUs of this machine: how long one NVML sample and one /metrics
render take, and what a scrape shows.

Needs an NVIDIA driver; without one it stops with the backend's own message. The exposition of
one scrape is kept in the JSON result, so a run on a real GPU doubles as a record of the
dcgm-exporter-compatible output against real NVML.
"""

from __future__ import annotations

import socket
import time

from prometheus_client import CollectorRegistry, generate_latest

from exporters import GpuBackendUnavailable, GpuCollector, select_gpu_backend

from ._common import Options, Result, fmt_ms, summary_ms

NAME = "nvml_render"


def run(options: Options) -> Result:
    hostname = socket.gethostname()
    try:
        backend = select_gpu_backend("nvml", hostname=hostname)
    except GpuBackendUnavailable as error:
        raise ValueError(str(error)) from None
    rounds = 50 if options.quick else 500
    try:
        sample_times = []
        for _ in range(rounds):
            started = time.perf_counter()
            samples = backend.sample()
            sample_times.append(time.perf_counter() - started)
        collector = GpuCollector(backend, hostname=hostname, poll_interval_s=1.0)
        registry = CollectorRegistry()
        registry.register(collector)
        try:
            body = generate_latest(registry)
            render_times = []
            for _ in range(rounds * 10):
                started = time.perf_counter()
                generate_latest(registry)
                render_times.append(time.perf_counter() - started)
        finally:
            collector.close()
    finally:
        backend.close()
    sample_stats = summary_ms(sample_times)
    render_stats = summary_ms(render_times)
    return Result(
        params={"rounds": rounds, "gpus": len(samples)},
        results={
            "gpus": [
                {"model": s.model_name, "uuid": s.uuid, "errors": list(s.errors)} for s in samples
            ],
            "nvml_sample": sample_stats,
            "render_from_poller": render_stats,
            "exposition": body.decode("utf-8"),
        },
        table=[
            ("GPUs", ", ".join(s.model_name for s in samples)),
            ("NVML sample p50 / p99",
             f"{fmt_ms(sample_stats['p50_ms'])} / {fmt_ms(sample_stats['p99_ms'])}"),
            ("render from poller p50 / p99",
             f"{fmt_ms(render_stats['p50_ms'])} / {fmt_ms(render_stats['p99_ms'])}"),
        ],
    )
