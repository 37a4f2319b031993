"""Retention and 1-minute roll-ups over a real SQLite store, with exact expected values."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collectors import Retention, SampleStore, ScrapedSample, StoreSource, open_database

T0 = 1_767_000_000.0  # a whole minute
HOUR = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SampleStore]:
    engine = open_database(f"sqlite:///{tmp_path}/store.db")
    yield SampleStore(engine)
    engine.dispose()


def gauge(value: float, t: float, *, stale: bool = False) -> ScrapedSample:
    return ScrapedSample("gpu_temp_celsius", {"gpu": "0"}, value, t, stale)


def rollup_rows(store: SampleStore) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT minute_s - ?, timestamp_s - ?, value, min_value, max_value, sum_value, count,"
            " stale_timestamp_s - ? FROM metric_rollups ORDER BY series_id, minute_s",
            (T0, T0, T0),
        ).all()
    return [tuple(row) for row in rows]


def raw_times(store: SampleStore) -> list[float]:
    with store.engine.connect() as connection:
        return [
            t - T0
            for (t,) in connection.exec_driver_sql(
                "SELECT timestamp_s FROM metric_samples ORDER BY timestamp_s"
            )
        ]


def read_back(store: SampleStore, start_s: float, end_s: float) -> list[tuple[float, Any, bool]]:
    frame = store.select("gpu_temp_celsius", start_s, end_s)
    return [
        (t - T0, "NaN" if math.isnan(v) else v, bool(s))
        for t, v, s in zip(frame["timestamp_s"], frame["value"], frame["stale"], strict=True)
    ]


def test_old_minutes_become_one_rollup_each_with_last_min_max_sum_count_and_staleness(
    store: SampleStore,
) -> None:
    store.append(
        [
            gauge(1, T0),
            gauge(4, T0 + 15),
            gauge(2, T0 + 30),
            gauge(3, T0 + 45),
            gauge(5, T0 + 60),
            gauge(math.nan, T0 + 75),
            gauge(math.nan, T0 + 80, stale=True),
            gauge(7, T0 + 180),  # newer than the raw retention at compaction time
        ]
    )
    result = Retention(store, raw_s=HOUR, rollup_s=24 * HOUR).compact(T0 + HOUR + 150)
    assert (result.raw_from_s - T0, result.samples_rolled_up, result.rollups_written) == (
        120.0,
        7,
        2,
    )
    assert rollup_rows(store) == [
        (0.0, 45.0, 3.0, 1.0, 4.0, 10.0, 4, None),
        (60.0, 75.0, None, 5.0, 5.0, 5.0, 1, 80.0),
    ]
    assert raw_times(store) == [180.0]
    # Reads see the roll-ups before raw_from and the raw samples after, seamlessly.
    assert read_back(store, T0, T0 + 300) == [
        (45.0, 3.0, False),
        (75.0, "NaN", False),
        (80.0, "NaN", True),
        (180.0, 7.0, False),
    ]
    assert read_back(store, T0 + 50, T0 + 100) == [(75.0, "NaN", False), (80.0, "NaN", True)]


def test_compaction_again_does_nothing_and_old_rollups_expire(store: SampleStore) -> None:
    store.append([gauge(float(m), T0 + 60 * m + 30) for m in range(10)])
    retention = Retention(store, raw_s=60, rollup_s=300)
    first = retention.compact(T0 + 60 * 10 + 60)  # rolls minutes 0-9
    # Roll-ups are kept 300 s before now (660 s): minutes from 360 s on.
    assert (first.samples_rolled_up, first.rollups_written, first.rollups_deleted) == (10, 10, 6)
    assert [row[0] for row in rollup_rows(store)] == [360.0, 420.0, 480.0, 540.0]
    again = retention.compact(T0 + 60 * 10 + 60)
    assert (again.samples_rolled_up, again.rollups_written, again.rollups_deleted) == (0, 0, 0)
    assert read_back(store, T0, T0 + 3600) == [
        (390.0, 6.0, False),
        (450.0, 7.0, False),
        (510.0, 8.0, False),
        (570.0, 9.0, False),
    ]


def counter_store(store: SampleStore, hours: float) -> None:
    """A counter that grows by exactly 1 per second, scraped every 15 s."""
    samples = [
        ScrapedSample("tokens_total", {"node": "n0"}, float(t), T0 + t)
        for t in range(0, int(hours * HOUR) + 1, 15)
    ]
    for start in range(0, len(samples), 5000):
        store.append(samples[start : start + 5000])


def test_rate_and_increase_over_rollups_keep_prometheus_extrapolation(store: SampleStore) -> None:
    counter_store(store, 3)
    before = StoreSource(store, cache_samples=0)
    at = T0 + HOUR
    raw_answers = [before.query(q, at)[0].value for q in ("increase(tokens_total[10m])",)]
    result = Retention(store, raw_s=HOUR, rollup_s=35 * 86400).compact(T0 + 3 * HOUR)
    assert result.raw_from_s == T0 + 2 * HOUR
    assert result.rollups_written == 120
    source = StoreSource(store, cache_samples=0)
    assert source.query("count_over_time(tokens_total[10m])", at)[0].value == 10.0
    assert source.query("increase(tokens_total[10m])", at)[0].value == pytest.approx(600.0)
    assert raw_answers == [pytest.approx(600.0)]
    assert source.query("rate(tokens_total[2m])", at)[0].value == pytest.approx(1.0)
    # A range query over windows of roll-ups (up to 2 h, where raw samples begin), of both
    # and of raw samples (from 2 h + 5 m) sees one steady rate: the counter grows 1/s. At
    # 2 h 1 m the window (6960, 7260] holds 4 roll-ups (7005..7185 s, 60 s apart) and 5 raw
    # samples (7200..7260 s, 15 s apart): the 45 s before 7005 are within 1.1 x the roll-ups'
    # spacing, so the increase 7260 - 7005 = 255 extrapolates to the window's start: 300.
    series = source.query_range("rate(tokens_total[5m])", T0 + 100 * 60, T0 + 140 * 60, 60)
    rates = dict(zip(series[0].timestamps_s, series[0].values, strict=True))
    assert sorted(rates) == [T0 + m * 60 for m in range(100, 141)]
    assert list(rates.values()) == [pytest.approx(1.0, rel=1e-12)] * 41
    assert source.query("increase(tokens_total[5m])", T0 + 121 * 60)[0].value == pytest.approx(
        300.0, rel=1e-12
    )
    # Before compaction there were 40 raw samples in those 10 minutes; now 10 roll-ups.
    assert source.query("count_over_time(tokens_total[10m])", T0 + 2.5 * HOUR)[0].value == 40.0


def test_a_cached_source_rereads_what_compaction_changed(store: SampleStore) -> None:
    counter_store(store, 2)
    source = StoreSource(store)
    query = "count_over_time(tokens_total[10m])"
    assert source.query(query, T0 + HOUR)[0].value == 40.0
    Retention(store, raw_s=30 * 60, rollup_s=86400).compact(T0 + 2 * HOUR)
    assert source.query(query, T0 + HOUR)[0].value == 10.0
    assert source.query(query, T0 + 2 * HOUR)[0].value == 40.0


def test_an_empty_store_compacts_to_nothing(store: SampleStore) -> None:
    result = Retention(store, raw_s=HOUR, rollup_s=2 * HOUR).compact(T0)
    assert (result.raw_from_s, result.samples_rolled_up, result.rollups_deleted) == (
        T0 - HOUR,
        0,
        0,
    )
    store.append([gauge(1.0, T0)])
    assert read_back(store, T0 - 60, T0 + 60) == [(0.0, 1.0, False)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"raw_s": 0, "rollup_s": 60}, "raw_s must be a positive number of seconds, got 0"),
        ({"raw_s": 60, "rollup_s": math.nan}, "rollup_s must be a positive number of seconds"),
        ({"raw_s": 7200, "rollup_s": 3600}, "rollup_s (3600) must be at least raw_s (7200)"),
    ],
)
def test_retention_settings_must_make_sense(
    store: SampleStore, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Retention(store, **kwargs)
    assert str(caught.value).startswith(message)


def test_the_schema_has_the_rollup_and_retention_tables(store: SampleStore) -> None:
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"metric_rollups", "metric_retention"} <= names


def test_a_6h_rate_across_the_rollup_boundary_reads_the_exact_rate(store: SampleStore) -> None:
    counter_store(store, 8)  # 1/s, every 15 s, for 8 h
    Retention(store, raw_s=2 * HOUR, rollup_s=35 * 86400).compact(T0 + 8 * HOUR)
    source = StoreSource(store, cache_samples=0)
    # (1 h, 7 h]: roll-ups at 3645, 3705, ... 21585 s (300, each a minute's last sample),
    # raw samples at 21600, 21615, ... 25200 s (241). The first is 45 s after the window's
    # start, within 1.1 x 60 s: extrapolated to it, the increase is 25200 - 3600 = 21600.
    # (Prometheus's single average, 21555 s / 540 = 39.9 s, would stop 19.96 s short of the
    # start: 0.12 % low.)
    at = T0 + 7 * HOUR
    assert source.query("count_over_time(tokens_total[6h])", at)[0].value == 541.0
    assert source.query("increase(tokens_total[6h])", at)[0].value == pytest.approx(
        21600.0, rel=1e-12
    )
    assert source.query("rate(tokens_total[6h])", at)[0].value == pytest.approx(1.0, rel=1e-12)
    # Windows of one resolution are Prometheus's own arithmetic: all roll-ups (2 h, 4 h] ...
    assert source.query("increase(tokens_total[2h])", T0 + 4 * HOUR)[0].value == pytest.approx(
        7200.0, rel=1e-12
    )
    # ... and, with an irregular start, the threshold still applies: a window whose first
    # roll-up is 59 s after its start keeps the whole 59 s (under 66 s).
    assert source.query(
        "increase(tokens_total[10m])", T0 + 3 * HOUR - 14
    )[0].value == pytest.approx(600.0, rel=1e-12)


def test_a_sparse_range_query_reads_only_its_windows_and_agrees_with_instant_queries(
    store: SampleStore,
) -> None:
    counter_store(store, 8)
    store.append([ScrapedSample("tokens_total", {"node": "n0"}, math.nan, T0 + 3 * HOUR + 7,
                                stale=True)])  # a marker inside a rolled-up minute
    Retention(store, raw_s=2 * HOUR, rollup_s=35 * 86400).compact(T0 + 8 * HOUR)
    source = StoreSource(store, cache_samples=0)
    # Windows of 5 minutes every 30 minutes: a sparse read, across roll-ups and raw samples.
    for expr in ("rate(tokens_total[5m])", "count_over_time(tokens_total[5m])"):
        (series,) = source.query_range(expr, T0 + HOUR, T0 + 8 * HOUR, 1800)
        assert len(series.timestamps_s) == 15
        for at, value in zip(series.timestamps_s, series.values, strict=True):
            assert source.query(expr, at)[0].value == value, (expr, at - T0)
    (counts,) = source.query_range("count_over_time(tokens_total[5m])", T0 + HOUR,
                                   T0 + 8 * HOUR, 1800)
    # 5 roll-ups per window up to 5 h 30 m; at 6 h (raw from 6 h) 5 roll-ups and the raw
    # sample at 6 h; from 6 h 30 m on, 20 raw samples (every 15 s).
    assert counts.values == (5.0,) * 10 + (6.0,) + (20.0,) * 4
