"""What a fleet is made of: `FleetConfig` (validated once) and one `NodeSpec` per node."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._api_keys import ApiKey
from ._exceptions import FleetConfigError, TracingConfigError
from ._router_outlier import OutlierPolicy
from ._tracing import TracingConfig

GPU_BACKENDS = ("auto", "sim", "nvml")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MODEL_NAME = "inferops-tiny"
LEAST_OUTSTANDING, ROUND_ROBIN, SESSION_AFFINITY = (
    "least-outstanding", "round-robin", "session-affinity")
ROUTING_POLICIES = (LEAST_OUTSTANDING, ROUND_ROBIN, SESSION_AFFINITY)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node: its name and where it listens. `url` is where the router reaches it
    (a wildcard listen address is reached over loopback)."""

    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetConfig:
    """A router on `host:port` and `nodes` node processes named node-0..node-{N-1} on
    ports port+1..port+N. The admin token and the API keys are never shown by `repr`.
    `api_keys` empty: `/v1/*` is open. `model_pools` maps a model name to the nodes that
    serve it (a model without a pool may go to any node)."""

    nodes: int = 3
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str = field(repr=False)
    gpu_backend: str = "auto"
    gpu_type: str = "H100-SXM5-80GB"
    device: str = "auto"
    model_name: str = DEFAULT_MODEL_NAME
    health_interval_s: float = 0.5
    health_timeout_s: float = 1.0
    node_start_timeout_s: float = 120.0
    drain_timeout_s: float = 30.0
    stop_grace_s: float = 5.0
    routing_policy: str = LEAST_OUTSTANDING
    model_pools: dict[str, tuple[str, ...]] = field(default_factory=dict)
    api_keys: tuple[ApiKey, ...] = field(default=(), repr=False)
    outlier: OutlierPolicy = field(default_factory=OutlierPolicy)
    """Passive outlier ejection and the first-byte timeout of the router."""
    otlp_endpoint: str | None = None
    """Where the router and every node export spans (OTLP/HTTP); None: no tracing."""
    trace_sample_ratio: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1:
            raise FleetConfigError("nodes", f"must be an integer of at least 1, got {self.nodes!r}")
        if not isinstance(self.host, str) or not self.host.strip():
            raise FleetConfigError("host", f"must be an address to listen on, got {self.host!r}")
        port = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise FleetConfigError("port", f"must be an integer in 1..65535, got {self.port!r}")
        if self.port + self.nodes > 65535:
            raise FleetConfigError(
                "port",
                f"{self.port} leaves no room for {self.nodes} node ports after it (max 65535)",
            )
        if not isinstance(self.admin_token, str) or not self.admin_token:
            raise FleetConfigError("admin_token", "must be a non-empty string")
        if self.gpu_backend not in GPU_BACKENDS:
            raise FleetConfigError(
                "gpu_backend", f"must be one of {', '.join(GPU_BACKENDS)}, got {self.gpu_backend!r}"
            )
        if not isinstance(self.gpu_type, str) or not self.gpu_type:
            raise FleetConfigError("gpu_type", "must be a non-empty GPU type name")
        if self.device not in DEVICES:
            raise FleetConfigError(
                "device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}"
            )
        if not isinstance(self.model_name, str) or not self.model_name:
            raise FleetConfigError("model_name", "must be a non-empty model name")
        for name in ("health_interval_s", "health_timeout_s", "node_start_timeout_s",
                     "drain_timeout_s", "stop_grace_s"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value) or value <= 0):
                raise FleetConfigError(name, f"must be a positive number of seconds, got {value!r}")

        if self.routing_policy not in ROUTING_POLICIES:
            raise FleetConfigError("routing_policy", f"must be one of "
                                   f"{', '.join(ROUTING_POLICIES)}, got {self.routing_policy!r}")
        names = {spec.name for spec in self.node_specs()}
        for model, members in self.model_pools.items():
            unknown = [name for name in members if name not in names]
            if not members or unknown:
                raise FleetConfigError(f"model_pools.{model}", f"must list nodes of this fleet "
                                       f"({', '.join(sorted(names))}); unknown: {unknown}")
        if not all(isinstance(key, ApiKey) for key in self.api_keys):
            raise FleetConfigError("api_keys", "must be ApiKey values")
        if not isinstance(self.outlier, OutlierPolicy):
            raise FleetConfigError("outlier", "must be an OutlierPolicy")
        try:
            TracingConfig("router", self.otlp_endpoint, self.trace_sample_ratio)
        except TracingConfigError as error:
            field_name = "otlp_endpoint" if error.field == "otlp_endpoint" else "trace_sample_ratio"
            raise FleetConfigError(field_name, error.problem) from None

    @property
    def router_url(self) -> str:
        return NodeSpec("router", self.host, self.port).url

    def node_specs(self) -> list[NodeSpec]:
        return [NodeSpec(f"node-{i}", self.host, self.port + 1 + i) for i in range(self.nodes)]
