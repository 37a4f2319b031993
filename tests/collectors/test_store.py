"""open_database and SampleStore over a real SQLite file."""

from __future__ import annotations

import math
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectors import SampleStore, ScrapedSample, StoreError, open_database
from collectors._store_matchers import LabelMatcher


@pytest.fixture
def database(tmp_path: Path) -> sa.Engine:
    engine = open_database(f"sqlite:///{tmp_path}/data/store.db")
    yield engine
    engine.dispose()


@pytest.fixture
def store(database: sa.Engine) -> SampleStore:
    return SampleStore(database)


def sample(name: str, value: float, t: float, stale: bool = False, **labels: str) -> ScrapedSample:
    return ScrapedSample(name=name, labels=labels, value=value, timestamp_s=t, stale=stale)


# -- open_database -----------------------------------------------------------------------


def test_sqlite_creates_the_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "inferops.db"
    engine = open_database(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        engine.dispose()
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    engine = open_database("sqlite://")
    store = SampleStore(engine)
    worker = threading.Thread(target=store.append, args=([sample("up", 1, 10.0, job="a")],))
    worker.start()
    worker.join()
    assert store.select("up", 0, 20)["value"].tolist() == [1.0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:hunter2@db/x", "unsupported database URL mysql://root:***@db/x"),
        ("not a url", "not a database URL"),
        (
            "postgresql+psycopg://inferops:hunter2@127.0.0.1:1/inferops",
            "cannot open database postgresql+psycopg://inferops:***@127.0.0.1:1/inferops",
        ),
    ],
)
def test_bad_urls_raise_store_error_without_the_password(url: str, expected: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_database(url)
    assert expected in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_an_unwritable_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot"):
        open_database(f"sqlite:///{blocker}/sub/store.db")


def test_other_components_create_their_tables_on_the_same_engine(database: sa.Engine) -> None:
    SampleStore(database)
    metadata = sa.MetaData()
    sa.Table("alerts", metadata, sa.Column("id", sa.Integer, primary_key=True))
    metadata.create_all(database)
    SampleStore(database)  # idempotent
    names = set(sa.inspect(database).get_table_names())
    assert {"metric_series", "metric_samples", "alerts"} <= names


# -- SampleStore ---------------------------------------------------------------------------


def test_round_trip_keeps_values_staleness_nan_and_infinities(store: SampleStore) -> None:
    store.append(
        [
            sample("g", 1.5, 10.0, job="a"),
            sample("g", math.inf, 11.0, job="a"),
            sample("g", -math.inf, 12.0, job="a"),
            sample("g", math.nan, 13.0, job="a"),
            sample("g", math.nan, 14.0, stale=True, job="a"),
            sample("g", 2.0, 15.0, job="a"),
        ]
    )
    frame = store.select('g{job="a"}', 10.0, 15.0)
    assert frame["timestamp_s"].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    assert frame["stale"].tolist() == [False, False, False, False, True, False]
    values = frame["value"].tolist()
    assert values[:3] == [1.5, math.inf, -math.inf]
    assert math.isnan(values[3]) and math.isnan(values[4])  # a NaN value and a marker
    assert values[5] == 2.0
    assert frame["name"].unique().tolist() == ["g"]
    assert frame["labels"].iloc[0] == {"job": "a"}


def test_select_range_is_inclusive_and_sorted(store: SampleStore) -> None:
    store.append([sample("g", float(t), float(t), job="a") for t in (5, 3, 1, 4, 2)])
    assert store.select("g", 2.0, 4.0)["timestamp_s"].tolist() == [2.0, 3.0, 4.0]
    assert store.select("g", 10.0, 20.0).empty
    assert list(store.select("nothing", 0, 1).columns) == [
        "series_id",
        "name",
        "labels",
        "timestamp_s",
        "value",
        "stale",
    ]


def test_a_duplicate_timestamp_keeps_the_first_value(store: SampleStore) -> None:
    store.append([sample("g", 1.0, 10.0, job="a")])
    store.append([sample("g", 2.0, 10.0, job="a"), sample("g", 3.0, 11.0, job="a")])
    assert store.select("g", 0, 20)["value"].tolist() == [1.0, 3.0]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ('up{job="nodes"}', ["node-0", "node-1", "router"]),
        ('up{job="nodes",node!="node-0"}', ["node-1", "router"]),
        ('up{node=~"node-.*"}', ["node-0", "node-1"]),
        ('up{node!~"node-[01]"}', ["router"]),
        ('up{zone=""}', ["node-0", "node-1"]),  # a missing label matches ""
        ('up{zone!=""}', ["router"]),
        ('{__name__=~"up|down"}', ["node-0", "node-1", "router", "x"]),
        ('{__name__!="up",job="nodes"}', ["x"]),
        ('{__name__=~"u."}', ["node-0", "node-1", "router"]),  # anchored: not "up_total"
        ('up{node="node-0" or zone="z"}', ["node-0", "router"]),
    ],
)
def test_matchers(store: SampleStore, selector: str, expected: list[str]) -> None:
    store.append(
        [
            sample("up", 1, 1.0, job="nodes", node="node-0"),
            sample("up", 1, 1.0, job="nodes", node="node-1"),
            sample("up", 1, 1.0, job="nodes", node="router", zone="z"),
            sample("down", 1, 1.0, job="nodes", node="x"),
            sample("up_total", 1, 1.0, job="other", node="y"),
        ]
    )
    found = sorted(s.labels["node"] for s in store.series(selector))
    assert found == expected


def test_matchers_as_objects(store: SampleStore) -> None:
    store.append([sample("up", 1, 1.0, job="a"), sample("up", 1, 1.0, job="b")])
    matchers = [LabelMatcher("__name__", "=", "up"), LabelMatcher("job", "=~", "a|c")]
    assert [s.labels for s in store.series(matchers)] == [{"job": "a"}]


def test_series_ids_are_shared_by_stores_on_one_file(tmp_path: Path) -> None:
    """Two processes (here: two engines) that meet one new series agree on its id."""
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = open_database(url), open_database(url)
    try:
        a, b = SampleStore(first), SampleStore(second)
        a.append([sample("up", 1, 1.0, job="x")])
        b.append([sample("up", 0, 2.0, job="x"), sample("up", 1, 2.0, job="y")])
        a.append([sample("up", 1, 3.0, job="y")])
        frame = a.select("up", 0, 10)
        assert sorted(frame["series_id"].unique().tolist()) == [1, 2]
        by_job = {row.labels["job"]: row.series_id for row in frame.itertuples()}
        assert by_job == {"x": 1, "y": 2}
        assert len(frame) == 4
    finally:
        first.dispose()
        second.dispose()


def test_concurrent_appends_from_threads_all_land(store: SampleStore) -> None:
    def write(worker: int) -> None:
        for batch in range(20):
            store.append(
                [
                    sample("c", float(batch), float(batch), worker=str(worker), series=str(k))
                    for k in range(10)
                ]
                + [sample("shared", float(worker), float(worker * 100 + batch), job="x")]
            )

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.select("c", 0, 100)) == 8 * 20 * 10
    assert len(store.select("shared", 0, 10_000)) == 8 * 20
    assert len(store.series("c")) == 80


def test_a_failed_write_raises_store_error_and_writes_nothing(store: SampleStore) -> None:
    with pytest.raises(StoreError, match="non-finite timestamp"):
        store.append([sample("g", 1.0, 1.0, job="a"), sample("g", 1.0, math.nan, job="a")])
    assert store.select("g", 0, 10).empty
    store.append([sample("g", 1.0, 1.0, job="a")])  # the store still works
    assert len(store.select("g", 0, 10)) == 1


def test_a_broken_database_is_a_store_error(store: SampleStore, database: sa.Engine) -> None:
    store.append([sample("g", 1.0, 1.0, job="a")])
    with database.begin() as connection:
        connection.exec_driver_sql("DROP TABLE metric_samples")
        connection.exec_driver_sql("DROP TABLE metric_samples_head")
    with pytest.raises(StoreError, match="cannot write 1 samples"):
        store.append([sample("g", 1.0, 2.0, job="a")])
    with pytest.raises(StoreError, match="cannot read samples"):
        store.select("g", 0, 10)
