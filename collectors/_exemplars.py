"""Exemplar queries: the traces behind the series a PromQL expression selects.

As Prometheus's `/api/v1/query_exemplars`: every vector selector of the expression (in
functions, aggregations, operators alike) selects series; the answer is each selected
series that has exemplars with timestamps in [start_s, end_s], its labels with `__name__`,
and those exemplars, oldest first. Series are sorted by their labels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import promql_parser as pp
import sqlalchemy as sa

from ._database import database_error_reason
from ._exceptions import QueryError, StoreError
from ._promql_engine import parse
from ._sample import Exemplar
from ._store import SampleStore, StoredSeries
from ._store_matchers import METRIC_NAME, SeriesMatcher, from_vector_selector

__all__ = ["ExemplarSeries", "query_store_exemplars", "selectors_of"]

_ID_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ExemplarSeries:
    """One series' exemplars: `series_labels` include `__name__`; exemplars oldest first."""

    series_labels: Mapping[str, str]
    exemplars: tuple[Exemplar, ...]


def selectors_of(node: Any) -> list[SeriesMatcher]:
    """The series matchers of every vector selector in a parsed expression."""
    found: list[SeriesMatcher] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, pp.VectorSelector):
            found.append(from_vector_selector(current))
        elif isinstance(current, pp.MatrixSelector):
            found.append(from_vector_selector(current.vector_selector))
        elif isinstance(current, pp.SubqueryExpr | pp.ParenExpr | pp.UnaryExpr):
            stack.append(current.expr)
        elif isinstance(current, pp.Call):
            stack.extend(current.args)
        elif isinstance(current, pp.AggregateExpr):
            stack.append(current.expr)
            if current.param is not None:
                stack.append(current.param)
        elif isinstance(current, pp.BinaryExpr):
            stack.extend((current.lhs, current.rhs))
    return found


def query_store_exemplars(
    store: SampleStore, expr: str, start_s: float, end_s: float
) -> list[ExemplarSeries]:
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise QueryError(f"{name} must be a finite number of seconds, got {value!r}")
    if end_s < start_s:
        raise QueryError(f"end_s ({end_s!r}) is before start_s ({start_s!r})")
    if not isinstance(expr, str) or not expr.strip():
        raise QueryError("empty PromQL expression")
    selected: dict[int, StoredSeries] = {}
    for matcher in selectors_of(parse(expr)):
        for series in store.series(matcher):
            selected[series.id] = series
    by_series = _read(store, sorted(selected), float(start_s), float(end_s))
    out = []
    for series_id, exemplars in by_series.items():
        series = selected[series_id]
        labels = dict(sorted({METRIC_NAME: series.name, **series.labels}.items()))
        out.append(ExemplarSeries(labels, tuple(exemplars)))
    return sorted(out, key=lambda one: sorted(one.series_labels.items()))


def _read(
    store: SampleStore, ids: list[int], start_s: float, end_s: float
) -> dict[int, list[Exemplar]]:
    found: dict[int, list[Exemplar]] = {}
    try:
        with store.engine.connect() as connection:
            for begin in range(0, len(ids), _ID_CHUNK):
                chunk = ids[begin : begin + _ID_CHUNK]
                rows = connection.execute(
                    sa.text(
                        "SELECT series_id, timestamp_s, value, labels FROM metric_exemplars"
                        " WHERE series_id IN :ids AND timestamp_s >= :start"
                        " AND timestamp_s <= :end ORDER BY series_id, timestamp_s"
                    ).bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": chunk, "start": start_s, "end": end_s},
                )
                for series_id, timestamp_s, value, labels_json in rows:
                    found.setdefault(int(series_id), []).append(
                        Exemplar(
                            json.loads(labels_json),
                            math.nan if value is None else float(value),
                            float(timestamp_s),
                        )
                    )
    except sa.exc.SQLAlchemyError as error:
        raise StoreError(f"cannot read exemplars: {database_error_reason(error)}") from None
    return found
