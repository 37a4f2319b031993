"""`histogram_quantile` and `rate` over 30 days of 15-s data for 100 series, from the store.

The store holds what 30 days of 15-s scrapes become under the default retention: raw
samples for the last 6 hours and 1-minute roll-ups before (what `Retention.compact` writes;
here inserted in bulk, as generating 30 days through `append` would take minutes). Two
metrics of 100 series each: a counter `x{instance}` and a histogram's buckets
`x_bucket{instance, le}` (10 instances x 10 buckets), all growing steadily.

Each query is asked on a fresh `StoreSource` (cold: nothing cached), `repeats` times; the
median is reported. The range queries cover the 30 days at a 1-hour step (721 points, what
a dashboard's month view asks for); the instant ones are at the end of the 30 days.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from collectors import SampleStore, ScrapedSample, StoreSource, open_database

from ._common import Options, Result, fmt_ms

NAME = "promql_30d"
DAY = 86400.0
END_S = 1_767_225_600.0  # a whole hour
RAW_S = 6 * 3600.0
SCRAPE_S = 15.0
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "25", "+Inf")
INSTANCES = 10

QUERIES = {
    "rate instant": ("rate(x[5m])", "instant"),
    "histogram_quantile instant": (
        "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
        "instant",
    ),
    "rate 30d range, 1h step": ("rate(x[5m])", "range"),
    "histogram_quantile 30d range, 1h step": (
        "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
        "range",
    ),
}


def series_rates() -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, increase per second) of the 200 series."""
    out: list[tuple[str, dict[str, str], float]] = [
        ("x", {"instance": f"i-{i:02d}"}, 1.0 + i / 10) for i in range(100)
    ]
    for i in range(INSTANCES):
        for j, le in enumerate(BUCKETS):
            out.append(("x_bucket", {"instance": f"i-{i}", "le": le}, (j + 1) * (1 + i / 10)))
    return out


def fill(store: SampleStore, days: float) -> int:
    """Bulk-write `days` of roll-ups and raw samples; the rows written."""
    start = END_S - days * DAY
    raw_from = END_S - RAW_S
    specs = series_rates()
    store.append([ScrapedSample(name, labels, 0.0, start - 3600) for name, labels, _ in specs])
    ids = [s.id for s in store.series('{__name__=~"x|x_bucket"}')]
    by_key = {
        (s.name, tuple(sorted(s.labels.items()))): s.id
        for s in store.series('{__name__=~"x|x_bucket"}')
    }
    assert len(ids) == len(specs)
    minutes = np.arange(start, raw_from, 60.0)
    last_in_minute = minutes + 60.0 - SCRAPE_S
    raw_times = np.arange(raw_from, END_S + 1, SCRAPE_S)
    rows = 0
    with store.engine.begin() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        mark = "?" if store.engine.dialect.name == "sqlite" else "%s"
        for name, labels, per_s in specs:
            series_id = by_key[(name, tuple(sorted(labels.items())))]
            values = (last_in_minute - start) * per_s
            first = (minutes - start) * per_s
            cursor.executemany(
                "INSERT INTO metric_rollups (series_id, minute_s, timestamp_s, value,"
                " min_value, max_value, sum_value, count, stale_timestamp_s)"
                f" VALUES ({', '.join([mark] * 9)})",
                list(
                    zip(
                        [series_id] * len(minutes),
                        minutes.tolist(),
                        last_in_minute.tolist(),
                        values.tolist(),
                        first.tolist(),
                        values.tolist(),
                        (2 * first + 3 * per_s * SCRAPE_S).tolist(),
                        [4] * len(minutes),
                        [None] * len(minutes),
                        strict=True,
                    )
                ),
            )
            cursor.executemany(
                "INSERT INTO metric_samples (series_id, timestamp_s, value, stale)"
                f" VALUES ({mark}, {mark}, {mark}, {mark})",
                [(series_id, t, (t - start) * per_s, False) for t in raw_times.tolist()],
            )
            rows += len(minutes) + len(raw_times)
        cursor.execute(
            f"INSERT INTO metric_retention (id, raw_from_s) VALUES (1, {mark})", (raw_from,)
        )
        cursor.close()
    return rows


def run(options: Options) -> Result:
    days = 30.0
    repeats = 3 if options.quick else 7
    results: dict[str, Any] = {}
    table: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="inferops-bench-") as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'samples.db'}")
        try:
            store = SampleStore(engine)
            started = time.perf_counter()
            rows = fill(store, days)
            fill_s = time.perf_counter() - started
            for label, (expr, kind) in QUERIES.items():
                times = []
                answer: Any = None
                for _ in range(repeats):
                    source = StoreSource(store)
                    began = time.perf_counter()
                    if kind == "instant":
                        answer = source.query(expr, END_S)
                    else:
                        answer = source.query_range(expr, END_S - days * DAY, END_S, 3600.0)
                    times.append(time.perf_counter() - began)
                median = statistics.median(times)
                points = (
                    len(answer)
                    if kind == "instant"
                    else sum(len(series.values) for series in answer)
                )
                results[label] = {
                    "expr": expr,
                    "kind": kind,
                    "median_ms": median * 1000,
                    "min_ms": min(times) * 1000,
                    "points_in_answer": points,
                }
                table.append((label, f"{fmt_ms(median * 1000)} (min {fmt_ms(min(times) * 1000)})"))
        finally:
            engine.dispose()
    table.append(("data", f"{rows:,} rows written in {fill_s:.1f} s"))
    return Result(
        params={
            "days": days,
            "series_per_query": 100,
            "scrape_interval_s": SCRAPE_S,
            "raw_retention_s": RAW_S,
            "range_step_s": 3600.0,
            "repeats": repeats,
            "database": "SQLite (WAL) in a temporary directory",
            "rows": rows,
        },
        results=results,
        table=table,
    )
