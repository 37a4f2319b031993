"""The Dash application: the pages plus their refresh callbacks, one app per `DashboardData`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dash
import flask
from dash import html

from ._actions import ControlPlaneClient, TokenSessions
from ._approvals import register_approval_callbacks
from ._callbacks import register_callbacks, render_fleet
from ._data import DashboardData
from ._element_ids import ElementId
from ._exceptions import DashboardArgumentError
from ._first_paint import FleetSnapshot, RenderedFleet, static_html
from ._layout import page_layout
from ._page_fleet import data_table
from ._pages import PageName, page_for_path
from ._silences import register_silence_callbacks
from ._style import INDEX_PAGE

_MOUNT_POINT = '<div id="react-entry-point">'


class _FirstPaintDash(dash.Dash):
    """Dash whose index page of the fleet path carries the fleet table as static HTML."""

    def __init__(self, fleet: FleetSnapshot, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fleet = fleet

    def interpolate_index(
        self,
        metas: Any = "",
        title: Any = "",
        css: Any = "",
        config: Any = "",
        scripts: Any = "",
        app_entry: Any = "",
        favicon: Any = "",
        renderer: Any = "",
    ) -> Any:
        kwargs = {
            "metas": metas,
            "title": title,
            "css": css,
            "config": config,
            "scripts": scripts,
            "app_entry": app_entry,
            "favicon": favicon,
            "renderer": renderer,
        }
        entry = str(app_entry)
        if (
            flask.has_request_context()
            and _MOUNT_POINT in entry
            and page_for_path(flask.request.path) is PageName.FLEET
        ):
            rendered = self._fleet.render_and_keep()
            table = data_table(ElementId.FLEET_TABLE, rendered.table)
            kwargs["app_entry"] = (
                f'{_MOUNT_POINT}<div class="page"><section><h2>Fleet</h2>'
                f"{static_html(table)}</section></div></div>"
            )
        return super().interpolate_index(**kwargs)  # type: ignore[no-untyped-call]


def _is_layout_request() -> bool:
    """Whether this is the browser asking for the page's layout (not Dash's own check)."""
    return flask.has_request_context() and flask.request.path.endswith("/_dash-layout")


def create_app(
    data: DashboardData,
    *,
    refresh_s: float = 2.0,
    title: str = "InferOps",
    alerts_extra_sections: Sequence[html.Section] = (),
    api: ControlPlaneClient | None = None,
) -> dash.Dash:
    """A dashboard over `data` (pages: fleet, SLOs, alerts, remediation), refreshed every
    `refresh_s` seconds in the browser.

    `alerts_extra_sections` go under the alerts page's tables: the place for silences,
    whose callbacks the caller registers on the returned app. Everything lives on the
    returned app (no module-level Dash state), so a process can hold several, each over
    its own store. `api` is the control-plane API that approvals go through (None: the
    page shows them read-only).
    """
    if not (math.isfinite(refresh_s) and refresh_s > 0):
        raise DashboardArgumentError(
            f"refresh_s must be a positive number of seconds, got {refresh_s!r}"
        )
    if not title.strip():
        raise DashboardArgumentError(f"title must not be empty, got {title!r}")

    def render() -> RenderedFleet:
        table, updated = render_fleet(data)
        return RenderedFleet(table, updated)

    # The index of a page load renders the fleet table; its layout request takes it over.
    fleet = FleetSnapshot(render, max_age_s=min(refresh_s, 10.0))
    app = _FirstPaintDash(
        fleet,
        name=__name__,
        title=title,
        update_title="",
        serve_locally=True,
        index_string=INDEX_PAGE,
    )

    static_layout = page_layout(title, refresh_s, alerts_extra=alerts_extra_sections)

    def layout() -> html.Div:
        # Per page load, with the fleet table in it: the landing page's first paint waits
        # for neither Dash's initial callbacks nor plotly.js (4.8 MB, fetched and parsed
        # for the charts after the table is on screen).
        if not _is_layout_request():
            return static_layout  # Dash checking the layout's ids: no data needed
        rendered = fleet.take()
        return page_layout(
            title,
            refresh_s,
            alerts_extra=alerts_extra_sections,
            fleet_table=rendered.table,
            updated=rendered.updated,
        )

    # Dash embeds the validation layout in every index page: the one without data, so
    # the page does not carry a second (and stale) fleet table.
    app.validation_layout = static_layout  # type: ignore[assignment]
    app.layout = layout
    register_callbacks(app, data)
    sessions = TokenSessions()
    register_approval_callbacks(app, api, sessions)
    register_silence_callbacks(app, api, sessions)
    return app
