"""Tracing settings of the fleet: where spans go (flag, then OTEL_EXPORTER_OTLP_ENDPOINT, then
nowhere), the OTLP traces URL, refused values named by field, and no provider at all when
nothing would receive its spans."""

from __future__ import annotations

import pytest

from reference_server import (
    FleetConfig,
    FleetConfigError,
    TracingConfig,
    TracingConfigError,
    build_tracer_provider,
    resolve_otlp_endpoint,
)
from reference_server._fleet import _traced_node_command
from reference_server.node import build_parser


@pytest.mark.parametrize(("flag", "environ", "expected"), [
    (None, {}, None),
    (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": " http://collector:4318 "}, "http://collector:4318"),
    ("http://tempo:4318", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
     "http://tempo:4318"),
    ("  ", {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
])
def test_the_flag_wins_over_the_standard_variable(
    flag: str | None, environ: dict[str, str], expected: str | None,
) -> None:
    assert resolve_otlp_endpoint(flag, environ) == expected


@pytest.mark.parametrize(("endpoint", "url"), [
    ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
    ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
    ("https://otel.example.com/otlp", "https://otel.example.com/otlp/v1/traces"),
    ("http://127.0.0.1:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"),
])
def test_the_endpoint_is_a_base_url_as_the_sdk_reads_it(endpoint: str, url: str) -> None:
    from reference_server._tracing import traces_url

    assert traces_url(endpoint) == url


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"service_name": ""}, "service_name: must not be empty"),
    ({"service_name": "router", "otlp_endpoint": "127.0.0.1:4318"},
     "otlp_endpoint: expected an http(s) URL such as http://127.0.0.1:4318, got '127.0.0.1:4318'"),
    ({"service_name": "router", "sample_ratio": 1.5},
     "sample_ratio: must be a number in [0, 1], got 1.5"),
])
def test_bad_tracing_values_are_refused_naming_the_field(
    kwargs: dict[str, object], message: str,
) -> None:
    with pytest.raises(TracingConfigError) as raised:
        TracingConfig(**kwargs)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_no_endpoint_and_no_processor_builds_no_provider() -> None:
    assert build_tracer_provider(TracingConfig("node-0")) is None


def test_a_provider_names_its_service_and_exports_over_otlp_http() -> None:
    provider = build_tracer_provider(TracingConfig(
        "node-3", "http://127.0.0.1:4318", 0.25, {"inferops.model_name": "inferops-tiny"}))
    assert provider is not None
    try:
        attributes = dict(provider.resource.attributes)
        assert {k: attributes[k] for k in ("service.name", "service.namespace",
                                           "service.instance.id", "inferops.model_name")} == {
            "service.name": "node-3", "service.namespace": "inferops",
            "service.instance.id": "node-3", "inferops.model_name": "inferops-tiny"}
        assert provider.sampler.get_description() == (
            "ParentBased{root:TraceIdRatioBased{0.25},remoteParentSampled:AlwaysOnSampler,"
            "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
            "localParentNotSampled:AlwaysOffSampler}")
    finally:
        provider.shutdown()


def test_the_fleet_refuses_a_bad_endpoint_naming_the_field() -> None:
    with pytest.raises(FleetConfigError) as raised:
        FleetConfig(admin_token="t" * 16, otlp_endpoint="collector")
    assert str(raised.value) == (
        "otlp_endpoint: expected an http(s) URL such as http://127.0.0.1:4318, got 'collector'")


def test_the_fleet_passes_its_endpoint_to_every_node_process() -> None:
    config = FleetConfig(admin_token="t" * 16, port=9000, nodes=2,
                         otlp_endpoint="http://127.0.0.1:4318", trace_sample_ratio=0.5)
    command = _traced_node_command(config)
    assert command is not None
    argv = list(command(config.node_specs()[1]))
    assert argv[-4:] == ["--otlp-endpoint", "http://127.0.0.1:4318", "--trace-sample-ratio",
                         "0.5"]
    assert argv[argv.index("--name") + 1] == "node-1"
    parsed = build_parser().parse_args(argv[3:])
    assert (parsed.otlp_endpoint, parsed.trace_sample_ratio) == ("http://127.0.0.1:4318", 0.5)
    assert _traced_node_command(FleetConfig(admin_token="t" * 16)) is None
