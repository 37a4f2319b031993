"""Retention and downsampling: raw samples for hours, 1-minute roll-ups for weeks.

`Retention.compact(now_s)` rolls every raw sample older than `raw_s` (whole minutes only)
up into `metric_rollups` and deletes it, then deletes roll-ups older than `rollup_s`. The
control plane calls it in the background. Each step is one transaction that also moves
`metric_retention.raw_from_s` and logs the changed range in `metric_writes` (so readers'
caches re-read it): a crash leaves the store as it was before or after the step, never
between. Readers switch from roll-ups to raw samples at `raw_from_s` (see
`_store_rollups`), so queries over old ranges read roll-ups without knowing it.

A sample that arrives later than the raw retention (an exposition timestamp far in the
past) is rolled up by the next compaction; if its minute was rolled up already, the first
roll-up stays and the late sample is dropped, as the store keeps the first sample written.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ._database import database_error_reason
from ._exceptions import StoreError
from ._store import SampleStore
from ._store_head import merge_head
from ._store_rollups import minute_of, rollup_frame
from ._store_schema import (
    retention_table,
    rollups_table,
    samples_table,
    series_table,
    writes_table,
)

__all__ = ["CompactionResult", "Retention"]

logger = logging.getLogger("inferops.collectors.retention")

_ID_CHUNK = 500
DEFAULT_STEP_S = 6 * 3600.0
"""Raw time rolled up per transaction, so that a first compaction of a big store holds the
write lock for a while at a time, not for the whole backlog."""


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What one `compact` did. `raw_from_s`: reads take raw samples from here on."""

    raw_from_s: float
    samples_rolled_up: int
    rollups_written: int
    rollups_deleted: int


class Retention:
    """Enforces the store's retention: `raw_s` of raw samples, `rollup_s` of roll-ups."""

    def __init__(
        self,
        store: SampleStore,
        *,
        raw_s: float,
        rollup_s: float,
        step_s: float = DEFAULT_STEP_S,
    ) -> None:
        for name, value in (("raw_s", raw_s), ("rollup_s", rollup_s), ("step_s", step_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if rollup_s < raw_s:
            raise ValueError(
                f"rollup_s ({rollup_s:g}) must be at least raw_s ({raw_s:g}): roll-ups are "
                "what is left of samples older than the raw retention"
            )
        self._store = store
        self.raw_s = raw_s
        self.rollup_s = rollup_s
        self._step_s = step_s
        engine = store.engine
        if engine.dialect.name == "postgresql":
            self._insert_rollups: Any = postgresql.insert(rollups_table).on_conflict_do_nothing()
        else:
            self._insert_rollups = sqlite.insert(rollups_table).on_conflict_do_nothing()

    def compact(self, now_s: float) -> CompactionResult:
        """Roll up and delete raw samples older than `raw_s`; delete roll-ups past `rollup_s`."""
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be a finite time, got {now_s!r}")
        cutoff = minute_of(now_s - self.raw_s)
        engine = self._store.engine
        try:
            with engine.begin() as connection:
                merge_head(connection)  # raw samples all in one table, for what follows
            with engine.connect() as connection:
                raw_from = connection.execute(
                    sa.select(retention_table.c.raw_from_s).where(retention_table.c.id == 1)
                ).scalar()
                if raw_from is None:
                    first = connection.execute(
                        sa.select(sa.func.min(samples_table.c.timestamp_s))
                    ).scalar()
                    raw_from = cutoff if first is None else min(minute_of(first), cutoff)
                ids = [int(i) for i in connection.execute(sa.select(series_table.c.id)).scalars()]
            rolled = written = 0
            low = float(raw_from)
            while True:
                high = min(cutoff, low + self._step_s)
                step_rolled, step_written = self._roll_up(ids, high)
                rolled += step_rolled
                written += step_written
                low = high
                if low >= cutoff:
                    break
            with engine.begin() as connection:
                deleted = connection.execute(
                    rollups_table.delete().where(
                        rollups_table.c.minute_s < minute_of(now_s - self.rollup_s)
                    )
                ).rowcount
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(f"compaction failed: {database_error_reason(error)}") from None
        if rolled or deleted:
            logger.info(
                "compaction: %d raw samples rolled up into %d roll-ups; %d roll-ups expired",
                rolled,
                written,
                deleted,
            )
        return CompactionResult(low, rolled, written, max(deleted, 0))

    def _roll_up(self, ids: list[int], high: float) -> tuple[int, int]:
        """One transaction: roll up raw samples before `high`, delete them, move raw_from."""
        rolled = written = 0
        earliest = math.inf
        with self._store.engine.begin() as connection:
            # Written first, so that SQLite takes the write lock before reading: no append
            # can slip between the read and the delete of the same rows.
            updated = connection.execute(
                retention_table.update()
                .where(retention_table.c.id == 1)
                .where(retention_table.c.raw_from_s < high)
                .values(raw_from_s=high)
            ).rowcount
            if updated == 0:
                exists = connection.execute(
                    sa.select(retention_table.c.id).where(retention_table.c.id == 1)
                ).first()
                if exists is None:
                    connection.execute(retention_table.insert().values(id=1, raw_from_s=high))
            merge_head(connection)  # what was appended since the first merge
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                old = (samples_table.c.series_id.in_(chunk)) & (samples_table.c.timestamp_s < high)
                rows = connection.execute(
                    sa.select(
                        samples_table.c.series_id,
                        samples_table.c.timestamp_s,
                        samples_table.c.value,
                        samples_table.c.stale,
                    )
                    .where(old)
                    .order_by(samples_table.c.series_id, samples_table.c.timestamp_s)
                ).all()
                if not rows:
                    continue
                frame = rollup_frame([tuple(row) for row in rows])
                connection.execute(self._insert_rollups, _records(frame))
                connection.execute(samples_table.delete().where(old))
                rolled += len(rows)
                written += len(frame)
                earliest = min(earliest, float(frame["minute_s"].min()))
            if rolled:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        "LOCK TABLE metric_writes IN SHARE ROW EXCLUSIVE MODE"
                    )
                connection.execute(
                    writes_table.insert().values(min_timestamp_s=earliest, max_timestamp_s=high)
                )
        return rolled, written


_COLUMNS = (
    "series_id",
    "minute_s",
    "timestamp_s",
    "value",
    "min_value",
    "max_value",
    "sum_value",
    "count",
    "stale_timestamp_s",
)


def _records(frame: Any) -> list[dict[str, Any]]:
    records = []
    for row in frame[list(_COLUMNS)].itertuples(index=False):
        record: dict[str, Any] = {}
        for name, value in zip(_COLUMNS, row, strict=True):
            if name in ("series_id", "count"):
                record[name] = int(value)
            else:
                number = float(value)
                record[name] = None if math.isnan(number) else number
        records.append(record)
    return records
