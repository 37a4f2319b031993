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
    TracingConfigError,
    UnknownNodeError,
)
from ._fleet import run_fleet
from ._router import DRAIN_MODES, Router
from ._router_app import create_router_app
from ._router_outlier import OutlierPolicy
from ._supervisor import NodeController, NodeSupervisor, node_command
from ._tracing import (
    ENV_OTLP_ENDPOINT,
    TracingConfig,
    build_tracer_provider,
    resolve_otlp_endpoint,
)

__all__ = [
    "DRAIN_MODES",
    "ENV_API_KEYS",
    "ENV_OTLP_ENDPOINT",
    "ROUTING_POLICIES",
    "ApiKey",
    "CycleError",
    "FleetConfig",
    "FleetConfigError",
    "FleetStartError",
    "NodeController",
    "NodeSpec",
    "NodeSupervisor",
    "OutlierPolicy",
    "ReferenceServerError",
    "Router",
    "SupervisorError",
    "TracingConfig",
    "TracingConfigError",
    "UnknownNodeError",
    "build_tracer_provider",
    "create_router_app",
    "generate_api_key",
    "load_api_keys",
    "load_api_keys_file",
    "node_command",
    "parse_api_keys_env",
    "resolve_otlp_endpoint",
    "run_fleet",
]
