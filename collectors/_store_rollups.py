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
import pandas as pd

from ._store_head import read_head_rows

ROLLUP_STEP_S = 60.0
"""Width of one roll-up, in seconds."""

_ID_CHUNK = 500
"""Series ids per `IN (...)`: far below SQLite's and PostgreSQL's parameter limits."""

Row = tuple[int, float, float | None, bool]
"""series_id, timestamp_s, value (None: NaN), stale."""

_SERIES_AND_TIME = operator.itemgetter(0, 1)


def minute_of(timestamp_s: float) -> float:
    """The start of the roll-up minute that holds `timestamp_s`."""
    return math.floor(timestamp_s / ROLLUP_STEP_S) * ROLLUP_STEP_S


def read_rows(
    cursor: Any, mark: str, ids: Sequence[int], start_s: float, end_s: float
) -> list[Row]:
    """Samples of series `ids` in [start_s, end_s], sorted by series id, then time."""
    raw: list[Row] = []
    for chunk in _chunks(ids):
        cursor.execute(
            "SELECT series_id, timestamp_s, value, stale FROM metric_samples"
            f" WHERE series_id IN ({', '.join([mark] * len(chunk))})"
            f" AND timestamp_s >= {mark} AND timestamp_s <= {mark}"
            " ORDER BY series_id, timestamp_s",
            (*chunk, float(start_s), float(end_s)),
        )
        raw.extend(cursor.fetchall())
    head = read_head_rows(cursor, mark, set(ids), start_s, end_s)
    if head:
        raw = _with_head(raw, head)
    cursor.execute("SELECT raw_from_s FROM metric_retention WHERE id = 1")
    found = cursor.fetchone()
    raw_from = None if found is None else float(found[0])
    if raw_from is None or start_s >= raw_from:
        return raw
    rolled: list[Row] = []
    for chunk in _chunks(ids):
        cursor.execute(
            "SELECT series_id, timestamp_s, value, stale_timestamp_s FROM metric_rollups"
            f" WHERE series_id IN ({', '.join([mark] * len(chunk))})"
            f" AND minute_s >= {mark} AND minute_s <= {mark} AND minute_s < {mark}"
            " ORDER BY series_id, minute_s",
            (*chunk, minute_of(start_s), float(end_s), raw_from),
        )
        for series_id, timestamp_s, value, stale_timestamp_s in cursor.fetchall():
            if timestamp_s is not None and start_s <= timestamp_s <= end_s:
                rolled.append((series_id, timestamp_s, value, False))
            if stale_timestamp_s is not None and start_s <= stale_timestamp_s <= end_s:
                rolled.append((series_id, stale_timestamp_s, None, True))
    if not rolled:
        return [row for row in raw if row[1] >= raw_from]
    rows = rolled + [row for row in raw if row[1] >= raw_from]
    # Per series, every roll-up is older than every raw row kept: a stable sort by id is enough.
    rows.sort(key=lambda row: row[0])
    return rows


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
