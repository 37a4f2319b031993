"""The SLOs page: budgets, burn rates per window, the alerts each SLO drives, and the
burn-down of every error budget over the chosen time range."""

from __future__ import annotations

from dash import html

from ._element_ids import ElementId
from ._page_fleet import LOADING, data_table, graph
from ._rows import ChartKind
from ._tables import message_table, slo_columns


def layout() -> list[html.Section]:
    return [
        html.Section(
            id="slo-section",
            children=[
                html.H2("Service level objectives"),
                data_table(ElementId.SLO_TABLE, message_table(slo_columns({}), LOADING)),
            ],
        ),
        html.Section(
            id="slo-budget-section",
            children=[
                html.H2("Error budget remaining"),
                graph(ChartKind.ERROR_BUDGET_REMAINING, ElementId.BUDGET_CHART),
            ],
        ),
    ]
