"""The Dash application: the pages plus their refresh callbacks, one app per `DashboardData`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import dash
from dash import html

from ._callbacks import register_callbacks
from ._data import DashboardData
from ._exceptions import DashboardArgumentError
from ._layout import page_layout
from ._style import INDEX_PAGE


def create_app(
    data: DashboardData,
    *,
    refresh_s: float = 2.0,
    title: str = "InferOps",
    alerts_extra_sections: Sequence[html.Section] = (),
) -> dash.Dash:
    """A dashboard over `data` (pages: fleet, SLOs, alerts, remediation), refreshed every
    `refresh_s` seconds in the browser.

    `alerts_extra_sections` go under the alerts page's tables: the place for silences,
    whose callbacks the caller registers on the returned app. Everything lives on the
    returned app (no module-level Dash state), so a process can hold several, each over
    its own store.
    """
    if not (math.isfinite(refresh_s) and refresh_s > 0):
        raise DashboardArgumentError(
            f"refresh_s must be a positive number of seconds, got {refresh_s!r}"
        )
    if not title.strip():
        raise DashboardArgumentError(f"title must not be empty, got {title!r}")
    app = dash.Dash(
        __name__,
        title=title,
        update_title="",
        serve_locally=True,
        index_string=INDEX_PAGE,
    )
    app.layout = page_layout(title, refresh_s, alerts_extra=alerts_extra_sections)
    register_callbacks(app, data)
    return app
