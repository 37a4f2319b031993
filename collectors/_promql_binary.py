"""PromQL binary operators: arithmetic, comparison and set operators, and vector matching."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import promql_parser as pp

from ._exceptions import QueryError
from ._promql_values import (
    BoolArray,
    FloatArray,
    IntArray,
    Labels,
    Scalar,
    Series,
    String,
    Value,
    drop_name,
    labels_text,
    merge,
)
from ._store_matchers import METRIC_NAME

ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,  # Go's math.Mod: the sign of the dividend
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON: dict[str, Callable[[Any, Any], Any]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
SET_OPERATORS = ("and", "or", "unless")


def apply_binary(op: str, lhs: Value, rhs: Value, modifier: Any, n: int) -> Value:
    """`lhs op rhs`, both sides evaluated; `modifier` is the node's (bool, on, group_x)."""
    return_bool = bool(modifier is not None and modifier.return_bool)
    if modifier is not None and modifier.fill_values is not None and (
        modifier.fill_values.lhs is not None or modifier.fill_values.rhs is not None
    ):
        raise QueryError("fill modifiers are not supported by the embedded PromQL engine")
    if isinstance(lhs, String) or isinstance(rhs, String):
        raise QueryError(f"operator {op} needs numbers or instant vectors, not strings")
    if op not in ARITHMETIC and op not in COMPARISON and op not in SET_OPERATORS:
        raise QueryError(f"operator {op} is not supported by the embedded PromQL engine")
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        if op in ARITHMETIC:
            return Scalar(ARITHMETIC[op](lhs.values, rhs.values))
        if op in COMPARISON:
            return Scalar(COMPARISON[op](lhs.values, rhs.values).astype(np.float64))
        raise QueryError(f"set operator {op} needs instant vectors on both sides")
    if isinstance(lhs, list) and isinstance(rhs, Scalar):
        return _vector_scalar(op, lhs, rhs.values, n, swap=False, return_bool=return_bool)
    if isinstance(lhs, Scalar) and isinstance(rhs, list):
        return _vector_scalar(op, rhs, lhs.values, n, swap=True, return_bool=return_bool)
    assert isinstance(lhs, list) and isinstance(rhs, list)
    on, names = False, ()
    card = "one-to-one" if op not in SET_OPERATORS else "many-to-many"
    include: tuple[str, ...] = ()
    if modifier is not None:
        if modifier.matching is not None:
            on = modifier.matching.type == pp.LabelModifierType.Include
            names = tuple(modifier.matching.labels)
        if modifier.card == pp.VectorMatchCardinality.ManyToOne:
            card = "many-to-one"
        elif modifier.card == pp.VectorMatchCardinality.OneToMany:
            card = "one-to-many"
        include = tuple(modifier.group_labels or ())
    signature = _signature_function(on, names)
    if op in SET_OPERATORS:
        return _set_operator(op, lhs, rhs, signature, n)
    return _vector_vector(
        op, lhs, rhs, signature, n, card=card, on=on, names=names, include=include,
        return_bool=return_bool,
    )


def _vector_scalar(
    op: str,
    vector: list[Series],
    scalar: FloatArray,
    n: int,
    *,
    swap: bool,
    return_bool: bool,
) -> list[Series]:
    if op in SET_OPERATORS:
        raise QueryError(f"set operator {op} needs instant vectors on both sides")
    out = []
    for s in vector:
        left, right = (scalar, s.values) if swap else (s.values, scalar)
        labels = s.labels
        if op in ARITHMETIC:
            values = ARITHMETIC[op](left, right)
            present = s.present
            labels = drop_name(labels)
        else:
            keep = COMPARISON[op](left, right)
            if return_bool:
                values = keep.astype(np.float64)
                present = s.present
                labels = drop_name(labels)
            else:
                values = s.values  # a filter keeps the vector's own value
                present = s.present & keep
        if present.any():
            out.append(Series(labels, values, present))
    return merge(out)

def _set_operator(
    op: str,
    lhs: list[Series],
    rhs: list[Series],
    signature: Callable[[Labels], Labels],
    n: int,
) -> list[Series]:
    def presence_by_signature(side: list[Series]) -> dict[Labels, BoolArray]:
        found: dict[Labels, BoolArray] = {}
        for s in side:
            sig = signature(s.labels)
            found[sig] = found[sig] | s.present if sig in found else s.present.copy()
        return found

    none = np.zeros(n, dtype=np.bool_)
    if op == "and":
        right = presence_by_signature(rhs)
        out = [
            Series(s.labels, s.values, s.present & right.get(signature(s.labels), none))
            for s in lhs
        ]
    elif op == "unless":
        right = presence_by_signature(rhs)
        out = [
            Series(s.labels, s.values, s.present & ~right.get(signature(s.labels), none))
            for s in lhs
        ]
    else:  # or
        left = presence_by_signature(lhs)
        out = list(lhs) + [
            Series(s.labels, s.values, s.present & ~left.get(signature(s.labels), none))
            for s in rhs
        ]
    return merge([s for s in out if s.present.any()])

def _vector_vector(
    op: str,
    lhs: list[Series],
    rhs: list[Series],
    signature: Callable[[Labels], Labels],
    n: int,
    *,
    card: str,
    on: bool,
    names: tuple[str, ...],
    include: tuple[str, ...],
    return_bool: bool,
) -> list[Series]:
    swapped = card == "one-to-many"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    many_any = np.zeros(n, dtype=np.bool_)
    for s in many:
        many_any |= s.present
    one_any = np.zeros(n, dtype=np.bool_)
    for s in one:
        one_any |= s.present
    active = many_any & one_any  # Prometheus skips steps where either side is empty
    one_by_sig: dict[Labels, list[Series]] = defaultdict(list)
    for s in one:
        one_by_sig[signature(s.labels)].append(s)
    side = "left" if swapped else "right"
    for sig, members in one_by_sig.items():
        if len(members) > 1:
            counts = np.sum([m.present for m in members], axis=0)
            if ((counts > 1) & active).any():
                raise QueryError(
                    f"found duplicate series for the match group {labels_text(sig)} on the "
                    f"{side} hand-side of the operation: many-to-many matching not allowed: "
                    "matching labels must be unique on one side"
                )
    matched_per_sig: dict[Labels, IntArray] = {}
    out = []
    for s in many:
        sig = signature(s.labels)
        for other in one_by_sig.get(sig, ()):
            present = s.present & other.present
            if not present.any():
                continue
            left, right = (other.values, s.values) if swapped else (s.values, other.values)
            labels = _result_labels(s.labels, other.labels, op, card, on, names, include)
            if op in ARITHMETIC:
                values = ARITHMETIC[op](left, right)
            else:
                keep = COMPARISON[op](left, right)
                if return_bool:
                    values = keep.astype(np.float64)
                else:
                    values = left
                    present = present & keep
            if return_bool:
                labels = drop_name(labels)
            if not present.any():
                continue
            if card == "one-to-one":
                seen = matched_per_sig.setdefault(sig, np.zeros(n, dtype=np.int64))
                seen += present
                if (seen > 1).any():
                    raise QueryError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        f"(group_left/group_right): {labels_text(sig)}"
                    )
            out.append(Series(labels, values, present))
    return merge(out, duplicate="multiple matches for labels: grouping labels must ensure "
                                "unique matches")


def _signature_function(on: bool, names: Sequence[str]) -> Callable[[Labels], Labels]:
    if on:
        keep = frozenset(names)
        return lambda labels: tuple(i for i in labels if i[0] in keep)
    drop = frozenset([*names, METRIC_NAME])
    return lambda labels: tuple(i for i in labels if i[0] not in drop)


def _result_labels(
    many: Labels,
    one: Labels,
    op: str,
    card: str,
    on: bool,
    names: tuple[str, ...],
    include: tuple[str, ...],
) -> Labels:
    labels = dict(many)
    if op in ARITHMETIC:
        labels.pop(METRIC_NAME, None)
    if card == "one-to-one":
        if on:
            labels = {k: v for k, v in labels.items() if k in names}
        else:
            for name in names:
                labels.pop(name, None)
    if include:
        one_labels = dict(one)
        for name in include:
            value = one_labels.get(name, "")
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
    return tuple(sorted(labels.items()))
