"""The kernels page: each node's latest kernel profile, and its diff against a healthy
peer's (the ranking the remediation engine attached to the incident)."""

from __future__ import annotations

from dash import html

from ._element_ids import ElementId
from ._page_fleet import LOADING, data_table
from ._tables import KERNEL_COLUMNS, KERNEL_DIFF_COLUMNS, message_table


def layout() -> list[html.Section]:
    return [
        html.Section(
            id="kernels-section",
            children=[
                html.H2("Latest kernel profile per node"),
                data_table(ElementId.KERNELS_TABLE, message_table(KERNEL_COLUMNS, LOADING)),
            ],
        ),
        html.Section(
            id="kernel-diff-section",
            children=[
                html.H2("Against a healthy peer"),
                data_table(
                    ElementId.KERNEL_DIFF_TABLE, message_table(KERNEL_DIFF_COLUMNS, LOADING)
                ),
            ],
        ),
    ]
