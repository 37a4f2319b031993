"""The sample store's write steps that are not the append loop itself.

New series ids (insert-or-get by fingerprint, race-safe between processes), exemplars
stored once each, and PostgreSQL's `COPY` writer. `SampleStore.append` calls them inside its
one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ._exceptions import StoreError
from ._sample import ScrapedSample
from ._store_schema import series_table, writes_table
from ._store_types import canonical_labels, fingerprint

__all__ = [
    "WRITE_LOG_KEEP",
    "WriteStatements",
    "copy_rows",
    "insert_series_ids",
    "log_write",
    "sorted_series_key",
    "write_exemplars",
    "write_statements",
]

WRITE_LOG_KEEP = 100_000
"""Rows of `metric_writes` kept; older ones are pruned now and then."""

_ID_CHUNK = 500
"""Series ids per `IN (...)`: far below SQLite's and PostgreSQL's parameter limits."""


def insert_series_ids(
    connection: sa.Connection,
    insert_series: Any,
    keys: Iterable[tuple[str, tuple[tuple[str, str], ...]]],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """Insert-or-get: race-safe between processes thanks to the unique fingerprint."""
    by_fingerprint: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
    rows = []
    for key in sorted(keys):
        name, label_items = key
        labels_json = canonical_labels(dict(label_items))
        fp = fingerprint(name, labels_json)
        by_fingerprint[fp] = key
        rows.append({"name": name, "labels": labels_json, "fingerprint": fp})
    connection.execute(insert_series, rows)
    found: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    prints = list(by_fingerprint)
    for start in range(0, len(prints), _ID_CHUNK):
        chunk = prints[start : start + _ID_CHUNK]
        query = sa.select(series_table.c.id, series_table.c.fingerprint).where(
            series_table.c.fingerprint.in_(chunk)
        )
        for series_id, fp in connection.execute(query):
            found[by_fingerprint[fp]] = int(series_id)
    if len(found) != len(by_fingerprint):
        raise StoreError("series were inserted but cannot be read back")
    return found


def write_exemplars(
    connection: sa.Connection,
    insert_sql: str,
    last: Mapping[int, tuple[str, float, float | None]],
    samples: Sequence[ScrapedSample],
    rows: list[tuple[Any, float, float | None, bool]],
) -> dict[int, tuple[str, float, float | None]]:
    """Store the exemplars of `samples`, each once: one the same as the last stored for
    its series (a target repeats its exemplar on every scrape) is skipped. Gives what
    is the last exemplar of each series once the transaction commits."""
    seen: dict[int, tuple[str, float, float | None]] = {}
    new: list[tuple[int, float, float, str]] = []
    for sample, row in zip(samples, rows, strict=True):
        exemplar = sample.exemplar
        if exemplar is None:
            continue
        labels_json = canonical_labels(exemplar.labels)
        value = float(exemplar.value)
        identity = (labels_json, value, exemplar.timestamp_s)
        series_id = int(row[0])
        if seen.get(series_id, last.get(series_id)) == identity:
            continue
        seen[series_id] = identity
        at = row[1] if exemplar.timestamp_s is None else float(exemplar.timestamp_s)
        if not math.isfinite(at):
            raise StoreError(f"the exemplar of {sample.name} has a non-finite timestamp {at!r}")
        at = int(at * 1000) / 1000  # whole milliseconds, cut as Prometheus cuts them
        new.append((series_id, at, value, labels_json))
    if new:
        rows_sql = [(i, t, None if v != v else v, labels) for i, t, v, labels in new]
        connection.exec_driver_sql(insert_sql, rows_sql)
    return seen


def sorted_series_key(sample: ScrapedSample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (sample.name, tuple(sorted(sample.labels.items())))


def copy_rows(driver: Any, rows: list[tuple[Any, float, float | None, bool]]) -> None:
    """PostgreSQL: `COPY` into a temporary table, then one `INSERT ... ON CONFLICT DO NOTHING`
    (COPY itself cannot skip a sample already stored)."""
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS inferops_incoming_samples"
            " (series_id integer, timestamp_s double precision, value double precision,"
            " stale boolean) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(
            "COPY inferops_incoming_samples (series_id, timestamp_s, value, stale) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO metric_samples (series_id, timestamp_s, value, stale)"
            " SELECT series_id, timestamp_s, value, stale FROM inferops_incoming_samples"
            " ON CONFLICT DO NOTHING"
        )


def log_write(connection: sa.Connection, low: float, high: float) -> None:
    """Record one write's time range in `metric_writes`, so readers' caches learn of it."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE metric_writes IN SHARE ROW EXCLUSIVE MODE")
    result = connection.execute(
        writes_table.insert().values(min_timestamp_s=low, max_timestamp_s=high)
    )
    new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    if new_id is not None and new_id % 1000 == 0:
        connection.execute(
            writes_table.delete().where(writes_table.c.id <= new_id - WRITE_LOG_KEEP)
        )


@dataclass(frozen=True, slots=True)
class WriteStatements:
    """The dialect's statements for a new series, sample rows and exemplars."""

    insert_series: Any
    insert_rows_sql: str
    insert_exemplars_sql: str


def write_statements(dialect: str) -> WriteStatements:
    """SQLite appends into the head table (see `_store_head`); PostgreSQL into the samples,
    skipping a sample already stored. Anything else: `StoreError`."""
    if dialect == "sqlite":
        insert_series: Any = sqlite.insert(series_table).on_conflict_do_nothing(
            index_elements=["fingerprint"]
        )
        rows_sql = (
            "INSERT INTO metric_samples_head (series_id, timestamp_s, value, stale)"
            " VALUES (?, ?, ?, ?)"
        )
        exemplars_sql = (
            "INSERT OR IGNORE INTO metric_exemplars (series_id, timestamp_s, value, labels)"
            " VALUES (?, ?, ?, ?)"
        )
    elif dialect == "postgresql":
        insert_series = postgresql.insert(series_table).on_conflict_do_nothing(
            index_elements=["fingerprint"]
        )
        rows_sql = (
            "INSERT INTO metric_samples (series_id, timestamp_s, value, stale)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
        )
        exemplars_sql = (
            "INSERT INTO metric_exemplars (series_id, timestamp_s, value, labels)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
        )
    else:
        raise StoreError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
    return WriteStatements(insert_series, rows_sql, exemplars_sql)
