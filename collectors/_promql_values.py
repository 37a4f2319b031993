"""The values a PromQL expression evaluates to, and the label-set rules every operator shares.

An AST node evaluates to a `Scalar` (one value per step), a list of `Series` (one value per
step and whether the series has a sample at that step: an instant vector over all the steps),
or a `String`. A selector reads `RawSeries`, the stored samples, through a `Loader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import numpy as np

from . import _promql_functions as fn
from ._exceptions import QueryError
from ._store_matchers import METRIC_NAME, SeriesMatcher

FloatArray = fn.FloatArray
IntArray = fn.IntArray
BoolArray = fn.BoolArray
Labels = tuple[tuple[str, str], ...]
"""A label set, sorted by label name; `__name__` is one of the labels."""


@dataclass(slots=True)
class RawSeries:
    """One stored series as the engine reads it: all samples, oldest first."""

    labels: Labels
    timestamps_ms: IntArray
    values: FloatArray
    stale: BoolArray
    _fresh: tuple[IntArray, FloatArray] | None = field(default=None, repr=False)
    raw_from_ms: int | None = None
    """Samples before this time are 1-minute roll-ups (see `Retention`); None: all raw."""

    def without_stale(self) -> tuple[IntArray, FloatArray]:
        """The samples a range selector sees: staleness markers left out."""
        if self._fresh is None:
            if self.stale.any():
                keep = ~self.stale
                self._fresh = (self.timestamps_ms[keep], self.values[keep])
            else:
                self._fresh = (self.timestamps_ms, self.values)
        return self._fresh


class Loader(Protocol):
    def __call__(
        self,
        matcher: SeriesMatcher,
        start_ms: int,
        end_ms: int,
        windows: tuple[float, float, float, int] | None = None,
    ) -> list[RawSeries]:
        """Every series `matcher` selects, with its samples in [start_ms, end_ms].

        `windows` (first window's low and high in seconds, step in seconds, count): only
        samples in these evenly spaced windows are used; the loader may leave others out.
        """
        ...


@dataclass(slots=True)
class Series:
    labels: Labels
    values: FloatArray
    present: BoolArray


@dataclass(slots=True)
class Scalar:
    values: FloatArray


@dataclass(slots=True)
class String:
    value: str


Value = Scalar | list[Series] | String


def as_vector(value: Value, what: str) -> list[Series]:
    if not isinstance(value, list):
        raise QueryError(f"{what} must be an instant vector")
    return value


def as_scalar(value: Value, what: str) -> FloatArray:
    if not isinstance(value, Scalar):
        raise QueryError(f"{what} must be a scalar")
    return value.values


def to_ms(duration: timedelta | None) -> int:
    if duration is None:
        return 0
    return round(duration / timedelta(milliseconds=1))


def drop_name(labels: Labels) -> Labels:
    return tuple(item for item in labels if item[0] != METRIC_NAME)


def labels_text(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def merge(series: list[Series], *, duplicate: str | None = None) -> list[Series]:
    """Series with the same labels combined; an error where two have a value at one step.

    Prometheus refuses a vector with two elements of one label set (after a function or an
    operator dropped the metric name, say); over a range the two may take turns.
    """
    by_labels: dict[Labels, Series] = {}
    for s in series:
        existing = by_labels.get(s.labels)
        if existing is None:
            by_labels[s.labels] = s
            continue
        if (existing.present & s.present).any():
            raise QueryError(
                (duplicate or "vector cannot contain metrics with the same labelset")
                + f": {labels_text(s.labels)}"
            )
        by_labels[s.labels] = Series(
            s.labels,
            np.where(existing.present, existing.values, s.values),
            existing.present | s.present,
        )
    return list(by_labels.values())
