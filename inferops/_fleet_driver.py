"""The remediation engine's `FleetDriver`, chosen by `remediation.driver` in the settings:
the reference fleet's router admin API (needs the fleet admin token) or Kubernetes."""

from __future__ import annotations

from remediation import FleetDriver, KubernetesFleetDriver, ReferenceFleetDriver

from ._exceptions import ConfigError
from ._settings import Settings


def open_fleet_driver(settings: Settings, admin_token: str | None = None) -> FleetDriver:
    """The configured driver; `admin_token` overrides the environment (reference fleet)."""
    section = settings.remediation
    if section.driver == "kubernetes":
        k8s = section.kubernetes
        return KubernetesFleetDriver.from_kubeconfig(
            config_file=None if k8s.kubeconfig is None else str(settings.resolve(k8s.kubeconfig)),
            context=k8s.context, namespace=k8s.namespace, pod_selector=k8s.pod_selector,
            node_selector=k8s.node_selector, eviction_deadline_s=k8s.eviction_deadline,
            replacement_timeout_s=k8s.replacement_timeout, request_timeout_s=k8s.request_timeout,
        )
    token = admin_token or settings.admin_token()
    if not token:
        raise ConfigError(
            f"remediation is enabled but the fleet admin token is not set: export "
            f"{section.admin_token_env} (or set remediation.enabled: false)"
        )
    return ReferenceFleetDriver(section.fleet_url, admin_token=token)
