"""The remediation engine's `FleetDriver` and fleet guards from the `remediation` settings:
the driver is the reference fleet's router admin API (needs the fleet admin token) or
Kubernetes, chosen by `remediation.driver`."""

from __future__ import annotations

from remediation import FleetDriver, GuardLimits, KubernetesFleetDriver, ReferenceFleetDriver

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


def remediation_limits(settings: Settings) -> GuardLimits:
    """The remediation engine's fleet guards from the `remediation` settings section."""
    section = settings.remediation
    return GuardLimits(
        breaker_max_share=section.breaker_max_share,
        breaker_window_s=section.breaker_window,
        breaker_close_after_s=section.breaker_close_after,
        max_unavailable=section.max_unavailable,
        node_capacity_requests=section.node_capacity_requests,
        max_actions_per_hour=section.max_actions_per_hour,
        flap_threshold=section.flap_threshold,
        flap_window_s=section.flap_window,
        stale_after_s=section.stale_after,
        escalate_after_cycles=section.escalate_after_cycles,
        ladder_window_s=section.ladder_window,
    )
