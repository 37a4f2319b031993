"""The charts as Plotly figures: one line per node (or node and quantile, or SLO)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from ._rows import ChartKind, ChartSeries
from ._tables import NO_DATA_YET


@dataclass(frozen=True, slots=True)
class ChartLook:
    title: str
    y_title: str
    y_tick_format: str
    y_max: float | None = None
    """A fixed top of the y axis (100 for percent); raised if a value goes past it."""


CHART_LOOKS: dict[ChartKind, ChartLook] = {
    ChartKind.REQUEST_RATE: ChartLook("Requests per second", "req/s", ".2~f"),
    ChartKind.LATENCY: ChartLook("End-to-end latency p50 / p99", "seconds", ".2~f"),
    ChartKind.ERROR_RATIO: ChartLook("Error ratio (5xx)", "", ".0%"),
    ChartKind.GPU_UTILIZATION: ChartLook("GPU utilization", "%", ".0f", y_max=100.0),
    ChartKind.ERROR_BUDGET_REMAINING: ChartLook(
        "Error budget remaining (burn-down)", "", ".0%", y_max=1.0
    ),
    ChartKind.COST_PER_REQUEST: ChartLook("GPU cost per request", "$", "$.4~f"),
    ChartKind.COST_PER_1K_OUTPUT_TOKENS: ChartLook("GPU cost per 1k output tokens", "$", "$.4~f"),
}


def chart_figure(kind: ChartKind, lines: Sequence[ChartSeries]) -> go.Figure:
    """A line chart of `lines`, or an empty one that says "no data yet"."""
    look = CHART_LOOKS[kind]
    figure = go.Figure()
    for line in lines:
        figure.add_trace(
            go.Scatter(
                x=[_utc(timestamp_s) for timestamp_s in line.timestamps_s],
                y=[value if math.isfinite(value) else None for value in line.values],
                name=line.name,
                mode="lines",
                line={"dash": "dot"} if line.name.endswith(" p50") else {},
            )
        )
    figure.update_layout(
        title={"text": look.title, "font": {"size": 14}, "x": 0.01},
        height=260,
        margin={"l": 50, "r": 10, "t": 36, "b": 30},
        # Anchored by its top, below the date line Plotly writes under the time ticks.
        legend={"orientation": "h", "y": -0.22, "yanchor": "top"},
        template="plotly_white",
        uirevision=str(kind),
        yaxis={"title": {"text": look.y_title}, "tickformat": look.y_tick_format},
        xaxis={"title": {"text": ""}},
    )
    figure.update_yaxes(rangemode="tozero")
    if look.y_max is not None and lines:
        top = max(
            (value for line in lines for value in line.values if math.isfinite(value)),
            default=0.0,
        )
        figure.update_yaxes(range=[0, max(look.y_max, top)])
    if not lines:
        figure.add_annotation(
            text=NO_DATA_YET,
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            font={"size": 16, "color": "#888"},
        )
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
    return figure


def message_figure(kind: ChartKind, message: str) -> go.Figure:
    """The chart's frame with `message` instead of lines (a failed query, say)."""
    figure = chart_figure(kind, [])
    figure.update_annotations(text=message, font={"color": "#b00020"})
    return figure


def _utc(timestamp_s: float) -> datetime.datetime:
    """Naive UTC: Plotly draws wall-clock time as given, and the page speaks UTC throughout."""
    return datetime.datetime.fromtimestamp(timestamp_s, tz=datetime.UTC).replace(tzinfo=None)
