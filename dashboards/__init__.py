"""The on-call dashboard: fleet, SLOs, alerts and remediations, read only.

`DashboardData` reads a `collectors.MetricSource` (PromQL), the alert store and the
remediation log and hands out frozen rows; `create_app` builds the Dash pages over it
(fleet `/`, `/slos`, `/alerts`, `/remediation`, `/kernels`, `/cost`), with stable element
ids (`ElementId`) for scripts; `serve_dashboard` / `DashboardServer` serve it.
"""

from ._actions import ControlPlaneClient
from ._app import create_app
from ._cost import CostRow
from ._data import DashboardData
from ._element_ids import ElementId
from ._exceptions import (
    ControlPlaneError,
    DashboardArgumentError,
    DashboardError,
    TimeRangeError,
)
from ._kernels import KernelDiffRow, KernelRow, ProfileReader
from ._pages import PAGES, PageName, PageSpec
from ._records import AlertReader, AlertRecord, DecisionReader, DecisionRecord
from ._rows import (
    AlertRow,
    BurnRate,
    ChartKind,
    ChartSeries,
    FleetRow,
    Incident,
    IncidentEvent,
    NodeStatus,
    RemediationRow,
    SloAlert,
    SloRow,
)
from ._server import DashboardServer, serve_dashboard

__all__ = [
    "PAGES",
    "AlertReader",
    "AlertRecord",
    "AlertRow",
    "BurnRate",
    "ChartKind",
    "ChartSeries",
    "ControlPlaneClient",
    "ControlPlaneError",
    "CostRow",
    "DashboardArgumentError",
    "DashboardData",
    "DashboardError",
    "DashboardServer",
    "DecisionReader",
    "DecisionRecord",
    "ElementId",
    "FleetRow",
    "Incident",
    "IncidentEvent",
    "KernelDiffRow",
    "KernelRow",
    "NodeStatus",
    "PageName",
    "PageSpec",
    "ProfileReader",
    "RemediationRow",
    "SloAlert",
    "SloRow",
    "TimeRangeError",
    "create_app",
    "serve_dashboard",
]
