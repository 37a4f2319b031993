"""StoreSource's sample cache: a query asked again reads only what changed, and never misses
a write, whichever process made it and however old its timestamps."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collectors import SampleStore, ScrapedSample, StoreSource, open_database

QUERIES = [
    "g",
    "sum(rate(c_total[30s]))",
    "max_over_time(g[1m])",
    "count_over_time(c_total[10m])",
    "sum by (k) (increase(c_total[2m]))",
]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = open_database(f"sqlite:///{tmp_path}/store.db")
    yield engine
    engine.dispose()


def snapshot(source: StoreSource, at: float) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {q: [(dict(s.labels), round(s.value, 9)) for s in source.query(q, at)]
            for q in QUERIES}


def test_cached_answers_equal_uncached_ones_under_random_writes(database: sa.Engine) -> None:
    """Writes in and out of order, from this and from another engine, between queries."""
    rng = random.Random(7)
    store = SampleStore(database)
    other_engine = sa.create_engine(database.url)  # a second "process" on the same file
    other = SampleStore(other_engine)
    cached = StoreSource(store)
    uncached = StoreSource(store, cache_samples=0)
    counters = {"a": 0.0, "b": 0.0}
    try:
        for round_ in range(60):
            writer = store if rng.random() < 0.5 else other
            t = round_ * 5.0 + rng.choice([0.0, 0.0, -30.0, -200.0])  # some writes are late
            batch = []
            for k in counters:
                counters[k] += rng.uniform(0, 10)
                batch.append(ScrapedSample("c_total", {"k": k}, counters[k], t + rng.random()))
            batch.append(ScrapedSample("g", {"k": "a"}, rng.uniform(0, 100), t + 0.5,
                                       stale=rng.random() < 0.1))
            writer.append(batch)
            at = rng.choice([t, t + 3.0, round_ * 5.0, max(0.0, t - 100.0)])
            assert snapshot(cached, at) == snapshot(uncached, at), (round_, at)
    finally:
        other_engine.dispose()


def test_a_repeated_query_reads_only_the_new_samples(
    database: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SampleStore(database)
    store.append([ScrapedSample("c_total", {}, float(t), float(t)) for t in range(3600)])
    source = StoreSource(store)
    assert source.query("rate(c_total[30d])", 3600.0)[0].value == pytest.approx(3600 / 2592000)

    rows: list[int] = []
    original = SampleStore.samples

    def counting(self: SampleStore, series: Any, start_s: float, end_s: float) -> Any:
        out = original(self, series, start_s, end_s)
        rows.append(sum(len(one.values) for one in out))
        return out

    monkeypatch.setattr(SampleStore, "samples", counting)
    store.append([ScrapedSample("c_total", {}, 3600.0, 3600.0)])
    assert source.query("rate(c_total[30d])", 3601.0)[0].value == pytest.approx(3601 / 2592000)
    assert sum(rows) <= 2  # the new sample (and the boundary one), not the hour


def test_the_cache_starts_over_when_the_write_log_was_pruned(database: sa.Engine) -> None:
    store = SampleStore(database)
    store.append([ScrapedSample("g", {}, 1.0, 10.0)])
    source = StoreSource(store)
    assert source.query("g", 20.0)[0].value == 1.0
    store.append([ScrapedSample("g", {}, 2.0, 15.0)])  # out of order, before what was read
    with database.begin() as connection:  # as if many appends later the log was pruned
        connection.exec_driver_sql("DELETE FROM metric_writes")
        connection.exec_driver_sql(
            "INSERT INTO metric_writes (id, min_timestamp_s, max_timestamp_s) VALUES (99, 0, 0)"
        )
    assert source.query("g", 20.0)[0].value == 2.0


def test_a_small_cache_evicts_and_still_answers(database: sa.Engine) -> None:
    store = SampleStore(database)
    store.append(
        [ScrapedSample("c_total", {"k": str(k)}, float(t), float(t))
         for k in range(5) for t in range(200)]
    )
    source = StoreSource(store, cache_samples=300)
    for _ in range(3):
        for k in range(5):
            [sample] = source.query(f'rate(c_total{{k="{k}"}}[1m])', 199.0)
            assert sample.value == pytest.approx(1.0)
        assert len(source.query("rate(c_total[1m])", 199.0)) == 5


def test_queries_from_many_threads_while_a_writer_appends(database: sa.Engine) -> None:
    store = SampleStore(database)
    store.append([ScrapedSample("c_total", {"k": "a"}, 10.0 * t, float(t)) for t in range(100)])
    source = StoreSource(store)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        for t in range(100, 200):
            store.append([ScrapedSample("c_total", {"k": "a"}, 10.0 * t, float(t))])
        done.set()

    def read() -> None:
        try:
            while not done.is_set():
                [sample] = source.query("rate(c_total[10s])", 99.0)
                assert sample.value == pytest.approx(10.0)
                [line] = source.query_range("rate(c_total[10s])", 50.0, 99.0, 7.0)
                assert line.values == pytest.approx([10.0] * len(line.values))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(6)] + [threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert source.query("rate(c_total[10s])", 199.0)[0].value == pytest.approx(10.0)
