"""The head of the raw samples: where appends land on SQLite, merged into the main table in bulk.

`metric_samples` is clustered by (series_id, timestamp_s), so that reading a series' range is
one index range. Writing a scrape into it touches one B-tree page per series: 2,000 series
make a commit write 2,000 pages (8 MB) to the WAL, which caps SQLite near 30k samples/s. So
appends go to `metric_samples_head`, a plain table in arrival order (a commit writes the few
pages at its end), and once it holds `HEAD_MERGE_ROWS` rows one statement moves them into
`metric_samples` sorted by series, each page then taking many rows at once.

Semantics do not change: reads take both tables (see `_store_rollups.read_rows`), and a
sample written twice for one series and time keeps the first one written, in the head
(lowest rowid first) as in the merge (`INSERT OR IGNORE`, main table first). Every move is
one transaction, so a kill -9 leaves each row in exactly one of the two tables. The head
has no index: an index would cost each append a third of its time, a scan of the head
costs a read a few milliseconds.
PostgreSQL appends straight to `metric_samples` (its B-tree pages are not rewritten whole
into the WAL on each commit), and never has head rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["HEAD_MERGE_ROWS", "head_rows", "merge_head", "read_head_rows"]

HEAD_MERGE_ROWS = 100_000
"""A process that appended this many rows to the head merges it into `metric_samples`."""

_MERGE = (
    "INSERT OR IGNORE INTO metric_samples (series_id, timestamp_s, value, stale)"
    " SELECT series_id, timestamp_s, value, stale FROM metric_samples_head"
    " ORDER BY series_id, timestamp_s, rowid"
)


def merge_head(connection: sa.Connection) -> int:
    """Move every head row into `metric_samples` (inside the caller's transaction)."""
    if connection.dialect.name != "sqlite":
        return 0
    connection.exec_driver_sql(_MERGE)
    return int(connection.exec_driver_sql("DELETE FROM metric_samples_head").rowcount or 0)


def head_rows(connection: sa.Connection) -> int:
    return int(connection.exec_driver_sql("SELECT count(*) FROM metric_samples_head").scalar() or 0)


def read_head_rows(
    cursor: Any, mark: str, ids: set[int], start_s: float, end_s: float
) -> list[tuple[int, float, float | None, bool]]:
    """Head rows of series `ids` in [start_s, end_s], in arrival order.

    The head has no index (each would cost every append more than a scan of the at most
    `HEAD_MERGE_ROWS` rows costs a read): one scan, the series filtered here.
    """
    cursor.execute(
        "SELECT series_id, timestamp_s, value, stale FROM metric_samples_head"
        f" WHERE timestamp_s >= {mark} AND timestamp_s <= {mark}"
        + (" ORDER BY rowid" if mark == "?" else ""),
        (float(start_s), float(end_s)),
    )
    return [row for row in cursor.fetchall() if row[0] in ids]
