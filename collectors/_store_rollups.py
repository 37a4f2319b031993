"""Reading samples across the raw/roll-up boundary, and computing 1-minute roll-ups.

Raw samples from `metric_retention.raw_from_s` on are read as they are; older ones come from
`metric_rollups`, one or two samples per series per minute: the minute's last sample at its
real time (so a counter's `rate` over two minutes or more extrapolates as Prometheus does),
and the staleness marker that ended the minute, if one did.

Reads are ordered so that a compaction committing in between never leaves a gap: raw rows
first, then `raw_from_s`, then the roll-ups before it (raw rows before it are dropped, they
were read before they were rolled up or are late arrivals not yet rolled up).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._store_head import read_head_rows

ROLLUP_STEP_S = 60.0
"""Width of one roll-up, in seconds."""

_ID_CHUNK = 500
"""Series ids per `IN (...)`: far below SQLite's and PostgreSQL's parameter limits."""

Row = tuple[int, float, float | None, bool]
"""series_id, timestamp_s, value (None: NaN), stale."""

_SERIES_AND_TIME = operator.itemgetter(0, 1)
_ID, _TIME, _VALUE, _STALE = (operator.itemgetter(i) for i in range(4))


def minute_of(timestamp_s: float) -> float:
    """The start of the roll-up minute that holds `timestamp_s`."""
    return math.floor(timestamp_s / ROLLUP_STEP_S) * ROLLUP_STEP_S


Windows = tuple[float, float, float, int]
"""Evenly spaced time windows: the first's [low, high] (seconds), the step, how many.

A range query of `rate(x[5m])` at a 1-hour step needs 5 minutes of each hour: reading only
those is 12 times fewer rows than the whole range. Windows must not overlap."""

Columns = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]
]
"""series ids, timestamps (s), values (NaN for NULL), stale flags: sorted by id, then time."""


def read_rows(
    cursor: Any,
    mark: str,
    ids: Sequence[int],
    start_s: float,
    end_s: float,
    windows: Windows | None = None,
) -> Columns:
    """Samples of series `ids` in [start_s, end_s] (and in `windows`, when given: SQLite
    only), as columns sorted by series id, then time."""
    sparse = windows is not None and mark == "?"
    # Raw rows before the boundary are dropped below (it only moves on): a sparse read
    # skips the windows before it, each of them an index seek per series that finds nothing.
    hint = _retention_boundary(cursor) if sparse else None
    raw = _read_raw(cursor, mark, ids, start_s, end_s, windows if sparse else None, hint)
    raw_from = _retention_boundary(cursor)
    if hint is not None and (raw_from is None or raw_from < hint):  # moved back: read all
        raw = _read_raw(cursor, mark, ids, start_s, end_s, windows, None)
    raw_columns = _columns(raw)
    if raw_from is None or start_s >= raw_from:
        return raw_columns
    found: list[tuple[int, float | None, float | None, float | None]] = []
    low, high = float(start_s), float(end_s)
    for chunk in _chunks(ids):
        marks = ", ".join([mark] * len(chunk))
        # One pass for both the minute's last sample and the staleness marker that ended it.
        if sparse:
            assert windows is not None
            cursor.execute(
                _WINDOWS_CTE + " SELECT r.series_id, r.timestamp_s, r.value, r.stale_timestamp_s"
                " FROM w CROSS JOIN metric_rollups r"
                f" WHERE r.series_id IN ({marks}) AND r.minute_s >= w.lo - ?"
                " AND r.minute_s <= w.hi AND r.minute_s < ?"
                " AND ((r.timestamp_s >= max(w.lo, ?) AND r.timestamp_s <= min(w.hi, ?))"
                " OR (r.stale_timestamp_s >= max(w.lo, ?)"
                " AND r.stale_timestamp_s <= min(w.hi, ?)))",
                (*_window_params(windows), *chunk, ROLLUP_STEP_S, raw_from, low, high, low, high),
            )
        else:
            cursor.execute(
                "SELECT series_id, timestamp_s, value, stale_timestamp_s FROM metric_rollups"
                f" WHERE series_id IN ({marks})"
                f" AND minute_s >= {mark} AND minute_s <= {mark} AND minute_s < {mark}"
                " ORDER BY series_id, minute_s",
                (*chunk, minute_of(start_s), high, raw_from),
            )
        found.extend(cursor.fetchall())
    rolled, ended = _rollup_columns(found, low, high)
    if not len(rolled[0]) and not len(ended[0]):
        keep = raw_columns[1] >= raw_from
        return _take(raw_columns, keep)
    old = _concat(rolled, ended)
    if len(ended[0]) or sparse:  # markers (and windows) interleave: order series by time
        old = _take(old, np.lexsort((old[1], old[0])))
    new = _take(raw_columns, raw_columns[1] >= raw_from)
    both = _concat(old, new)
    # Per series, every roll-up is older than every raw row kept: a stable sort by id.
    return _take(both, np.argsort(both[0], kind="stable"))


def _read_raw(
    cursor: Any,
    mark: str,
    ids: Sequence[int],
    start_s: float,
    end_s: float,
    windows: Windows | None,
    after_s: float | None,
) -> list[Row]:
    """Raw rows (main table and head) of series `ids` in [start_s, end_s], sorted by series
    and time; with `windows` (SQLite), only in them, and only in those ending at or after
    `after_s` when given."""
    if windows is not None and after_s is not None:
        low, high, step, count = windows
        skip = min(count, max(0, math.floor((after_s - high) / step)))
        if skip == count:
            windows = None
            start_s = max(start_s, after_s)
        else:
            windows = (low + skip * step, high + skip * step, step, count - skip)
    raw: list[Row] = []
    for chunk in _chunks(ids):
        marks = ", ".join([mark] * len(chunk))
        if windows is not None:
            cursor.execute(
                _WINDOWS_CTE + " SELECT s.series_id, s.timestamp_s, s.value, s.stale"
                " FROM w CROSS JOIN metric_samples s"
                f" WHERE s.series_id IN ({marks}) AND s.timestamp_s >= max(w.lo, ?)"
                " AND s.timestamp_s <= min(w.hi, ?)",
                (*_window_params(windows), *chunk, float(start_s), float(end_s)),
            )
        else:
            cursor.execute(
                "SELECT series_id, timestamp_s, value, stale FROM metric_samples"
                f" WHERE series_id IN ({marks})"
                f" AND timestamp_s >= {mark} AND timestamp_s <= {mark}"
                " ORDER BY series_id, timestamp_s",
                (*chunk, float(start_s), float(end_s)),
            )
        raw.extend(cursor.fetchall())
    if windows is not None:
        raw.sort(key=_SERIES_AND_TIME)
    head = read_head_rows(cursor, mark, set(ids), start_s, end_s)
    if head:
        raw = _with_head(raw, head)
    return raw


def _retention_boundary(cursor: Any) -> float | None:
    cursor.execute("SELECT raw_from_s FROM metric_retention WHERE id = 1")
    boundary = cursor.fetchone()
    return None if boundary is None else float(boundary[0])


def _rollup_columns(
    found: list[tuple[int, float | None, float | None, float | None]], low: float, high: float
) -> tuple[Columns, Columns]:
    """Roll-up rows as samples: each minute's last sample, and the staleness markers."""
    count = len(found)
    ids = np.fromiter(map(_ID, found), dtype=np.int64, count=count)
    times = np.array(list(map(_TIME, found)), dtype=np.float64)
    values = np.array(list(map(_VALUE, found)), dtype=np.float64)
    ends = np.array(list(map(_STALE, found)), dtype=np.float64)
    real = (times >= low) & (times <= high)  # NaN (no sample) compares false
    marked = (ends >= low) & (ends <= high)
    n_marked = int(marked.sum())
    return (
        (ids[real], times[real], values[real], np.zeros(int(real.sum()), dtype=np.bool_)),
        (ids[marked], ends[marked], np.full(n_marked, np.nan), np.ones(n_marked, dtype=np.bool_)),
    )


def _concat(first: Columns, second: Columns) -> Columns:
    return (
        np.concatenate([first[0], second[0]]),
        np.concatenate([first[1], second[1]]),
        np.concatenate([first[2], second[2]]),
        np.concatenate([first[3], second[3]]),
    )


_WINDOWS_CTE = (
    "WITH RECURSIVE w(k, lo, hi) AS (VALUES (0, ?, ?)"
    " UNION ALL SELECT k + 1, lo + ?, hi + ? FROM w WHERE k + 1 < ?)"
)


def _window_params(windows: Windows) -> tuple[float, float, float, float, int]:
    low, high, step, count = windows
    return (float(low), float(high), float(step), float(step), int(count))


def _columns(rows: list[Row]) -> Columns:
    if not rows:
        return (
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.float64),
            np.empty(0, dtype=np.float64),
            np.empty(0, dtype=np.bool_),
        )
    # Column by column (`zip(*rows)` would pass every row as an argument: far slower).
    count = len(rows)
    return (
        np.fromiter(map(_ID, rows), dtype=np.int64, count=count),
        np.fromiter(map(_TIME, rows), dtype=np.float64, count=count),
        np.array(list(map(_VALUE, rows)), dtype=np.float64),  # None (NULL) -> NaN
        np.fromiter(map(_STALE, rows), dtype=np.bool_, count=count),
    )


def _take(columns: Columns, index: Any) -> Columns:
    return (columns[0][index], columns[1][index], columns[2][index], columns[3][index])


def rollup_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """Roll raw rows (sorted by series id, then time) up into one row per series and minute.

    Columns as `metric_rollups`: series_id, minute_s, timestamp_s and value (the minute's
    last sample that is not a staleness marker; a NaN value is kept as the last value),
    min_value, max_value, sum_value and count over its values that are not NaN, and
    stale_timestamp_s when the minute's very last sample is a staleness marker.
    """
    frame = pd.DataFrame.from_records(
        list(rows), columns=["series_id", "timestamp_s", "value", "stale"]
    )
    frame["value"] = frame["value"].astype(np.float64)
    frame["stale"] = frame["stale"].astype(bool)
    frame["minute_s"] = np.floor(frame["timestamp_s"] / ROLLUP_STEP_S) * ROLLUP_STEP_S
    keys = ["series_id", "minute_s"]
    final = frame.drop_duplicates(keys, keep="last")
    ended = final.loc[final["stale"], [*keys, "timestamp_s"]].rename(
        columns={"timestamp_s": "stale_timestamp_s"}
    )
    real = frame[~frame["stale"]]
    last = real.drop_duplicates(keys, keep="last")[[*keys, "timestamp_s", "value"]]
    grouped = real.groupby(keys, sort=False)["value"]
    stats = pd.DataFrame(
        {
            "min_value": grouped.min(),
            "max_value": grouped.max(),
            "sum_value": grouped.sum(),
            "count": grouped.count(),
        }
    ).reset_index()
    merged = last.merge(stats, on=keys, how="left").merge(ended, on=keys, how="outer")
    merged["count"] = merged["count"].fillna(0).astype(np.int64)
    merged.loc[merged["count"] == 0, ["min_value", "max_value", "sum_value"]] = np.nan
    return merged.sort_values(keys, kind="stable").reset_index(drop=True)


def _with_head(main: list[Row], head: list[Row]) -> list[Row]:
    """Main rows and head rows in one order (series, time); of two rows of one series and
    time, the first written: the main table's, then the head's earliest."""
    rows = main + head
    rows.sort(key=_SERIES_AND_TIME)  # stable: main rows stay before head rows
    kept: list[Row] = []
    add = kept.append
    previous: tuple[int, float] | None = None
    for row in rows:
        key = (row[0], row[1])
        if key != previous:
            add(row)
            previous = key
    return kept


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[start : start + _ID_CHUNK] for start in range(0, len(ids), _ID_CHUNK)]
