"""The remediation page: incident timelines (per alert) and the full audit trail."""

from __future__ import annotations

from dash import html

from ._approvals import section as approvals_section
from ._element_ids import ElementId
from ._page_fleet import LOADING, data_table
from ._tables import REMEDIATION_COLUMNS, message_table


def layout() -> list[html.Section]:
    return [
        approvals_section(),
        html.Section(
            id="incidents-section",
            children=[
                html.H2("Incidents"),
                html.Div(
                    html.P(LOADING, className="message"),
                    id=ElementId.INCIDENTS,
                    className="incidents",
                ),
            ],
        ),
        html.Section(
            id="remediations-section",
            children=[
                html.H2("Audit trail"),
                data_table(
                    ElementId.REMEDIATIONS_TABLE, message_table(REMEDIATION_COLUMNS, LOADING)
                ),
            ],
        ),
    ]
