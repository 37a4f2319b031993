"""`collectors.SampleStore.append` into SQLite (a temporary directory): samples/s.

The batches are what the Scraper appends for a reference fleet: one batch per scrape of
a node (its vLLM-named request metrics, one simulated GPU, `up` and the scrape report),
3 nodes scraped every second. They are generated before the clock starts; the first
batch of each node (which creates its series) is timed apart from the steady state.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from collectors import SampleStore, open_database

from ._bodies import fleet_scrapes
from ._common import Options, Result, fmt_ms, fmt_rate, rate, summary_ms

NAME = "store_ingest"
NODES = 3
START_S = 1_767_000_000.0


def run(options: Options) -> Result:
    seconds = 120 if options.quick else 600
    batches = list(fleet_scrapes(nodes=NODES, seconds=seconds, start_s=START_S))
    with tempfile.TemporaryDirectory(prefix="inferops-bench-") as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'samples.db'}")
        try:
            store = SampleStore(engine)
            first_s: list[float] = []
            steady_s: list[float] = []
            for index, batch in enumerate(batches):
                started = time.perf_counter()
                store.append(batch)
                (first_s if index < NODES else steady_s).append(time.perf_counter() - started)
        finally:
            engine.dispose()
    steady_samples = sum(len(batch) for batch in batches[NODES:])
    total_samples = sum(len(batch) for batch in batches)
    steady_rate = rate(steady_samples, sum(steady_s))
    overall_rate = rate(total_samples, sum(first_s) + sum(steady_s))
    per_append = summary_ms(steady_s)
    return Result(
        params={
            "nodes": NODES,
            "seconds_of_scrapes": seconds,
            "batches": len(batches),
            "samples": total_samples,
            "samples_per_batch": total_samples / len(batches),
            "database": "SQLite (WAL) in a temporary directory",
        },
        results={
            "steady_samples_per_s": steady_rate,
            "overall_samples_per_s": overall_rate,
            "append_steady": per_append,
            "first_append_ms": [t * 1000 for t in first_s],
        },
        table=[
            ("batches", f"{len(batches):,} x ~{total_samples / len(batches):.0f} samples"),
            ("steady append rate", fmt_rate(steady_rate, "samples/s")),
            ("overall (with series creation)", fmt_rate(overall_rate, "samples/s")),
            (
                "one append p50 / p99",
                f"{fmt_ms(per_append['p50_ms'])} / {fmt_ms(per_append['p99_ms'])}",
            ),
            ("first append (new series)", fmt_ms(max(first_s) * 1000)),
        ],
    )
