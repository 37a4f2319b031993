"""PromQL aggregations (sum, avg, topk, quantile, ... by/without), over every step at once."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import promql_parser as pp

from . import _promql_functions as fn
from ._promql_values import FloatArray, Labels, Series
from ._store_matchers import METRIC_NAME

SUPPORTED_AGGREGATIONS = frozenset(
    ["sum", "avg", "max", "min", "count", "group", "stddev", "stdvar", "topk", "bottomk",
     "quantile"]
)


def aggregate(
    op: str, vector: list[Series], param: FloatArray | None, modifier: Any, n: int
) -> list[Series]:
    """`op` of `vector` per group of `modifier` (by/without; None: one group), `n` steps."""
    grouping: Callable[[Labels], Labels]
    if modifier is None:
        grouping = lambda labels: ()  # noqa: E731
    elif modifier.type == pp.AggModifierType.By:
        keep = frozenset(modifier.labels)
        grouping = lambda labels: tuple(i for i in labels if i[0] in keep)  # noqa: E731
    else:
        drop = frozenset([*modifier.labels, METRIC_NAME])
        grouping = lambda labels: tuple(i for i in labels if i[0] not in drop)  # noqa: E731
    groups: dict[Labels, list[Series]] = defaultdict(list)
    for s in vector:
        groups[grouping(s.labels)].append(s)
    if op in ("topk", "bottomk"):
        assert param is not None
        return _top_or_bottom(op, param, groups.values(), n)
    out = []
    for key, members in groups.items():
        values = np.stack([s.values for s in members])
        present = np.stack([s.present for s in members])
        count = present.sum(axis=0)
        any_present = count > 0
        if op in ("sum", "avg"):
            total = np.where(present, values, 0.0).sum(axis=0)
            result = total if op == "sum" else total / count
        elif op == "count":
            result = count.astype(np.float64)
        elif op == "group":
            result = np.ones(n)
        elif op == "max":
            result = np.fmax.reduce(np.where(present, values, np.nan), axis=0)
        elif op == "min":
            result = np.fmin.reduce(np.where(present, values, np.nan), axis=0)
        elif op in ("stddev", "stdvar"):
            mean = np.where(present, values, 0.0).sum(axis=0) / count
            squares = np.where(present, (values - mean) ** 2, 0.0).sum(axis=0) / count
            result = squares if op == "stdvar" else np.sqrt(squares)
        else:  # quantile
            assert param is not None
            result = np.full(n, np.nan)
            for i in np.nonzero(any_present)[0]:
                result[i] = fn.quantile(float(param[i]), values[present[:, i], i].tolist())
        out.append(Series(key, np.where(any_present, result, np.nan), any_present))
    return out


def _top_or_bottom(
    op: str, param: FloatArray, groups: Iterable[list[Series]], n: int
) -> list[Series]:
    out = []
    for members in groups:
        chosen = np.zeros((len(members), n), dtype=np.bool_)
        for i in range(n):
            k = param[i]
            if not math.isfinite(k) or int(k) < 1:
                continue
            ranked = sorted(
                (
                    (math.isnan(value), -value if op == "topk" else value, j)
                    for j, s in enumerate(members)
                    if s.present[i]
                    for value in (float(s.values[i]),)
                ),
            )
            for _nan, _key, j in ranked[: int(k)]:
                chosen[j, i] = True
        for j, s in enumerate(members):
            if chosen[j].any():
                out.append(Series(s.labels, s.values, chosen[j]))
    return out
