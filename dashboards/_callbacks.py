"""The live refresh: on every tick of the interval, each section re-reads its data.

One callback per section, each catching its own failure, so a failing query blanks one
table with a message instead of the whole page (and never shows a traceback).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import dash
import plotly.graph_objects as go
from dash import Input, Output, html

from ._data import DashboardData
from ._display import format_instant
from ._element_ids import ElementId
from ._figures import chart_figure, message_figure
from ._layout import CHART_IDS, time_range
from ._rows import ChartKind
from ._tables import (
    FLEET_COLUMNS,
    REMEDIATION_COLUMNS,
    SLO_COLUMNS,
    alert_columns,
    alerts_table,
    fleet_table,
    message_table,
    remediations_table,
    slo_table,
)

_LOG = logging.getLogger(__name__)

TableChildren = list[html.Thead | html.Tbody]


def unavailable(section: str, error: Exception) -> str:
    """What the page says when a section's data cannot be read; details go to the log only."""
    return f"{section} unavailable ({type(error).__name__}); see the dashboard log"


def register_callbacks(app: dash.Dash, data: DashboardData) -> None:
    """Wire every section of `app`'s page to `data`."""
    tick = Input(ElementId.REFRESH, "n_intervals")

    @app.callback(
        Output(ElementId.FLEET_TABLE, "children"),
        Output(ElementId.LAST_UPDATED, "children"),
        tick,
    )
    def refresh_fleet(_tick: int | None) -> tuple[TableChildren, str]:
        now_s = data.now()
        try:
            rows = data.fleet(now_s)
        except Exception as error:
            _LOG.warning("fleet table: query failed", exc_info=True)
            return (
                message_table(FLEET_COLUMNS, unavailable("fleet data", error)),
                f"update failed at {format_instant(now_s)} UTC",
            )
        return fleet_table(rows), f"updated {format_instant(now_s)} UTC"

    @app.callback(Output(ElementId.SLO_TABLE, "children"), tick)
    def refresh_slos(_tick: int | None) -> TableChildren:
        return _table_or_message(
            lambda: slo_table(data.slos(data.now())),
            lambda error: message_table(SLO_COLUMNS, unavailable("SLO status", error)),
        )

    @app.callback(Output(ElementId.ALERTS_TABLE, "children"), tick)
    def refresh_alerts(_tick: int | None) -> TableChildren:
        now_s = data.now()
        return _table_or_message(
            lambda: alerts_table(data.alerts(), now_s),
            lambda error: message_table(alert_columns(now_s), unavailable("alerts", error)),
        )

    @app.callback(Output(ElementId.REMEDIATIONS_TABLE, "children"), tick)
    def refresh_remediations(_tick: int | None) -> TableChildren:
        return _table_or_message(
            lambda: remediations_table(data.remediations()),
            lambda error: message_table(REMEDIATION_COLUMNS, unavailable("remediations", error)),
        )

    for kind, element_id in CHART_IDS.items():
        _register_chart(app, data, kind, element_id)


def _register_chart(
    app: dash.Dash, data: DashboardData, kind: ChartKind, element_id: ElementId
) -> None:
    @app.callback(
        Output(element_id, "figure"),
        Input(ElementId.REFRESH, "n_intervals"),
        Input(ElementId.TIME_RANGE, "value"),
    )
    def refresh_chart(_tick: int | None, range_label: str | None) -> go.Figure:
        chosen = time_range(range_label)
        # Ends on a whole step so successive refreshes query the same points.
        end_s = math.floor(data.now() / chosen.step_s) * chosen.step_s
        try:
            lines = data.chart(kind, end_s - chosen.span_s, end_s, chosen.step_s)
        except Exception as error:
            _LOG.warning("%s chart: query failed", kind, exc_info=True)
            return message_figure(kind, unavailable("chart", error))
        return chart_figure(kind, lines)


def _table_or_message(
    render: Callable[[], TableChildren], on_error: Callable[[Exception], TableChildren]
) -> TableChildren:
    try:
        return render()
    except Exception as error:
        _LOG.warning("table refresh failed", exc_info=True)
        return on_error(error)
