"""The page's skeleton: sections, empty tables and charts the refresh callbacks fill in."""

from __future__ import annotations

from dataclasses import dataclass

from dash import dcc, html

from ._element_ids import ElementId
from ._figures import chart_figure
from ._rows import ChartKind
from ._tables import (
    FLEET_COLUMNS,
    REMEDIATION_COLUMNS,
    SLO_COLUMNS,
    alert_columns,
    message_table,
)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """One choice of the time-range picker and the step its charts are queried at."""

    label: str
    span_s: float
    step_s: float


TIME_RANGES: tuple[TimeRange, ...] = (
    TimeRange("5m", 300.0, 2.0),
    TimeRange("15m", 900.0, 5.0),
    TimeRange("1h", 3_600.0, 15.0),
    TimeRange("6h", 21_600.0, 90.0),
)
DEFAULT_TIME_RANGE = "15m"

CHART_IDS: dict[ChartKind, ElementId] = {
    ChartKind.REQUEST_RATE: ElementId.REQUESTS_CHART,
    ChartKind.LATENCY: ElementId.LATENCY_CHART,
    ChartKind.ERROR_RATIO: ElementId.ERRORS_CHART,
    ChartKind.GPU_UTILIZATION: ElementId.GPU_CHART,
}

LOADING = "loading…"


def time_range(label: str | None) -> TimeRange:
    """The picker's choice; the default for anything else (a hand-edited request, say)."""
    for choice in TIME_RANGES:
        if choice.label == label:
            return choice
    return time_range(DEFAULT_TIME_RANGE)


def page_layout(title: str, refresh_s: float) -> html.Div:
    """The whole page; every table starts with a "loading" row until its first refresh."""
    return html.Div(
        id=ElementId.PAGE,
        className="page",
        children=[
            html.Header(
                className="topbar",
                children=[
                    html.H1(title),
                    html.Span(LOADING, id=ElementId.LAST_UPDATED, className="updated"),
                    dcc.RadioItems(
                        id=ElementId.TIME_RANGE,
                        className="range-picker",
                        options=[choice.label for choice in TIME_RANGES],
                        value=DEFAULT_TIME_RANGE,
                        inline=True,
                    ),
                ],
            ),
            dcc.Interval(id=ElementId.REFRESH, interval=refresh_s * 1000, n_intervals=0),
            html.Section(
                id="fleet-section",
                children=[
                    html.H2("Fleet"),
                    _table(ElementId.FLEET_TABLE, message_table(FLEET_COLUMNS, LOADING)),
                    html.Div(
                        className="charts",
                        children=[
                            dcc.Graph(
                                id=element_id,
                                figure=chart_figure(kind, []),
                                config={"displaylogo": False},
                            )
                            for kind, element_id in CHART_IDS.items()
                        ],
                    ),
                ],
            ),
            html.Section(
                id="slo-section",
                children=[
                    html.H2("Service level objectives"),
                    _table(ElementId.SLO_TABLE, message_table(SLO_COLUMNS, LOADING)),
                ],
            ),
            html.Section(
                id="alerts-section",
                children=[
                    html.H2("Alerts"),
                    _table(ElementId.ALERTS_TABLE, message_table(alert_columns(0.0), LOADING)),
                ],
            ),
            html.Section(
                id="remediations-section",
                children=[
                    html.H2("Remediations"),
                    _table(
                        ElementId.REMEDIATIONS_TABLE,
                        message_table(REMEDIATION_COLUMNS, LOADING),
                    ),
                ],
            ),
        ],
    )


def _table(element_id: ElementId, children: list[html.Thead | html.Tbody]) -> html.Table:
    return html.Table(children, id=element_id, className="data-table")
