"""`remediation.driver` in the settings picks the control plane's fleet driver: the reference
fleet's router (needs the admin token) or Kubernetes from a kubeconfig (here: pointing at the
fake API server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_kubernetes import TOKEN, FakeKubernetes, serve_fake_kubernetes

from inferops._exceptions import ConfigError
from inferops._fleet_driver import open_fleet_driver
from inferops._settings import parse_settings
from remediation import FleetDriverError, KubernetesFleetDriver, NodeStatus, ReferenceFleetDriver


@pytest.fixture
def cluster() -> Iterator[FakeKubernetes]:
    yield from serve_fake_kubernetes(FakeKubernetes.fleet(2))


def test_kubernetes_is_reached_through_the_kubeconfig_with_the_settings_selectors(
    cluster: FakeKubernetes, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""\
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{cluster.url}"}}}}]
users: [{{name: remediation, user: {{token: {TOKEN}}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: remediation}}}}]
current-context: fake
""", encoding="utf-8")
    settings = parse_settings(
        "remediation:\n  driver: kubernetes\n  kubernetes:\n    kubeconfig: kubeconfig\n"
        "    context: fake\n"
        "    namespace: llm\n    pod_selector: app=llm-serving\n    node_selector: pool=llm\n",
        environ={}, base_dir=tmp_path,
    )

    driver = open_fleet_driver(settings)

    assert isinstance(driver, KubernetesFleetDriver)
    assert [(n.name, n.status) for n in driver.nodes()] == [
        ("gpu-0", NodeStatus.SERVING), ("gpu-1", NodeStatus.SERVING)]
    driver.close()


def test_missing_kubernetes_credentials_are_a_clear_error(tmp_path: Path) -> None:
    settings = parse_settings(
        "remediation: {driver: kubernetes, kubernetes: {kubeconfig: missing.yaml}}",
        environ={}, base_dir=tmp_path)

    with pytest.raises(FleetDriverError) as raised:
        open_fleet_driver(settings)
    assert str(raised.value).startswith(
        f"no Kubernetes credentials: kubeconfig {tmp_path / 'missing.yaml'}: ")
    assert str(raised.value).endswith("; in-cluster: Service host/port is not set.")


def test_the_reference_driver_needs_the_admin_token() -> None:
    settings = parse_settings("remediation: {fleet_url: 'http://127.0.0.1:8000'}", environ={})

    with pytest.raises(ConfigError) as raised:
        open_fleet_driver(settings)
    assert str(raised.value) == (
        "remediation is enabled but the fleet admin token is not set: export "
        "INFEROPS_ADMIN_TOKEN (or set remediation.enabled: false)")
    driver = open_fleet_driver(settings, "token")
    assert isinstance(driver, ReferenceFleetDriver)
    driver.close()
