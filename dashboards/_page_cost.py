"""The cost page: GPU dollars per request and per 1k output tokens, per node and per
model now, and the fleet's over the chosen time range (by the cost SLO's definition)."""

from __future__ import annotations

from dash import html

from ._element_ids import ElementId
from ._page_fleet import LOADING, data_table, graph
from ._rows import ChartKind
from ._tables import COST_COLUMNS, COST_MODEL_COLUMNS, message_table


def layout() -> list[html.Section]:
    return [
        html.Section(
            id="cost-section",
            children=[
                html.H2("GPU cost per node"),
                data_table(ElementId.COST_TABLE, message_table(COST_COLUMNS, LOADING)),
            ],
        ),
        html.Section(
            id="cost-models-section",
            children=[
                html.H2("GPU cost per model"),
                data_table(ElementId.COST_MODELS_TABLE, message_table(COST_MODEL_COLUMNS, LOADING)),
                html.Div(
                    className="charts",
                    children=[
                        graph(ChartKind.COST_PER_REQUEST, ElementId.COST_REQUEST_CHART),
                        graph(ChartKind.COST_PER_1K_OUTPUT_TOKENS, ElementId.COST_TOKENS_CHART),
                    ],
                ),
            ],
        ),
    ]
