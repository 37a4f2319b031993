"""Sparse (windowed) reads across roll-ups and raw samples give exactly what a full read does."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors import Retention, SampleStore, ScrapedSample, open_database

T0 = 1_767_000_000.0  # a whole minute
HOUR = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SampleStore]:
    engine = open_database(f"sqlite:///{tmp_path}/store.db")
    yield SampleStore(engine)
    engine.dispose()


def fill(store: SampleStore) -> None:
    """Two gauges every 15 s for 4 h (value: seconds since T0); gpu 0 writes a NaN as a
    minute's last sample at 30 m 45 s, gpu 1 goes stale at 50 m 50 s for the rest of that
    minute. Compacted with raw samples kept from 3 h on."""
    samples = []
    for gpu in ("0", "1"):
        for k in range(4 * 240 + 1):
            t = T0 + 15 * k
            value = math.nan if (gpu == "0" and t == T0 + 30 * 60 + 45) else t - T0
            samples.append(ScrapedSample("g", {"gpu": gpu}, value, t))
    samples.append(ScrapedSample("g", {"gpu": "1"}, math.nan, T0 + 50 * 60 + 50, True))
    samples.sort(key=lambda s: s.timestamp_s)
    for start in range(0, len(samples), 500):
        store.append(samples[start : start + 500])
    result = Retention(store, raw_s=HOUR, rollup_s=35 * 86400).compact(T0 + 4 * HOUR)
    assert result.raw_from_s == T0 + 3 * HOUR


def in_windows(
    store: SampleStore,
    windows: tuple[float, float, float, int] | None,
    bounds: list[tuple[float, float]],
) -> dict[str, list[tuple[float, object, bool]]]:
    """Per gpu, the samples read (with `windows` or fully) that fall inside `bounds`."""
    series = store.series('g{gpu=~"0|1"}')
    out: dict[str, list[tuple[float, object, bool]]] = {}
    for one in store.samples(series, T0, T0 + 4 * HOUR, windows=windows):
        out[one.series.labels["gpu"]] = [
            (t - T0, "NaN" if math.isnan(v) else v, bool(s))
            for t, v, s in zip(
                one.timestamps_s.tolist(), one.values.tolist(), one.stale.tolist(), strict=True
            )
            if any(lo <= t <= hi for lo, hi in bounds)
        ]
    return out


def test_windows_over_rollups_and_raw_samples_read_the_same_samples_as_a_full_read(
    store: SampleStore,
) -> None:
    fill(store)
    # Windows [20 m, 35 m], [50 m, 65 m], ... [170 m, 185 m]: the last crosses into the raw
    # samples (from 3 h); the windows before raw samples begin are read from roll-ups only.
    windows = (T0 + 20 * 60, T0 + 35 * 60, 1800.0, 6)
    bounds = [(T0 + 20 * 60 + 1800 * k, T0 + 35 * 60 + 1800 * k) for k in range(6)]
    sparse = in_windows(store, windows, bounds)
    assert sparse == in_windows(store, None, bounds)
    # What a user would see: one sample per minute (its last, at 45 s) in roll-ups, the NaN
    # kept as gpu 0's value at 30 m 45 s, gpu 1's marker at 50 m 50 s, raw samples every 15 s.
    assert sparse["0"][:17] == [
        (20 * 60 + 45.0 + 60 * m, 20 * 60 + 45.0 + 60 * m, False) for m in range(10)
    ] + [(30 * 60 + 45.0, "NaN", False)] + [
        (31 * 60 + 45.0 + 60 * m, 31 * 60 + 45.0 + 60 * m, False) for m in range(4)
    ] + [(50 * 60 + 45.0, 50 * 60 + 45.0, False), (51 * 60 + 45.0, 51 * 60 + 45.0, False)]
    assert (50 * 60 + 50.0, "NaN", True) in sparse["1"]
    raw_part = [row for row in sparse["1"] if row[0] >= 3 * HOUR]
    assert raw_part == [(3 * HOUR + 15 * k, 3 * HOUR + 15 * k, False) for k in range(21)]
