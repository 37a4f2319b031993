"""What the sample store reads and writes, shared by its modules: series, samples, changes.

Also the canonical label JSON and fingerprint that make a series' identity the same in every
process (`metric_series.fingerprint`, unique), and the one-line reason of a database error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._database import database_error_reason

__all__ = [
    "BoolArray",
    "Changes",
    "FloatArray",
    "SeriesSamples",
    "StoredSeries",
    "canonical_labels",
    "database_error_reason",
    "fingerprint",
    "samples_frame",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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


def samples_frame(loaded: Sequence[SeriesSamples]) -> pd.DataFrame:
    """`SampleStore.select`'s one DataFrame of series' samples (typed columns even when empty)."""
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
