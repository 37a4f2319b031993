"""The reference fleet: inference nodes behind a router, run by `inferops fleet up`.

`run_fleet(FleetConfig(...))` starts node processes (`python -m reference_server.node`)
under a `NodeSupervisor` and serves the router (`Router`, `create_router_app`) in front of
them until SIGINT or SIGTERM. The router is also the gateway: client API keys
(`load_api_keys`, `ApiKey`) with per-key request and token limits, and per-key metering.
"""

from ._api_keys import (
    ENV_API_KEYS,
    ApiKey,
    generate_api_key,
    load_api_keys,
    load_api_keys_file,
    parse_api_keys_env,
)
from ._config import ROUTING_POLICIES, FleetConfig, NodeSpec
from ._exceptions import (
    CycleError,
    FleetConfigError,
    FleetStartError,
    ReferenceServerError,
    SupervisorError,
    UnknownNodeError,
)
from ._fleet import run_fleet
from ._router import DRAIN_MODES, Router
from ._router_app import create_router_app
from ._supervisor import NodeController, NodeSupervisor, node_command

__all__ = [
    "DRAIN_MODES",
    "ENV_API_KEYS",
    "ROUTING_POLICIES",
    "ApiKey",
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
    "generate_api_key",
    "load_api_keys",
    "load_api_keys_file",
    "node_command",
    "parse_api_keys_env",
    "run_fleet",
]
