"""Alembic migrations of the sample store: new, pre-migration and too-new databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from collectors import Retention, SampleStore, ScrapedSample, StoreError, open_database
from collectors._migrations import VERSION_TABLE, current_revision, head_revision
from collectors._store import canonical_labels, fingerprint
from collectors._store_schema import metadata, samples_table, series_table, writes_table

T0 = 1_767_000_000.0


def test_a_new_database_gets_every_revision_and_matches_the_schema(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/new.db")
    try:
        SampleStore(engine)
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision() == "0003"
            context = MigrationContext.configure(connection)
            differences = [
                d for d in compare_metadata(context, metadata) if VERSION_TABLE not in str(d)
            ]
        assert differences == []
    finally:
        engine.dispose()


def test_a_database_from_before_migrations_is_upgraded_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old = open_database(f"sqlite:///{path}")
    # Exactly what SampleStore created before Alembic: its three tables, no version table.
    metadata.create_all(old, tables=[series_table, samples_table, writes_table])
    labels = canonical_labels({"job": "nodes"})
    with old.begin() as connection:
        connection.execute(
            series_table.insert().values(
                id=7, name="up", labels=labels, fingerprint=fingerprint("up", labels)
            )
        )
        connection.exec_driver_sql(
            "INSERT INTO metric_samples (series_id, timestamp_s, value, stale)"
            f" VALUES (7, {T0}, 1.0, 0), (7, {T0 + 15}, 0.0, 0)"
        )
    old.dispose()

    engine = open_database(f"sqlite:///{path}")
    try:
        store = SampleStore(engine)
        with engine.connect() as connection:
            assert current_revision(connection) == "0003"
            assert {"metric_rollups", "metric_retention"} <= set(
                sa.inspect(connection).get_table_names()
            )
        frame = store.select('up{job="nodes"}', T0, T0 + 60)
        assert list(zip(frame["series_id"], frame["timestamp_s"], frame["value"], strict=True)) == [
            (7, T0, 1.0),
            (7, T0 + 15, 0.0),
        ]
        # The upgraded store works as a new one: appends, and compaction into roll-ups.
        store.append([ScrapedSample("up", {"job": "nodes"}, 1.0, T0 + 30)])
        result = Retention(store, raw_s=60, rollup_s=3600).compact(T0 + 200)
        assert (result.samples_rolled_up, result.rollups_written) == (3, 1)
        assert store.select("up", T0, T0 + 60)["value"].tolist() == [1.0]
        # Opening it again finds it at head and changes nothing.
        SampleStore(engine)
        with engine.connect() as connection:
            versions = connection.exec_driver_sql(f"SELECT * FROM {VERSION_TABLE}").all()
        assert [tuple(v) for v in versions] == [("0003",)]
    finally:
        engine.dispose()


def test_a_database_from_a_newer_inferops_is_refused(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/newer.db")
    try:
        SampleStore(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '0099'")
        with pytest.raises(StoreError) as caught:
            SampleStore(engine)
        assert str(caught.value) == (
            "the sample store's schema is at revision '0099', which this InferOps does not "
            "know (its newest is '0003'): it was written by a newer version"
        )
    finally:
        engine.dispose()


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    engines = [open_database(url) for _ in range(4)]
    errors: list[BaseException] = []

    def open_store(engine: sa.Engine) -> None:
        try:
            SampleStore(engine).append([ScrapedSample("up", {}, 1.0, T0)])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_store, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with engines[0].connect() as connection:
            assert connection.exec_driver_sql(f"SELECT * FROM {VERSION_TABLE}").all() == [
                ("0003",)
            ]
        # Four writers wrote the same sample: the store keeps one (the first).
        assert len(SampleStore(engines[0]).select("up", T0, T0)) == 1
    finally:
        for engine in engines:
            engine.dispose()
