"""The same store on a real PostgreSQL (a throwaway cluster), when PostgreSQL is installed."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collectors import SampleStore, ScrapedSample, StoreSource, open_database

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = open_database(postgres_url)
    with engine.begin() as connection:
        for table in (
            "metric_samples",
            "metric_series",
            "metric_writes",
            "metric_rollups",
            "metric_retention",
            "metric_samples_head",
            "metric_exemplars",
            "inferops_sample_store_version",
        ):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    yield engine
    engine.dispose()


def test_round_trip_on_postgresql(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    store.append(
        [
            ScrapedSample("g", {"job": "a"}, 1.5, 10.0),
            ScrapedSample("g", {"job": "a"}, math.inf, 11.0),
            ScrapedSample("g", {"job": "a"}, math.nan, 12.0),
            ScrapedSample("g", {"job": "a"}, math.nan, 13.0, stale=True),
        ]
    )
    frame = store.select('g{job="a"}', 0, 20)
    assert frame["stale"].tolist() == [False, False, False, True]
    assert frame["value"].tolist()[:2] == [1.5, math.inf]
    assert math.isnan(frame["value"].tolist()[2])


def test_concurrent_writers_share_series_ids_on_postgresql(
    engine: sa.Engine, postgres_url: str
) -> None:
    engines = [open_database(postgres_url) for _ in range(4)]
    stores = [SampleStore(e) for e in engines]
    try:
        def write(index: int) -> None:
            for t in range(30):
                stores[index].append(
                    [ScrapedSample("c_total", {"k": str(k)}, float(t), t + index / 10)
                     for k in range(5)]
                )

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(SampleStore(engine).series("c_total")) == 5
        assert len(SampleStore(engine).select("c_total", 0, 100)) == 4 * 30 * 5
    finally:
        for one in engines:
            one.dispose()


def test_promql_and_the_cache_on_postgresql(engine: sa.Engine) -> None:
    store = SampleStore(engine)
    store.append([ScrapedSample("c_total", {"node": "n"}, 10.0 * t, float(t)) for t in range(101)])
    source = StoreSource(store)
    assert [(s.labels, s.value) for s in source.query("sum by (node) (rate(c_total[10s]))", 100)
            ] == [({"node": "n"}, pytest.approx(10.0))]
    store.append([ScrapedSample("c_total", {"node": "n"}, 0.0, 95.5)])  # late: a reset
    uncached = StoreSource(store, cache_samples=0)
    assert source.query("increase(c_total[10s])", 100)[0].value == pytest.approx(
        uncached.query("increase(c_total[10s])", 100)[0].value
    )


def test_migrations_and_compaction_on_postgresql(engine: sa.Engine) -> None:
    from collectors import Retention
    from collectors._migrations import current_revision

    store = SampleStore(engine)
    with engine.connect() as connection:
        assert current_revision(connection) == "0003"
    store.append([ScrapedSample("c", {"job": "a"}, float(t), 600.0 + t) for t in range(0, 180, 15)])
    result = Retention(store, raw_s=60, rollup_s=3600).compact(600.0 + 240)
    assert (result.raw_from_s, result.samples_rolled_up, result.rollups_written) == (780.0, 12, 3)
    frame = store.select("c", 0, 2000)
    assert list(zip(frame["timestamp_s"], frame["value"], strict=True)) == [
        (645.0, 45.0),
        (705.0, 105.0),
        (765.0, 165.0),
    ]


def test_a_big_batch_goes_through_copy_with_exemplars_on_postgresql(engine: sa.Engine) -> None:
    from collectors import Exemplar, ExemplarSeries

    store = SampleStore(engine)
    batch = [
        ScrapedSample("big_total", {"k": str(k)}, float(k), 1000.0,
                      exemplar=Exemplar({"trace_id": f"t{k}"}, 0.5, 999.5) if k < 2 else None)
        for k in range(300)
    ]
    store.append(batch)
    store.append(batch)  # the same again: the first samples stay, no second exemplar
    store.append([ScrapedSample("big_total", {"k": "0"}, 7.0, 1000.0)])  # same time: ignored
    frame = store.select("big_total", 0, 2000)
    assert len(frame) == 300
    assert sorted(frame["value"].tolist()) == [float(k) for k in range(300)]
    assert StoreSource(store).query_exemplars('big_total{k=~"0|1|2"}', 0, 2000) == [
        ExemplarSeries({"__name__": "big_total", "k": "0"},
                       (Exemplar({"trace_id": "t0"}, 0.5, 999.5),)),
        ExemplarSeries({"__name__": "big_total", "k": "1"},
                       (Exemplar({"trace_id": "t1"}, 0.5, 999.5),)),
    ]
