"""SLO evaluation from roll-ups: 1,000 SLOs x 4 burn-rate window pairs per cycle, and the cost
of building those roll-ups from raw counter samples.

One cycle is what the control plane would do each round for every SLO: append the minute
just ended (`EventRollups.append_minute`), then the error ratio over each of the 7 distinct
windows of the SRE Workbook pairs (5m, 30m, 1h, 2h, 6h, 1d, 3d) and the page/ticket
decisions (`EventRollups.burning`), all SLOs at once from prefix sums (3 days of minutes
kept). Target: <= 50 ms a cycle. The build measures `minute_increases` over raw samples of
two counters (bad, total) per SLO scraped every 10 s: the one-off cost of filling the
roll-ups (e.g. at start) from the store's samples.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from slo import EventRollups, load_burn_rate_windows, minute_increases

from ._common import Options, Result, fmt_ms, fmt_rate, summary_ms

NAME = "slo_eval"
SLOS = 1000
CAPACITY_MINUTES = 3 * 24 * 60
SCRAPE_S = 10.0


def evaluation_cycles(cycles: int) -> dict[str, Any]:
    windows = load_burn_rate_windows("sre-workbook-v1")
    distinct = sorted(
        {round(w / 60) for pair in windows for w in (pair.long_window_s, pair.short_window_s)}
    )
    rng = np.random.default_rng(7)
    rollups = EventRollups(SLOS, capacity_minutes=CAPACITY_MINUTES)
    objectives = rng.choice([0.99, 0.995, 0.999], size=SLOS)
    total = rng.uniform(100, 10_000, size=(CAPACITY_MINUTES, SLOS)).round()
    bad = (total * rng.uniform(0, 0.002, size=SLOS)).round()
    for minute in range(CAPACITY_MINUTES):  # 3 days of history, not timed
        rollups.append_minute(bad[minute], total[minute])
    durations: list[float] = []
    pages = 0
    for cycle in range(cycles):
        minute = cycle % CAPACITY_MINUTES
        started = time.perf_counter()
        rollups.append_minute(bad[minute], total[minute])
        ratios = [rollups.error_ratios(m) for m in distinct]
        firing = rollups.burning(objectives, windows)
        durations.append(time.perf_counter() - started)
        pages += int(firing["page"].sum())
        del ratios
    return {
        "slos": SLOS,
        "window_pairs": len(windows),
        "distinct_windows_min": distinct,
        "cycles": cycles,
        "cycle": summary_ms(durations),
        "pages_seen": pages,
        "memory_mb": 2 * (CAPACITY_MINUTES + 1) * SLOS * 8 / 1e6,
    }


def rollup_build(hours: float, slos: int) -> dict[str, Any]:
    samples_per_series = int(hours * 3600 / SCRAPE_S) + 1
    times = np.arange(samples_per_series, dtype=np.float64) * SCRAPE_S
    rng = np.random.default_rng(11)
    minutes = int(times[-1] // 60)
    elapsed = 0.0
    for _ in range(slos):
        series = [
            np.cumsum(rng.poisson(lam, samples_per_series)).astype(np.float64)
            for lam in (1.0, 500.0)
        ]
        started = time.perf_counter()
        for values in series:
            minute_increases(times, values, 0.0, minutes)
        elapsed += time.perf_counter() - started
    samples = 2 * slos * samples_per_series
    return {
        "hours_of_samples": hours,
        "slos": slos,
        "series": 2 * slos,
        "samples": samples,
        "seconds": elapsed,
        "samples_per_s": samples / elapsed,
        "per_slo_per_day_ms": elapsed / slos / (hours / 24) * 1000,
    }


def run(options: Options) -> Result:
    cycles = evaluation_cycles(100 if options.quick else 1000)
    build = rollup_build(6.0 if options.quick else 72.0, 100 if options.quick else SLOS)
    three_days_s = build["per_slo_per_day_ms"] * 3 * SLOS / 1000
    return Result(
        params={
            "path": "EventRollups (numpy prefix sums) + minute_increases over raw counters",
            "windows": "sre-workbook-v1 (4 pairs, 7 distinct windows), 3 days of minutes kept",
            "scrape_interval_s": SCRAPE_S,
        },
        results={"evaluation": cycles, "build": build, "build_3d_1000_slos_s": three_days_s},
        table=[
            (
                f"cycle: {SLOS:,} SLOs x {cycles['window_pairs']} pairs",
                f"p50 {fmt_ms(cycles['cycle']['p50_ms'])}, p99 {fmt_ms(cycles['cycle']['p99_ms'])} "
                f"(target <= 50 ms); {cycles['memory_mb']:.0f} MB of roll-ups",
            ),
            (
                f"build from raw samples ({build['hours_of_samples']:g} h, {build['slos']} SLOs)",
                f"{fmt_rate(build['samples_per_s'], 'samples/s')}; "
                f"{build['per_slo_per_day_ms']:.2f} ms per SLO-day",
            ),
            ("build 3 days for 1,000 SLOs (at that rate)", f"{three_days_s:.1f} s"),
        ],
    )
