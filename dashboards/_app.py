"""The Dash application: the page plus its refresh callbacks, one app per `DashboardData`."""

from __future__ import annotations

import math

import dash

from ._callbacks import register_callbacks
from ._data import DashboardData
from ._exceptions import DashboardArgumentError
from ._layout import page_layout
from ._style import INDEX_PAGE


def create_app(
    data: DashboardData, *, refresh_s: float = 2.0, title: str = "InferOps"
) -> dash.Dash:
    """A read-only dashboard over `data`, refreshed every `refresh_s` seconds in the browser.

    Everything lives on the returned app (no module-level Dash state), so a process can hold
    several, each over its own store.
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
    app.layout = page_layout(title, refresh_s)
    register_callbacks(app, data)
    return app
