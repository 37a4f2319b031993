"""The live refresh: on every tick of the interval, the shown page re-reads its data.

A page's callbacks do nothing while another page is shown (`PreventUpdate`), so the
store answers only for what the engineer is looking at; changing page refreshes the new
one at once (the fleet's callback takes the path itself, so the landing page asks for its
table without waiting for routing; the other pages take their own class, which routing
sets, and which also keeps the callbacks that share the "updated" line distinct for Dash).
A page's charts follow its table (the table's content is their input): the first paint
of the table never waits behind chart queries and drawing, which take longer.

Each section catches its own failure, so a failing query blanks one table with a message
instead of the whole page (never a traceback).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, html
from dash.exceptions import PreventUpdate

from ._data import DashboardData
from ._display import format_instant
from ._element_ids import ElementId
from ._figures import chart_figure, message_figure
from ._layout import CHART_IDS, time_range
from ._pages import PAGE_HIDDEN, PAGE_SHOWN, PAGES, PageName, page_for_path
from ._rows import AlertRow, ChartKind, SloAlert
from ._tables import (
    COST_COLUMNS,
    COST_MODEL_COLUMNS,
    FLEET_COLUMNS,
    KERNEL_COLUMNS,
    KERNEL_DIFF_COLUMNS,
    NO_COST_SLO,
    REMEDIATION_COLUMNS,
    Column,
    alert_columns,
    alerts_table,
    cost_table,
    fleet_table,
    kernel_diff_table,
    kernels_table,
    message_table,
    remediations_table,
    slo_columns,
    slo_table,
)
from ._timelines import incident_blocks, message_block

_LOG = logging.getLogger(__name__)

TableChildren = list[html.Thead | html.Tbody]
Rendered = TypeVar("Rendered")

NAV_LINK = "nav-link"
NAV_LINK_CURRENT = "nav-link current"


def unavailable(section: str, error: Exception) -> str:
    """What the page says when a section's data cannot be read; details go to the log only."""
    return f"{section} unavailable ({type(error).__name__}); see the dashboard log"


def updated_text(now_s: float) -> str:
    return f"updated {format_instant(now_s)} UTC"


def render_fleet(data: DashboardData) -> tuple[TableChildren, str]:
    """The fleet table and the "updated" line, now; a message in the table when the
    query fails."""
    now_s = data.now()
    try:
        rows = data.fleet(now_s)
    except Exception as error:
        _LOG.warning("fleet table: query failed", exc_info=True)
        return (
            message_table(FLEET_COLUMNS, unavailable("fleet data", error)),
            f"update failed at {format_instant(now_s)} UTC",
        )
    return fleet_table(rows), updated_text(now_s)


def register_callbacks(app: dash.Dash, data: DashboardData) -> None:
    """Wire every page of `app` to `data`."""
    tick = Input(ElementId.REFRESH, "n_intervals")
    path = Input(ElementId.LOCATION, "pathname")
    shown = {
        page.name: Input(page.element_id, "className")
        for page in PAGES
        if page.name is not PageName.FLEET
    }
    also_updated = Output(ElementId.LAST_UPDATED, "children", allow_duplicate=True)

    @app.callback(
        *[Output(page.element_id, "className") for page in PAGES],
        *[Output(f"nav-{page.name}", "className") for page in PAGES],
        path,
    )
    def show_page(pathname: str | None) -> tuple[str, ...]:
        current = page_for_path(pathname)
        return (
            *[PAGE_SHOWN if page.name is current else PAGE_HIDDEN for page in PAGES],
            *[NAV_LINK_CURRENT if page.name is current else NAV_LINK for page in PAGES],
        )

    # Not called on page load: the page arrives with its fleet table (see `create_app`).
    @app.callback(
        Output(ElementId.FLEET_TABLE, "children"),
        Output(ElementId.LAST_UPDATED, "children"),
        tick,
        path,
        prevent_initial_call=True,
    )
    def refresh_fleet(_tick: int | None, pathname: str | None) -> tuple[TableChildren, str]:
        if page_for_path(pathname) is not PageName.FLEET:
            raise PreventUpdate
        return render_fleet(data)

    @app.callback(
        Output(ElementId.SLO_TABLE, "children"),
        also_updated,
        tick,
        shown[PageName.SLOS],
        prevent_initial_call="initial_duplicate",
    )
    def refresh_slos(_tick: int | None, page_class: str | None) -> tuple[TableChildren, str]:
        _only_when_shown(page_class)
        now_s = data.now()
        driven: dict[str, tuple[SloAlert, ...]] | None
        try:
            driven = data.slo_alerts()
        except Exception:
            _LOG.warning("SLO alerts: the alert store could not be read", exc_info=True)
            driven = None
        table = _or_message(
            lambda: slo_table(data.slos(now_s), driven),
            lambda error: message_table(slo_columns(driven), unavailable("SLO status", error)),
        )
        return table, updated_text(now_s)

    @app.callback(
        Output(ElementId.ALERTS_TABLE, "children"),
        Output(ElementId.RECENT_ALERTS_TABLE, "children"),
        also_updated,
        tick,
        shown[PageName.ALERTS],
        prevent_initial_call="initial_duplicate",
    )
    def refresh_alerts(
        _tick: int | None, page_class: str | None
    ) -> tuple[TableChildren, TableChildren, str]:
        _only_when_shown(page_class)
        now_s = data.now()
        try:
            rows = data.alerts()
        except Exception as error:
            _LOG.warning("alerts: the alert store could not be read", exc_info=True)
            message = message_table(alert_columns(now_s), unavailable("alerts", error))
            return message, message, updated_text(now_s)
        active = [row for row in rows if not _resolved(row)]
        recent = [row for row in rows if _resolved(row)]
        return (
            alerts_table(active, now_s, empty_message="no active alerts"),
            alerts_table(recent, now_s, empty_message="no resolved alerts yet"),
            updated_text(now_s),
        )

    @app.callback(
        Output(ElementId.INCIDENTS, "children"),
        Output(ElementId.REMEDIATIONS_TABLE, "children"),
        also_updated,
        tick,
        shown[PageName.REMEDIATION],
        prevent_initial_call="initial_duplicate",
    )
    def refresh_remediations(
        _tick: int | None, page_class: str | None
    ) -> tuple[Sequence[html.Div | html.P], TableChildren, str]:
        _only_when_shown(page_class)
        now_s = data.now()
        timelines: list[html.Div | html.P] = _or_message(
            lambda: incident_blocks(data.incidents()),
            lambda error: [message_block(unavailable("incidents", error))],
        )
        trail = _or_message(
            lambda: remediations_table(data.remediations()),
            lambda error: message_table(REMEDIATION_COLUMNS, unavailable("remediations", error)),
        )
        return timelines, trail, updated_text(now_s)

    @app.callback(
        Output(ElementId.COST_TABLE, "children"),
        Output(ElementId.COST_MODELS_TABLE, "children"),
        also_updated,
        tick,
        shown[PageName.COST],
        prevent_initial_call="initial_duplicate",
    )
    def refresh_cost(
        _tick: int | None, page_class: str | None
    ) -> tuple[TableChildren, TableChildren, str]:
        _only_when_shown(page_class)
        now_s = data.now()
        if not data.has_cost:
            return _two_messages(COST_COLUMNS, COST_MODEL_COLUMNS, NO_COST_SLO, now_s)
        try:
            nodes, models = data.costs(now_s)
        except Exception as error:
            _LOG.warning("cost: query failed", exc_info=True)
            message = unavailable("cost data", error)
            return _two_messages(COST_COLUMNS, COST_MODEL_COLUMNS, message, now_s)
        return cost_table(nodes), cost_table(models, by_model=True), updated_text(now_s)

    @app.callback(
        Output(ElementId.KERNELS_TABLE, "children"),
        Output(ElementId.KERNEL_DIFF_TABLE, "children"),
        also_updated,
        tick,
        shown[PageName.KERNELS],
        prevent_initial_call="initial_duplicate",
    )
    def refresh_kernels(
        _tick: int | None, page_class: str | None
    ) -> tuple[TableChildren, TableChildren, str]:
        _only_when_shown(page_class)
        now_s = data.now()
        try:
            latest, diffs = data.kernels()
        except Exception as error:
            _LOG.warning("kernels: the profiles could not be read", exc_info=True)
            message = unavailable("kernel profiles", error)
            return _two_messages(KERNEL_COLUMNS, KERNEL_DIFF_COLUMNS, message, now_s)
        return kernels_table(latest), kernel_diff_table(diffs), updated_text(now_s)

    for kind, element_id in CHART_IDS.items():
        _register_chart(app, data, kind, element_id, ElementId.FLEET_TABLE, ElementId.FLEET_PAGE)
    _register_chart(
        app,
        data,
        ChartKind.ERROR_BUDGET_REMAINING,
        ElementId.BUDGET_CHART,
        ElementId.SLO_TABLE,
        ElementId.SLOS_PAGE,
    )
    for kind, element_id in (
        (ChartKind.COST_PER_REQUEST, ElementId.COST_REQUEST_CHART),
        (ChartKind.COST_PER_1K_OUTPUT_TOKENS, ElementId.COST_TOKENS_CHART),
    ):
        _register_chart(
            app, data, kind, element_id, ElementId.COST_MODELS_TABLE, ElementId.COST_PAGE
        )


def _register_chart(
    app: dash.Dash,
    data: DashboardData,
    kind: ChartKind,
    element_id: ElementId,
    table: ElementId,
    page: ElementId,
) -> None:
    """A chart redrawn after each refresh of `table` (and on a new time range), while
    `page` is shown."""

    @app.callback(
        Output(element_id, "figure"),
        Input(table, "children"),
        Input(ElementId.TIME_RANGE, "value"),
        State(page, "className"),
    )
    def refresh_chart(_table: object, range_label: str | None, page_class: str | None) -> go.Figure:
        _only_when_shown(page_class)
        chosen = time_range(range_label)
        # Ends on a whole step so successive refreshes query the same points.
        end_s = math.floor(data.now() / chosen.step_s) * chosen.step_s
        try:
            lines = data.chart(kind, end_s - chosen.span_s, end_s, chosen.step_s)
        except Exception as error:
            _LOG.warning("%s chart: query failed", kind, exc_info=True)
            return message_figure(kind, unavailable("chart", error))
        return chart_figure(kind, lines)


def _two_messages(
    first: Sequence[Column[Any]], second: Sequence[Column[Any]], message: str, now_s: float
) -> tuple[TableChildren, TableChildren, str]:
    """A page's two tables both saying `message` (no data, or it failed), and the time."""
    return message_table(first, message), message_table(second, message), updated_text(now_s)


def _only_when_shown(page_class: str | None) -> None:
    """Stop the callback unless its page is the one shown (routing sets the class)."""
    if page_class != PAGE_SHOWN:
        raise PreventUpdate


def _resolved(row: AlertRow) -> bool:
    return row.state == "resolved"


def _or_message(
    render: Callable[[], Rendered], on_error: Callable[[Exception], Rendered]
) -> Rendered:
    try:
        return render()
    except Exception as error:
        _LOG.warning("section refresh failed", exc_info=True)
        return on_error(error)
