"""Test doubles of the dashboards tests (not collected: no `test_` prefix).

`ScriptedSource` is a `collectors.MetricSource` that answers only the PromQL it was given
(from `dashboards._queries`), so a test also proves which queries the dashboard asks;
`Alert`/`AlertBook` and `Decision`/`DecisionBook` satisfy the reader Protocols of
`dashboards._records`; `table_cells` reads a rendered table back as text and classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.utils

from collectors import InstantSample, QueryError, RangeSeries


class ScriptedSource:
    """Answers the instant and range queries it was given; any other expression is an error,
    as is every query once `broken` is set. Remembers every question in `asked`."""

    def __init__(
        self,
        instant: Mapping[str, Sequence[InstantSample]] | None = None,
        ranges: Mapping[str, Sequence[RangeSeries]] | None = None,
    ) -> None:
        self.instant = dict(instant or {})
        self.ranges = dict(ranges or {})
        self.asked: list[tuple[Any, ...]] = []
        self.broken = False

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        self.asked.append(("query", expr, at_s))
        if self.broken:
            raise QueryError("the store is locked")
        if expr not in self.instant:
            raise QueryError(f"unexpected instant query: {expr}")
        return list(self.instant[expr])

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        self.asked.append(("query_range", expr, start_s, end_s, step_s))
        if self.broken:
            raise QueryError("the store is locked")
        if expr not in self.ranges:
            raise QueryError(f"unexpected range query: {expr}")
        return list(self.ranges[expr])


def sample(value: float, at_s: float = 0.0, **labels: str) -> InstantSample:
    return InstantSample(labels=labels, value=value, timestamp_s=at_s)


def series(timestamps: Sequence[float], values: Sequence[float], **labels: str) -> RangeSeries:
    return RangeSeries(labels=labels, timestamps_s=tuple(timestamps), values=tuple(values))


@dataclass(frozen=True)
class Alert:
    """An alert record as `alerting.Alert` carries it."""

    fingerprint: str
    labels: Mapping[str, str]
    state: str
    active_at_s: float
    annotations: Mapping[str, str] = field(default_factory=dict)
    fired_at_s: float | None = None
    resolved_at_s: float | None = None


class AlertBook:
    """The read side of an alert store: `active` and `recent` as given."""

    def __init__(self, active: Sequence[Alert] = (), recent: Sequence[Alert] = ()) -> None:
        self._active = list(active)
        self._recent = list(recent)
        self.broken = False
        self.limits: list[int] = []

    def active(self) -> list[Alert]:
        if self.broken:
            raise RuntimeError("alerts table missing")
        return list(self._active)

    def recent(self, limit: int) -> list[Alert]:
        self.limits.append(limit)
        return self._recent[:limit]


@dataclass(frozen=True)
class Decision:
    """A decision record as `remediation.Decision` carries it."""

    id: int
    action: str
    node: str
    outcome: str
    reason: str
    started_at_s: float
    guard: str | None = None
    actor: str = "policy:drain-unhealthy-node"
    alertname: str | None = None
    alert_fingerprint: str | None = None
    finished_at_s: float | None = None


class DecisionBook:
    """The read side of a decision log: the `recent` decisions as given (newest first)."""

    def __init__(self, decisions: Sequence[Decision] = ()) -> None:
        self._decisions = list(decisions)
        self.broken = False

    def recent(self, limit: int) -> list[Decision]:
        if self.broken:
            raise RuntimeError("decision log unreadable")
        return self._decisions[:limit]


class SetClock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


# --- reading rendered output back ----------------------------------------------------------


def as_json(component: Any) -> Any:
    """A Dash component tree (or a list of them) as the JSON the browser receives."""
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


@dataclass(frozen=True)
class Row:
    key: str | None
    css_class: str
    cells: dict[str, tuple[str, str]]
    """`data-column` -> (text, CSS class)."""


def table_headers(children: Any) -> list[str]:
    """The header texts of a rendered table's children (`[Thead, Tbody]`)."""
    head = as_json(children)[0]
    return [th["props"]["children"] for th in head["props"]["children"]["props"]["children"]]


def table_rows(children: Any) -> list[Row]:
    """The body rows of a rendered table's children, each cell as text and class."""
    body = as_json(children)[1]
    rows = body["props"]["children"]
    if isinstance(rows, dict):
        rows = [rows]
    result: list[Row] = []
    for tr in rows:
        tds = tr["props"]["children"]
        if isinstance(tds, dict):
            tds = [tds]
        result.append(
            Row(
                key=tr["props"].get("data-key"),
                css_class=tr["props"].get("className", ""),
                cells={
                    td["props"]["data-column"]: (
                        td["props"]["children"], td["props"].get("className", "")
                    )
                    for td in tds
                },
            )
        )
    return result


def table_message(children: Any) -> tuple[str, int]:
    """The message and column span of a table that shows a message instead of rows."""
    [row] = table_rows(children)
    td = as_json(children)[1]["props"]["children"]["props"]["children"]
    assert row.cells == {"message": (td["props"]["children"], "message")}
    return td["props"]["children"], td["props"]["colSpan"]
