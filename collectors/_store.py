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

Encoding of values: `stale` is true for a Prometheus staleness marker (its `value` is
NULL). A real NaN is stored as NULL with `stale` false, because SQLite cannot store NaN
(it turns it into NULL); both read back as NaN, the `stale` flag telling them apart.
Infinities are stored as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ._exceptions import QueryError, StoreError
from ._migrations import upgrade_store_schema
from ._sample import ScrapedSample
from ._store_matchers import LabelMatcher, SeriesMatcher, parse_matchers
from ._store_rollups import read_rows
from ._store_schema import samples_table, series_table, writes_table

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_ID_CHUNK = 500
"""Series ids per `IN (...)`: far below SQLite's and PostgreSQL's parameter limits."""

WRITE_LOG_KEEP = 100_000
"""Rows of `metric_writes` kept; older ones are pruned now and then."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What `SampleStore.changes_since` found: the newest write id, the earliest sample
    time written after the given id (None: nothing), and whether the log no longer reaches
    back to that id (then anything may have changed)."""

    latest: int
    earliest_s: float | None
    truncated: bool


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """One series' identity: `labels` exclude `__name__` (that is `name`)."""

    id: int
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SeriesSamples:
    """One series' samples in a time range, oldest first, as parallel arrays.

    `values` holds NaN where `stale` is true (a staleness marker) and for real NaN values.
    """

    series: StoredSeries
    timestamps_s: FloatArray
    values: FloatArray
    stale: BoolArray


def canonical_labels(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"), ensure_ascii=False)


def fingerprint(name: str, labels_json: str) -> str:
    return hashlib.sha256(f"{name}\x00{labels_json}".encode()).hexdigest()


class SampleStore:
    """Appends and reads samples; safe to share between threads (and processes, by file).

    The series ids this process has seen are cached in memory, so a steady scrape costs one
    `INSERT` of samples per `append`. Reads go straight to the database, so samples that
    another process wrote are seen at once.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._labels_by_id: dict[int, StoredSeries] = {}
        self._create_tables()
        dialect = engine.dialect.name
        if dialect == "sqlite":
            self._insert_series: Any = sqlite.insert(series_table).on_conflict_do_nothing(
                index_elements=["fingerprint"]
            )
            self._insert_samples: Any = sqlite.insert(samples_table).on_conflict_do_nothing()
        elif dialect == "postgresql":
            self._insert_series = postgresql.insert(series_table).on_conflict_do_nothing(
                index_elements=["fingerprint"]
            )
            self._insert_samples = postgresql.insert(samples_table).on_conflict_do_nothing()
        else:
            raise StoreError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def _create_tables(self) -> None:
        # Alembic: creates a new schema, upgrades an older one (see `_migrations`).
        upgrade_store_schema(self._engine)

    # -- writing ----------------------------------------------------------------------

    def append(self, samples: Sequence[ScrapedSample]) -> None:
        """Write `samples` in one transaction (all or none). Thread-safe."""
        if not samples:
            return
        for sample in samples:
            if not math.isfinite(float(sample.timestamp_s)):
                raise StoreError(
                    f"sample {sample.name} has a non-finite timestamp {sample.timestamp_s!r}"
                )
        keys = [(s.name, tuple(sorted(s.labels.items()))) for s in samples]
        with self._lock:
            try:
                with self._engine.begin() as connection:
                    missing = {key for key in keys if key not in self._ids}
                    new_ids = self._series_ids(connection, missing) if missing else {}
                    rows = [
                        _sample_row(self._ids.get(key) or new_ids[key], sample)
                        for key, sample in zip(keys, samples, strict=True)
                    ]
                    connection.execute(self._insert_samples, rows)
                    self._log_write(connection, samples)
            except sa.exc.SQLAlchemyError as error:
                raise StoreError(
                    f"cannot write {len(samples)} samples: {_reason(error)}"
                ) from None
            # Only ids of a committed transaction are known to exist.
            self._ids.update(new_ids)

    def _log_write(self, connection: sa.Connection, samples: Sequence[ScrapedSample]) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("LOCK TABLE metric_writes IN SHARE ROW EXCLUSIVE MODE")
        times = [float(s.timestamp_s) for s in samples]
        result = connection.execute(
            writes_table.insert().values(min_timestamp_s=min(times), max_timestamp_s=max(times))
        )
        new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        if new_id is not None and new_id % 1000 == 0:
            connection.execute(
                writes_table.delete().where(writes_table.c.id <= new_id - WRITE_LOG_KEEP)
            )

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
            raise StoreError(f"cannot read the write log: {_reason(error)}") from None
        truncated = seen < int(first_id) - 1 or seen > int(latest)
        return Changes(int(latest), None if earliest is None else float(earliest), truncated)

    def _series_ids(
        self,
        connection: sa.Connection,
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
        connection.execute(self._insert_series, rows)
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

    # -- reading ----------------------------------------------------------------------

    def series(
        self, matchers: str | Sequence[LabelMatcher] | SeriesMatcher
    ) -> list[StoredSeries]:
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
            raise StoreError(f"cannot read series: {_reason(error)}") from None
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
        self, series: Sequence[StoredSeries], start_s: float, end_s: float
    ) -> list[SeriesSamples]:
        """The samples of `series` with start_s <= timestamp_s <= end_s (both inclusive).

        Series without samples in the range are left out; the order is that of `series`.
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
                    rows = read_rows(cursor, mark, ids, start_s, end_s)
                finally:
                    cursor.close()
        except Exception as error:
            raise StoreError(f"cannot read samples: {_reason(error)}") from None
        if not rows:
            return []
        id_column, time_column, value_column, stale_column = zip(*rows, strict=True)
        series_ids = np.asarray(id_column, dtype=np.int64)
        timestamps = np.asarray(time_column, dtype=np.float64)
        values = np.asarray(value_column, dtype=np.float64)  # None (NULL) -> NaN
        stale = np.asarray(stale_column, dtype=np.bool_)
        # Rows come sorted by series id (the chunks are too), then by time.
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
        frames = [
            pd.DataFrame(
                {
                    "series_id": np.full(len(one.values), one.series.id, dtype=np.int64),
                    "name": one.series.name,
                    "labels": [dict(one.series.labels)] * len(one.values),
                    "timestamp_s": one.timestamps_s,
                    "value": one.values,
                    "stale": one.stale,
                }
            )
            for one in loaded
        ]
        if not frames:
            return pd.DataFrame(
                {
                    "series_id": pd.Series(dtype=np.int64),
                    "name": pd.Series(dtype=object),
                    "labels": pd.Series(dtype=object),
                    "timestamp_s": pd.Series(dtype=np.float64),
                    "value": pd.Series(dtype=np.float64),
                    "stale": pd.Series(dtype=np.bool_),
                }
            )
        return pd.concat(frames, ignore_index=True)


def _sample_row(series_id: int, sample: ScrapedSample) -> dict[str, Any]:
    value = float(sample.value)
    return {
        "series_id": series_id,
        "timestamp_s": float(sample.timestamp_s),
        "value": None if sample.stale or math.isnan(value) else value,
        "stale": bool(sample.stale),
    }


def _reason(error: BaseException) -> str:
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
