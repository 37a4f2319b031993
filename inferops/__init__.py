"""InferOps wiring: settings, the CLI and the composition of the control plane and demo.

Components (exporters, collectors, slo, alerting, remediation, reference_server, dashboards)
never read settings themselves; this package builds them from one `Settings` object.
The control plane is imported lazily, so `inferops --help` and settings checks stay fast.
"""

from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError, DemoError, InferOpsError
from ._settings import Settings, load_settings, parse_duration, parse_settings

if TYPE_CHECKING:
    from ._control_plane import ControlPlane, scrape_targets, slo_status_samples

__all__ = [
    "ConfigError",
    "ControlPlane",
    "DemoError",
    "InferOpsError",
    "Settings",
    "load_settings",
    "parse_duration",
    "parse_settings",
    "scrape_targets",
    "slo_status_samples",
]


def __getattr__(name: str) -> Any:
    if name in ("ControlPlane", "scrape_targets", "slo_status_samples"):
        from . import _control_plane

        return getattr(_control_plane, name)
    raise AttributeError(f"module 'inferops' has no attribute {name!r}")
