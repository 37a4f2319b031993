"""The control plane serves the remediation routes over its own engine (and over none when
remediation is off), and still refuses to start an engine without the fleet admin token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inferops._api import create_control_plane_api
from inferops._control_plane import ControlPlane
from inferops._exceptions import ConfigError
from inferops._settings import parse_settings

POLICY = """\
version: inferops/v1
policies:
  - name: drain-erroring-node
    match: {alertname: NodeHighErrorRate}
    steps: [drain]
"""


def settings_text(tmp_path: Path, *, enabled: bool) -> str:
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    return (
        f"store: {{url: 'sqlite:///{tmp_path / 'inferops.db'}'}}\n"
        "alerting: {watchdog: false}\n"
        f"remediation: {{enabled: {str(enabled).lower()}, policy_file: policy.yaml, "
        "fleet_url: 'http://127.0.0.1:9'}\n"
    )


@pytest.mark.parametrize("enabled", [True, False], ids=["engine", "no engine"])
def test_the_remediation_routes_are_served_with_the_kill_switch_shared(
    tmp_path: Path, enabled: bool
) -> None:
    settings = parse_settings(settings_text(tmp_path, enabled=enabled), base_dir=tmp_path,
                              environ={})
    plane = ControlPlane(settings, admin_token="fleet-token")
    try:
        app = create_control_plane_api(token="t", routers=plane.api_routers)
        with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
            paused = client.post("/api/v1/remediation/pause", json={"reason": "rollout"})
            assert (paused.status_code, paused.json()["paused"], paused.json()["actor"]) == (
                200, True, "api")
            assert client.get("/api/v1/remediation/decisions").json() == {"decisions": []}
            assert client.get("/api/v1/incidents").json() == {"incidents": []}
        assert (plane.remediation is not None) is enabled
        if plane.remediation is not None:
            assert plane.remediation.kill_switch().paused
    finally:
        plane.close()


def test_an_engine_without_the_admin_token_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFEROPS_ADMIN_TOKEN", raising=False)
    settings = parse_settings(settings_text(tmp_path, enabled=True), base_dir=tmp_path,
                              environ={})
    with pytest.raises(ConfigError, match="the fleet admin token is not set: export "
                                          "INFEROPS_ADMIN_TOKEN"):
        ControlPlane(settings)
