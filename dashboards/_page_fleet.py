"""The fleet page: one row per node (status, latency, GPUs, queue) and the fleet charts."""

from __future__ import annotations

from dash import dcc, html

from ._element_ids import ElementId
from ._figures import chart_figure
from ._rows import ChartKind
from ._tables import FLEET_COLUMNS, message_table

LOADING = "loading\N{HORIZONTAL ELLIPSIS}"

CHART_IDS: dict[ChartKind, ElementId] = {
    ChartKind.REQUEST_RATE: ElementId.REQUESTS_CHART,
    ChartKind.LATENCY: ElementId.LATENCY_CHART,
    ChartKind.ERROR_RATIO: ElementId.ERRORS_CHART,
    ChartKind.GPU_UTILIZATION: ElementId.GPU_CHART,
}


def graph(kind: ChartKind, element_id: ElementId) -> dcc.Graph:
    return dcc.Graph(id=element_id, figure=chart_figure(kind, []), config={"displaylogo": False})


def data_table(element_id: ElementId, children: list[html.Thead | html.Tbody]) -> html.Table:
    return html.Table(children, id=element_id, className="data-table")


def layout(table: list[html.Thead | html.Tbody] | None = None) -> list[html.Section]:
    """The page, its table `table` when already rendered, else a "loading" row."""
    return [
        html.Section(
            id="fleet-section",
            children=[
                html.H2("Fleet"),
                data_table(
                    ElementId.FLEET_TABLE,
                    message_table(FLEET_COLUMNS, LOADING) if table is None else table,
                ),
                html.Div(
                    className="charts",
                    children=[graph(kind, element_id) for kind, element_id in CHART_IDS.items()],
                ),
            ],
        )
    ]
