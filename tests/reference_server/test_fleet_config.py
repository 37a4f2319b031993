"""`FleetConfig`: validated once, errors naming the field, the token never shown."""

from __future__ import annotations

from typing import Any

import pytest

from reference_server import FleetConfig, FleetConfigError, NodeSpec

VALID: dict[str, Any] = {"nodes": 3, "host": "127.0.0.1", "port": 18000,
                         "admin_token": "very-secret", "gpu_backend": "auto",
                         "gpu_type": "H100-SXM5-80GB", "device": "auto"}


def test_the_fleet_layout_follows_the_contract() -> None:
    config = FleetConfig(**VALID)
    assert config.router_url == "http://127.0.0.1:18000"
    assert config.node_specs() == [NodeSpec("node-0", "127.0.0.1", 18001),
                                   NodeSpec("node-1", "127.0.0.1", 18002),
                                   NodeSpec("node-2", "127.0.0.1", 18003)]
    assert (config.health_interval_s, config.health_timeout_s, config.node_start_timeout_s,
            config.drain_timeout_s) == (0.5, 1.0, 120, 30)


def test_the_token_is_not_in_repr() -> None:
    config = FleetConfig(**VALID)
    assert "very-secret" not in repr(config)
    assert "very-secret" not in str(config)


@pytest.mark.parametrize(("field", "value"), [
    ("nodes", 0), ("nodes", "3"), ("nodes", True), ("port", 0), ("port", 70000),
    ("port", 65534), ("host", ""), ("admin_token", ""), ("gpu_backend", "cuda"),
    ("device", "tpu"), ("gpu_type", ""), ("model_name", ""), ("health_interval_s", 0),
    ("health_timeout_s", -1.0), ("node_start_timeout_s", float("inf")),
    ("drain_timeout_s", "30"), ("stop_grace_s", 0.0),
])
def test_an_invalid_value_is_refused_naming_its_field(field: str, value: Any) -> None:
    with pytest.raises(FleetConfigError) as error:
        FleetConfig(**(VALID | {field: value}))
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")
    assert "very-secret" not in str(error.value)


def test_config_is_frozen() -> None:
    config = FleetConfig(**VALID)
    with pytest.raises(AttributeError):
        config.nodes = 4  # type: ignore[misc]


@pytest.mark.parametrize(("host", "url"), [
    ("0.0.0.0", "http://127.0.0.1:9"), ("::", "http://[::1]:9"), ("::1", "http://[::1]:9"),
    ("localhost", "http://localhost:9"),
])
def test_node_urls_reach_wildcard_listeners_over_loopback(host: str, url: str) -> None:
    assert NodeSpec("node-0", host, 9).url == url
