"""Scrape-to-store ingest: samples/s from /metrics bodies to committed rows, on one core.

End to end as the Scraper does it once a body has arrived: `build_batch` (parse, attach
the target labels, staleness markers; `parse_keyed_samples` underneath) then
`SampleStore.append` (one transaction per scrape), into SQLite (WAL, a temporary
directory) and, when Debian's PostgreSQL is installed, a throwaway PostgreSQL (fsync off).
Two workloads, bodies rendered by real prometheus_client registries before the clock starts:

- `large`: one big inference server: vLLM's metrics for 16 engine cores plus dcgm-exporter's
  for 8 GPUs (~2,200 samples a scrape; 4 bodies with different values, cycled);
- `fleet`: 3 reference nodes (vLLM names and one simulated GPU each, ~180 samples),
  scraped every second.

The first scrape of each target (which creates its series) is left out of the steady rate.
`cpu_samples_per_s` divides by the process's CPU time, which other load on the machine
inflates less than the wall clock.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from collectors import SampleStore, open_database
from collectors._scrape_batch import SeriesKey, build_batch

from ._bodies import SimulatedNode, large_exposition
from ._common import Options, Result, fmt_ms, fmt_rate, rate, summary_ms
from ._postgres import temporary_postgres

NAME = "store_ingest"
START_S = 1_767_000_000.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Scrape = tuple[int, bytes, dict[str, str]]
"""(target index, body, target labels)."""


def large_scrapes(count: int) -> list[Scrape]:
    bodies = [large_exposition(seed=seed).encode() for seed in range(4)]
    labels = {"instance": "10.0.0.7:8000", "job": "vllm", "node": "gpu-node-7"}
    return [(0, bodies[i % len(bodies)], labels) for i in range(count)]


def fleet_scrapes(seconds: int, nodes: int = 3) -> list[Scrape]:
    fleet = [SimulatedNode.create(i) for i in range(nodes)]
    scrapes: list[Scrape] = []
    try:
        for _ in range(seconds):
            for index, node in enumerate(fleet):
                node.serve_one_second()
                scrapes.append((index, node.render().encode(), node.target_labels))
    finally:
        for node in fleet:
            node.close()
    return scrapes


def ingest(url: str, scrapes: list[Scrape]) -> dict[str, Any]:
    """Build and append every scrape; rates over the steady state (each target's 2nd on)."""
    engine = open_database(url)
    try:
        store = SampleStore(engine)
        previous: dict[int, dict[SeriesKey, tuple[str, Any]]] = {}
        steady_wall: list[float] = []
        steady_cpu = 0.0
        steady_samples = 0
        for number, (target, body, labels) in enumerate(scrapes):
            wall, cpu = time.perf_counter(), time.process_time()
            batch, series, _ = build_batch(
                body, CONTENT_TYPE, START_S + number, labels, previous.get(target, {}), 10**6
            )
            store.append(batch)
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            if target in previous:
                steady_wall.append(wall)
                steady_cpu += cpu
                steady_samples += len(batch)
            previous[target] = series
    finally:
        engine.dispose()
    return {
        "scrapes": len(scrapes),
        "samples_per_scrape": steady_samples / max(len(steady_wall), 1),
        "samples_per_s": rate(steady_samples, sum(steady_wall)),
        "cpu_samples_per_s": rate(steady_samples, steady_cpu),
        "scrape": summary_ms(steady_wall),
    }


def run(options: Options) -> Result:
    workloads = {
        "large": large_scrapes(60 if options.quick else 400),
        "fleet": fleet_scrapes(60 if options.quick else 300),
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="inferops-bench-") as tmp:
        results["sqlite"] = {
            name: ingest(f"sqlite:///{Path(tmp) / f'{name}.db'}", scrapes)
            for name, scrapes in workloads.items()
        }
    with temporary_postgres() as postgres_url:
        if postgres_url is not None:
            results["postgresql"] = {}
            for name, scrapes in workloads.items():
                # A fresh database per workload: the same throwaway cluster, new schema.
                engine = open_database(postgres_url)
                with engine.begin() as connection:
                    connection.exec_driver_sql("DROP SCHEMA public CASCADE")
                    connection.exec_driver_sql("CREATE SCHEMA public")
                engine.dispose()
                results["postgresql"][name] = ingest(postgres_url, scrapes)
    table = []
    for backend, by_workload in results.items():
        for name, one in by_workload.items():
            table.append(
                (
                    f"{backend} {name} (~{one['samples_per_scrape']:.0f}/scrape)",
                    f"{fmt_rate(one['samples_per_s'], 'samples/s')} "
                    f"({fmt_rate(one['cpu_samples_per_s'], 'per CPU-s')}); scrape p50 / p99 "
                    f"{fmt_ms(one['scrape']['p50_ms'])} / {fmt_ms(one['scrape']['p99_ms'])}",
                )
            )
    return Result(
        params={
            "path": "build_batch (parse + labels + staleness) + SampleStore.append, one core",
            "workloads": {name: len(scrapes) for name, scrapes in workloads.items()},
            "sqlite": "WAL, synchronous=NORMAL, temporary directory",
            "postgresql": "throwaway cluster, fsync=off" if "postgresql" in results else None,
        },
        results=results,
        table=table,
    )
