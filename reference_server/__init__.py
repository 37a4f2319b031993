"""The reference fleet: inference nodes behind a router, run by `inferops fleet up`.

`run_fleet(FleetConfig(...))` starts node processes (`python -m reference_server.node`)
under a `NodeSupervisor` and serves the router (`Router`, `create_router_app`) in front of
them until SIGINT or SIGTERM.
"""

from ._config import FleetConfig, NodeSpec
from ._exceptions import (
    CycleError,
    FleetConfigError,
    FleetStartError,
    ReferenceServerError,
    SupervisorError,
    UnknownNodeError,
)
from ._fleet import run_fleet
from ._router import Router
from ._router_app import create_router_app
from ._supervisor import NodeController, NodeSupervisor, node_command

__all__ = [
    "CycleError",
    "FleetConfig",
    "FleetConfigError",
    "FleetStartError",
    "NodeController",
    "NodeSpec",
    "NodeSupervisor",
    "ReferenceServerError",
    "Router",
    "SupervisorError",
    "UnknownNodeError",
    "create_router_app",
    "node_command",
    "run_fleet",
]
