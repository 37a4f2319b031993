"""The alerts page: what is active now, what resolved recently.

Silences (create and expire, behind auth) are a later, state-changing part: `layout`
takes their section ready-made, so they slot in under the alerts without touching them.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import html

from ._element_ids import ElementId
from ._page_fleet import LOADING, data_table
from ._silences import section as silences_section
from ._tables import alert_columns, message_table


def layout(extra_sections: Sequence[html.Section] = ()) -> list[html.Section]:
    """The alerts sections, then `extra_sections` (the silences, once they exist)."""
    return [
        html.Section(
            id="alerts-section",
            children=[
                html.H2("Active alerts"),
                data_table(ElementId.ALERTS_TABLE, message_table(alert_columns(0.0), LOADING)),
            ],
        ),
        html.Section(
            id="recent-alerts-section",
            children=[
                html.H2("Recently resolved"),
                data_table(
                    ElementId.RECENT_ALERTS_TABLE, message_table(alert_columns(0.0), LOADING)
                ),
            ],
        ),
        silences_section(),
        *extra_sections,
    ]
