"""The sample store's tables, in one place: the store, its roll-ups, retention and migrations
all describe the same schema.

- `metric_series(id, name, labels, fingerprint)`: one row per series (labels as canonical
  JSON without `__name__`; fingerprint = SHA-256 of name and labels, unique).
- `metric_samples(series_id, timestamp_s, value, stale)`: raw samples, primary key
  (series_id, timestamp_s); on SQLite WITHOUT ROWID, so the table is its own index.
- `metric_writes(id, min_timestamp_s, max_timestamp_s)`: one row per append (and per
  compaction step), in commit order, so readers' caches learn what changed.
- `metric_rollups(series_id, minute_s, ...)`: one row per series per minute for samples
  older than the raw retention: the minute's last sample (`timestamp_s`, `value`; its real
  time, so `rate` and `increase` over roll-ups keep Prometheus's extrapolation), min, max,
  sum and count of its values, and `stale_timestamp_s` when a staleness marker ended it.
- `metric_retention(id = 1, raw_from_s)`: raw samples before `raw_from_s` have been rolled
  up; reads take roll-ups before it and raw samples from it on.
- `metric_samples_head(series_id, timestamp_s, value, stale)`: raw samples not yet merged
  into `metric_samples` (SQLite: appends land here, in arrival order; see `_store_head`).
- `metric_exemplars(series_id, timestamp_s, value, labels)`: OpenMetrics exemplars, one per
  series and time (labels as canonical JSON).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

series_table = sa.Table(
    "metric_series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.UniqueConstraint("fingerprint", name="uq_metric_series_fingerprint"),
    sa.Index("ix_metric_series_name", "name"),
)
samples_table = sa.Table(
    "metric_samples",
    metadata,
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("timestamp_s", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("stale", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("series_id", "timestamp_s", name="pk_metric_samples"),
    sqlite_with_rowid=False,
)
writes_table = sa.Table(
    "metric_writes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("min_timestamp_s", sa.Double, nullable=False),
    sa.Column("max_timestamp_s", sa.Double, nullable=False),
)
rollups_table = sa.Table(
    "metric_rollups",
    metadata,
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("minute_s", sa.Double, nullable=False),
    sa.Column("timestamp_s", sa.Double, nullable=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("min_value", sa.Double, nullable=True),
    sa.Column("max_value", sa.Double, nullable=True),
    sa.Column("sum_value", sa.Double, nullable=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("stale_timestamp_s", sa.Double, nullable=True),
    sa.PrimaryKeyConstraint("series_id", "minute_s", name="pk_metric_rollups"),
    sqlite_with_rowid=False,
)
retention_table = sa.Table(
    "metric_retention",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("raw_from_s", sa.Double, nullable=False),
)
samples_head_table = sa.Table(
    "metric_samples_head",
    metadata,
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("timestamp_s", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("stale", sa.Boolean, nullable=False),
)
exemplars_table = sa.Table(
    "metric_exemplars",
    metadata,
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("timestamp_s", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("labels", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("series_id", "timestamp_s", name="pk_metric_exemplars"),
    sqlite_with_rowid=False,
)
