"""The dashboard's pages and the paths they live at (`dcc.Location` routing).

All pages are in the document at once and only the current one is shown, so element ids
stay findable; each page's callbacks refresh only while it is the one shown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._element_ids import ElementId

PAGE_SHOWN = "page-view"
PAGE_HIDDEN = "page-view hidden"
"""The classes routing gives the page shown and the others (`.hidden` is `display: none`)."""


class PageName(enum.StrEnum):
    FLEET = "fleet"
    SLOS = "slos"
    ALERTS = "alerts"
    REMEDIATION = "remediation"
    KERNELS = "kernels"
    COST = "cost"


@dataclass(frozen=True, slots=True)
class PageSpec:
    name: PageName
    path: str
    title: str
    element_id: ElementId


PAGES: tuple[PageSpec, ...] = (
    PageSpec(PageName.FLEET, "/", "Fleet", ElementId.FLEET_PAGE),
    PageSpec(PageName.SLOS, "/slos", "SLOs", ElementId.SLOS_PAGE),
    PageSpec(PageName.ALERTS, "/alerts", "Alerts", ElementId.ALERTS_PAGE),
    PageSpec(PageName.REMEDIATION, "/remediation", "Remediation", ElementId.REMEDIATION_PAGE),
    PageSpec(PageName.KERNELS, "/kernels", "Kernels", ElementId.KERNELS_PAGE),
    PageSpec(PageName.COST, "/cost", "Cost", ElementId.COST_PAGE),
)


def page_for_path(pathname: str | None) -> PageName:
    """The page a path shows: by its last segment, so the app works under a path prefix;
    `/`, `/fleet` and anything unknown show the fleet."""
    last = (pathname or "/").rstrip("/").rsplit("/", 1)[-1]
    for page in PAGES:
        if page.name == last:
            return page.name
    return PageName.FLEET
