"""The sample store: series and their samples in SQL tables.

Schema (defined in `_store_schema`, created or upgraded with Alembic on first use by
`_migrations`, on whatever engine `open_database` gave; roll-ups of old samples and their
reading are in `_retention` and `_store_rollups`):

- `metric_series(id, name, labels, fingerprint)`: one row per series. `labels` is the
  canonical JSON of the labels without `__name__` (keys sorted, compact); `fingerprint` is
  the SHA-256 of the name and that JSON, unique, so two processes that meet the same new
  series agree on one id (insert-or-ignore, then read the id back).
- `metric_samples(series_id, timestamp_s, value, stale)`: primary key (series_id,
  timestamp_s), so a range read is one index range per series (on SQLite the table itself
  is that index: WITHOUT ROWID). A second sample for a series at the same timestamp is
  ignored: the first one written wins, as a re-sent batch must not duplicate samples.
- `metric_writes(id, min_timestamp_s, max_timestamp_s)`: one row per `append`, in commit
  order, so that a reader's cache (`StoreSource`) learns which time range changed since it
  last looked, whichever process wrote. On PostgreSQL an append locks this table so that
  ids follow commit order; SQLite serializes writers anyway.
- `metric_samples_head`: on SQLite, appends land here first and are merged into
  `metric_samples` in bulk (see `_store_head`: why, and how reads see both).
- `metric_exemplars(series_id, timestamp_s, value, labels)`: exemplars of appended samples.

Encoding of values: `stale` is true for a Prometheus staleness marker (its `value` is
NULL). A real NaN is stored as NULL with `stale` false, because SQLite cannot store NaN
(it turns it into NULL); both read back as NaN, the `stale` flag telling them apart.
Infinities are stored as they are.
"""

from __future__ import annotations

import json
import math
import operator
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ._exceptions import QueryError, StoreError
from ._migrations import upgrade_store_schema
from ._sample import FrozenLabels, ScrapedSample
from ._store_head import HEAD_MERGE_ROWS, head_rows, merge_head
from ._store_matchers import LabelMatcher, SeriesMatcher, parse_matchers
from ._store_rollups import Windows, read_rows
from ._store_schema import retention_table, series_table, writes_table
from ._store_types import (
    BoolArray,
    Changes,
    FloatArray,
    SeriesSamples,
    StoredSeries,
    canonical_labels,
    database_error_reason,
    fingerprint,
    samples_frame,
)
from ._store_writes import (
    copy_rows,
    insert_series_ids,
    log_write,
    sorted_series_key,
    write_exemplars,
    write_statements,
)

__all__ = [
    "BoolArray",
    "Changes",
    "FloatArray",
    "SampleStore",
    "SeriesSamples",
    "StoredSeries",
    "canonical_labels",
    "fingerprint",
]

_FAST_IDS_MAX = 2_000_000
"""Series ids cached by labels in their given order; cleared (and refilled) past this."""

_SERIES_ID = operator.itemgetter(0)

_COPY_MIN_ROWS = 200
"""PostgreSQL: batches of at least this many rows go through COPY, smaller ones executemany."""


class SampleStore:
    """Appends and reads samples; safe to share between threads (and processes, by file).

    The series ids this process has seen are cached in memory (by the identity of the
    scraper's immutable label sets, else by labels), so a steady scrape costs one
    `executemany` of plain tuples per `append`. Reads go straight to the database, so
    samples that another process wrote are seen at once. See docs/store.md.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._fast_ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._ids_by_identity: dict[int, tuple[Mapping[str, str], str, int]] = {}
        self._head_rows: int | None = None
        self._last_exemplars: dict[int, tuple[str, float, float | None]] = {}
        self._labels_by_id: dict[int, StoredSeries] = {}
        self._create_tables()
        dialect = engine.dialect.name
        self._dialect = dialect
        self._driver_errors: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.Error,)
        statements = write_statements(dialect)
        self._insert_series: Any = statements.insert_series
        self._insert_rows_sql = statements.insert_rows_sql
        self._insert_exemplars_sql = statements.insert_exemplars_sql

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def _create_tables(self) -> None:
        # Alembic: creates a new schema, upgrades an older one (see `_migrations`).
        upgrade_store_schema(self._engine)

    # -- writing ----------------------------------------------------------------------

    def append(self, samples: Sequence[ScrapedSample]) -> None:
        """Write `samples` in one transaction (all or none). Thread-safe.

        The hot path of a scrape: one Python loop builds plain row tuples, series ids come
        from an in-memory cache keyed by the labels as given (no sorting once a series is
        known), and the rows go to the driver's `executemany` (PostgreSQL: `COPY`).
        """
        if not samples:
            return
        fast_ids = self._fast_ids
        rows: list[tuple[Any, float, float | None, bool]] = []
        add_row = rows.append
        unknown: list[int] = []
        has_exemplars = False
        by_identity = self._ids_by_identity
        series_id: int | None
        for index, sample in enumerate(samples):
            labels = sample.labels
            if type(labels) is FrozenLabels:
                # The scraper's label sets never change: known by identity, no hashing.
                known = by_identity.get(id(labels))
                if known is not None and known[0] is labels and known[1] == sample.name:
                    series_id = known[2]
                else:
                    series_id = fast_ids.get((sample.name, tuple(labels.items())))
                    if series_id is not None:  # committed: safe to remember at once
                        by_identity[id(labels)] = (labels, sample.name, series_id)
            else:
                series_id = fast_ids.get((sample.name, tuple(labels.items())))
            if series_id is None:
                unknown.append(index)
            if sample.exemplar is not None:
                has_exemplars = True
            value = float(sample.value)
            if sample.stale or value != value:
                add_row((series_id, float(sample.timestamp_s), None, bool(sample.stale)))
            else:
                add_row((series_id, float(sample.timestamp_s), value, False))
        times = [row[1] for row in rows]
        low, high = min(times), max(times)
        if not math.isfinite(sum(times)):
            bad = next(s for s in samples if not math.isfinite(float(s.timestamp_s)))
            raise StoreError(f"sample {bad.name} has a non-finite timestamp {bad.timestamp_s!r}")
        with self._lock:
            try:
                with self._engine.begin() as connection:
                    new_ids = self._resolve(connection, samples, unknown, rows)
                    new_fast = [(index, rows[index][0]) for index in unknown]
                    seen_exemplars = (
                        write_exemplars(
                            connection,
                            self._insert_exemplars_sql,
                            self._last_exemplars,
                            samples,
                            rows,
                        )
                        if has_exemplars
                        else {}
                    )
                    self._write_rows(connection, rows)
                    log_write(connection, low, high)
            except sa.exc.SQLAlchemyError as error:
                raise StoreError(
                    f"cannot write {len(samples)} samples: {database_error_reason(error)}"
                ) from None
            except self._driver_errors as error:
                raise StoreError(
                    f"cannot write {len(samples)} samples: {database_error_reason(error)}"
                ) from None
            # Only ids of a committed transaction are known to exist.
            self._ids.update(new_ids)
            if len(fast_ids) > _FAST_IDS_MAX:
                fast_ids.clear()
            if len(by_identity) > _FAST_IDS_MAX:
                by_identity.clear()
            for index, series_id in new_fast:
                sample = samples[index]
                fast_ids[(sample.name, tuple(sample.labels.items()))] = series_id
                if type(sample.labels) is FrozenLabels:
                    # Holding the object keeps its id from being reused by another.
                    by_identity[id(sample.labels)] = (sample.labels, sample.name, series_id)
            self._last_exemplars.update(seen_exemplars)

    def _resolve(
        self,
        connection: sa.Connection,
        samples: Sequence[ScrapedSample],
        unknown: list[int],
        rows: list[tuple[Any, float, float | None, bool]],
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
        """Fill in the series ids of the rows at `unknown`; the ids newly created."""
        if not unknown:
            return {}
        keys = {index: sorted_series_key(samples[index]) for index in unknown}
        missing = {key for key in keys.values() if key not in self._ids}
        new_ids = insert_series_ids(connection, self._insert_series, missing) if missing else {}
        for index, key in keys.items():
            series_id = self._ids.get(key) or new_ids[key]
            _, timestamp_s, value, stale = rows[index]
            rows[index] = (series_id, timestamp_s, value, stale)
        return new_ids

    def _write_rows(
        self, connection: sa.Connection, rows: list[tuple[Any, float, float | None, bool]]
    ) -> None:
        driver = connection.connection.driver_connection
        assert driver is not None
        if self._dialect == "postgresql":
            # Sorted by series, each B-tree page is visited once.
            rows.sort(key=_SERIES_ID)  # stable: the first of two equal samples wins
            if len(rows) >= _COPY_MIN_ROWS:
                copy_rows(driver, rows)
                return
            cursor = driver.cursor()
            try:
                cursor.executemany(self._insert_rows_sql, rows)
            finally:
                cursor.close()
            return
        # SQLite: into the head, in arrival order (see `_store_head`); merged in bulk.
        if self._head_rows is None:
            self._head_rows = head_rows(connection)
        cursor = driver.cursor()
        try:
            cursor.executemany(self._insert_rows_sql, rows)
        finally:
            cursor.close()
        self._head_rows += len(rows)
        if self._head_rows >= HEAD_MERGE_ROWS:
            merge_head(connection)
            self._head_rows = 0

    def changes_since(self, seen: int | None) -> Changes:
        """Which sample times were written after write id `seen` (None: from the start)."""
        try:
            with self._engine.connect() as connection:
                latest, first_id = connection.execute(
                    sa.select(sa.func.max(writes_table.c.id), sa.func.min(writes_table.c.id))
                ).one()
                if latest is None:
                    return Changes(0, None, False)
                if seen is None:
                    return Changes(int(latest), None, True)
                earliest = connection.execute(
                    sa.select(sa.func.min(writes_table.c.min_timestamp_s)).where(
                        writes_table.c.id > seen
                    )
                ).scalar()
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(f"cannot read the write log: {database_error_reason(error)}") from None
        truncated = seen < int(first_id) - 1 or seen > int(latest)
        return Changes(int(latest), None if earliest is None else float(earliest), truncated)

    # -- reading ----------------------------------------------------------------------

    def series(self, matchers: str | Sequence[LabelMatcher] | SeriesMatcher) -> list[StoredSeries]:
        """Every series the matchers select, by id. The metric name filters in SQL."""
        matcher = parse_matchers(matchers)
        names = matcher.metric_names
        query = sa.select(series_table.c.id, series_table.c.name, series_table.c.labels)
        if names is not None:
            query = query.where(series_table.c.name.in_(sorted(names)))
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query).all()
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(f"cannot read series: {database_error_reason(error)}") from None
        selected = []
        for series_id, name, labels_json in rows:
            stored = self._labels_by_id.get(series_id)
            if stored is None:
                stored = StoredSeries(int(series_id), name, json.loads(labels_json))
                self._labels_by_id[series_id] = stored
            if matcher.matches(stored.name, stored.labels):
                selected.append(stored)
        selected.sort(key=lambda s: s.id)
        return selected

    def samples(
        self,
        series: Sequence[StoredSeries],
        start_s: float,
        end_s: float,
        *,
        windows: Windows | None = None,
    ) -> list[SeriesSamples]:
        """The samples of `series` with start_s <= timestamp_s <= end_s (both inclusive).

        Series without samples in the range are left out; the order is that of `series`.
        With `windows` (evenly spaced, not overlapping), samples outside them may be left
        out (on SQLite they are: a sparse range query reads only what it uses).
        """
        if not series or end_s < start_s:
            return []
        ids = sorted({s.id for s in series})
        mark = "?" if self._engine.dialect.name == "sqlite" else "%s"
        try:
            with self._engine.connect() as connection:
                # The driver's own cursor: SQLAlchemy's row processing would triple the time
                # a dashboard waits for an hour of histogram buckets.
                driver = connection.connection.driver_connection
                assert driver is not None
                cursor = driver.cursor()
                try:
                    series_ids, timestamps, values, stale = read_rows(
                        cursor, mark, ids, start_s, end_s, windows
                    )
                finally:
                    cursor.close()
        except Exception as error:
            raise StoreError(f"cannot read samples: {database_error_reason(error)}") from None
        if not len(series_ids):
            return []
        # Rows come sorted by series id, then by time.
        result = []
        for one in series:
            lo = int(np.searchsorted(series_ids, one.id, side="left"))
            hi = int(np.searchsorted(series_ids, one.id, side="right"))
            if lo == hi:
                continue
            result.append(
                SeriesSamples(
                    series=one,
                    timestamps_s=timestamps[lo:hi],
                    values=values[lo:hi],
                    stale=stale[lo:hi],
                )
            )
        return result

    def raw_from_s(self) -> float | None:
        """Samples before this time are 1-minute roll-ups (`Retention`); None: none are."""
        try:
            with self._engine.connect() as connection:
                found = connection.execute(
                    sa.select(retention_table.c.raw_from_s).where(retention_table.c.id == 1)
                ).scalar()
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(
                f"cannot read the retention boundary: {database_error_reason(error)}"
            ) from None
        return None if found is None else float(found)

    def select(
        self,
        matchers: str | Sequence[LabelMatcher] | SeriesMatcher,
        start_s: float,
        end_s: float,
    ) -> pd.DataFrame:
        """The samples of the selected series in [start_s, end_s] as one DataFrame.

        Columns: `series_id`, `name`, `labels` (a dict, without `__name__`), `timestamp_s`,
        `value` (NaN for staleness markers and NaN values) and `stale`; sorted by series id,
        then time.
        """
        if not math.isfinite(start_s) or not math.isfinite(end_s):
            raise QueryError(f"start_s and end_s must be finite, got {start_s!r}, {end_s!r}")
        loaded = self.samples(self.series(matchers), start_s, end_s)
        return samples_frame(loaded)
