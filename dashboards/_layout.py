"""The shell around the pages: title, page links, update time, time-range picker, the
refresh interval, and every page (only the current one shown)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dash import dcc, html

from . import (
    _page_alerts,
    _page_cost,
    _page_fleet,
    _page_kernels,
    _page_remediation,
    _page_slos,
)
from ._element_ids import ElementId
from ._page_fleet import CHART_IDS, LOADING
from ._pages import PAGE_HIDDEN, PAGE_SHOWN, PAGES, PageName

__all__ = ["CHART_IDS", "LOADING", "TIME_RANGES", "TimeRange", "page_layout", "time_range"]


@dataclass(frozen=True, slots=True)
class TimeRange:
    """One choice of the time-range picker and the step its charts are queried at."""

    label: str
    span_s: float
    step_s: float


TIME_RANGES: tuple[TimeRange, ...] = (
    TimeRange("5m", 300.0, 2.0),
    TimeRange("15m", 900.0, 5.0),
    TimeRange("1h", 3_600.0, 15.0),
    TimeRange("6h", 21_600.0, 90.0),
    TimeRange("24h", 86_400.0, 300.0),
)
DEFAULT_TIME_RANGE = "15m"


def time_range(label: str | None) -> TimeRange:
    """The picker's choice; the default for anything else (a hand-edited request, say)."""
    for choice in TIME_RANGES:
        if choice.label == label:
            return choice
    return time_range(DEFAULT_TIME_RANGE)


def page_layout(
    title: str,
    refresh_s: float,
    *,
    alerts_extra: Sequence[html.Section] = (),
    fleet_table: list[html.Thead | html.Tbody] | None = None,
    updated: str = LOADING,
) -> html.Div:
    """Every page; every table starts with a "loading" row until its first refresh, except
    the fleet table when `fleet_table` (rendered with the page) is given.

    `alerts_extra` are sections appended to the alerts page (the silences, later).
    """
    contents: dict[PageName, list[html.Section]] = {
        PageName.FLEET: _page_fleet.layout(fleet_table),
        PageName.SLOS: _page_slos.layout(),
        PageName.ALERTS: _page_alerts.layout(alerts_extra),
        PageName.REMEDIATION: _page_remediation.layout(),
        PageName.KERNELS: _page_kernels.layout(),
        PageName.COST: _page_cost.layout(),
    }
    return html.Div(
        id=ElementId.PAGE,
        className="page",
        children=[
            dcc.Location(id=ElementId.LOCATION, refresh=False),
            html.Header(
                className="topbar",
                children=[
                    html.H1(title),
                    html.Nav(
                        id=ElementId.NAVIGATION,
                        className="page-nav",
                        children=[
                            dcc.Link(
                                page.title,
                                href=page.path,
                                id=f"nav-{page.name}",
                                className="nav-link",
                            )
                            for page in PAGES
                        ],
                    ),
                    html.Span(updated, id=ElementId.LAST_UPDATED, className="updated"),
                    dcc.RadioItems(
                        id=ElementId.TIME_RANGE,
                        className="range-picker",
                        options=[choice.label for choice in TIME_RANGES],
                        value=DEFAULT_TIME_RANGE,
                        inline=True,
                    ),
                ],
            ),
            dcc.Interval(id=ElementId.REFRESH, interval=refresh_s * 1000, n_intervals=0),
            *[
                html.Div(
                    id=page.element_id,
                    className=PAGE_SHOWN if page.name is PageName.FLEET else PAGE_HIDDEN,
                    children=contents[page.name],
                )
                for page in PAGES
            ],
        ],
    )
