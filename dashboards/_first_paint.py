"""The fleet table in the first HTML response, before any JavaScript has run.

Dash paints nothing until its bundles (about 1.2 MB of JavaScript) are parsed, the layout
is fetched and React has rendered it; on a busy two-core host that alone took over a
second. So the index page of the fleet path carries the fleet table as static HTML inside
Dash's mount point (what React replaces when it mounts), rendered from the same Dash
components the page then shows, and hands the rendered table on to the layout request of
the same load, so each page load queries the store once.
"""

from __future__ import annotations

import html as html_text
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dash.development.base_component import Component

__all__ = ["FleetSnapshot", "RenderedFleet", "static_html"]

_ATTRIBUTE_NAMES = {"className": "class", "colSpan": "colspan", "rowSpan": "rowspan"}
_SKIPPED_PROPS = frozenset({"children", "n_clicks", "n_clicks_timestamp", "disable_n_clicks"})


@dataclass(frozen=True, slots=True)
class RenderedFleet:
    """The fleet table's children and the "updated" line, as one refresh renders them."""

    table: list[Any]
    updated: str


class FleetSnapshot:
    """One rendered fleet table handed from the index request to the layout request.

    `take()` returns the table the index rendered when it is younger than `max_age_s`
    (once: the next load renders its own), else renders a new one.
    """

    def __init__(
        self,
        render: Callable[[], RenderedFleet],
        *,
        max_age_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._render = render
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._kept: tuple[float, RenderedFleet] | None = None

    def render_and_keep(self) -> RenderedFleet:
        rendered = self._render()
        with self._lock:
            self._kept = (self._monotonic(), rendered)
        return rendered

    def take(self) -> RenderedFleet:
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None and self._monotonic() - kept[0] <= self._max_age_s:
            return kept[1]
        return self._render()


def static_html(component: Component | str | float | list[Any] | None) -> str:
    """Dash HTML components as the HTML React renders for them (tags, ids, classes,
    `data-*`), escaped; only `dash.html` components are expected."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return html_text.escape(str(component))
    if isinstance(component, list | tuple):
        return "".join(static_html(child) for child in component)
    tag = type(component).__name__.lower()
    props: Mapping[str, Any] = component.to_plotly_json()["props"]  # type: ignore[no-untyped-call]
    attributes = "".join(
        f' {_ATTRIBUTE_NAMES.get(name, name)}="{html_text.escape(str(value), quote=True)}"'
        for name, value in props.items()
        if name not in _SKIPPED_PROPS and value is not None and value != ""
    )
    return f"<{tag}{attributes}>{static_html(props.get('children'))}</{tag}>"
