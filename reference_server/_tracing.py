"""OpenTelemetry for the fleet and the control plane: one explicit `TracerProvider` per process.

Each process builds its own provider (never the global one, so tests and embedded routers do
not fight over it): `service.name` is the router's or the node's name, the sampler follows the
caller's decision and samples new traces at `sample_ratio`, and spans leave through a
`BatchSpanProcessor` to an OTLP/HTTP exporter when an endpoint is configured. The endpoint is
resolved as the SDK does it: the command-line flag, else `OTEL_EXPORTER_OTLP_ENDPOINT`, else
no export (and then no provider at all: a fleet without tracing pays nothing for it).

W3C trace context (`traceparent`, `tracestate`) travels between processes in HTTP headers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._exceptions import TracingConfigError

ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""The OpenTelemetry SDK's standard variable: a base URL such as http://collector:4318."""

TRACES_PATH = "/v1/traces"
SERVICE_NAMESPACE = "inferops"
EXPORT_TIMEOUT_S = 5.0
"""How long one OTLP export request may take (the batch processor's thread waits, no request
ever does)."""

EXPORT_DELAY_S = 1.0
"""Spans wait at most this long in the batch before export (the SDK's default is 5 s)."""

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """What one process traces as and where its spans go. `otlp_endpoint` None: no export."""

    service_name: str
    otlp_endpoint: str | None = None
    sample_ratio: float = 1.0
    resource_attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.service_name:
            raise TracingConfigError("service_name", "must not be empty")
        if self.otlp_endpoint is not None:
            traces_url(self.otlp_endpoint)  # validates
        ratio = self.sample_ratio
        if (isinstance(ratio, bool) or not isinstance(ratio, int | float)
                or not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0):
            raise TracingConfigError("sample_ratio", f"must be a number in [0, 1], got {ratio!r}")


def resolve_otlp_endpoint(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The flag, else `OTEL_EXPORTER_OTLP_ENDPOINT` from `environ`, else None (no export)."""
    if flag is not None and flag.strip():
        return flag.strip()
    value = environ.get(ENV_OTLP_ENDPOINT, "").strip()
    return value or None


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint: a base URL (http://collector:4318) gets
    `/v1/traces` appended, as the SDK does with `OTEL_EXPORTER_OTLP_ENDPOINT`; a URL that
    already ends in /v1/traces is kept."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TracingConfigError(
            "otlp_endpoint", f"expected an http(s) URL such as http://127.0.0.1:4318, "
            f"got {endpoint!r}")
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def build_tracer_provider(
    config: TracingConfig, *, processors: Iterable[SpanProcessor] = ()
) -> TracerProvider | None:
    """A provider for `config`, or None when nothing would receive its spans (no endpoint and
    no `processors`). `processors` are added too (tests pass an in-memory exporter's)."""
    extra = list(processors)
    if config.otlp_endpoint is None and not extra:
        return None
    resource = Resource.create({
        "service.name": config.service_name,
        "service.namespace": SERVICE_NAMESPACE,
        "service.instance.id": config.service_name,
        **config.resource_attributes,
    })
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)))
    if config.otlp_endpoint is not None:
        exporter = OTLPSpanExporter(endpoint=traces_url(config.otlp_endpoint),
                                    timeout=EXPORT_TIMEOUT_S)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_DELAY_S * 1000))
    for processor in extra:
        provider.add_span_processor(processor)
    return provider


def inject_trace_context(span: Span, headers: MutableMapping[str, str]) -> None:
    """Write `span`'s W3C `traceparent` (and `tracestate`) into `headers`."""
    _PROPAGATOR.inject(headers, context=set_span_in_context(span))


def extract_trace_context(headers: Mapping[str, str]) -> Context:
    """The caller's trace context from W3C headers (an empty context when there is none)."""
    return _PROPAGATOR.extract(headers)


def sampled_trace_id(span: Span) -> str | None:
    """The span's trace id as 32 hex digits when it is recorded (sampled), else None: an
    exemplar must point at a trace that exists in the tracing backend."""
    context = span.get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x")


class MonotonicClock:
    """Converts `time.monotonic()` seconds (what the engine records) into the epoch
    nanoseconds OpenTelemetry wants, anchored once, so spans built after the fact line up."""

    def __init__(self) -> None:
        self._epoch_ns = time.time_ns()
        self._monotonic_s = time.monotonic()

    def epoch_ns(self, monotonic_s: float) -> int:
        return self._epoch_ns + round((monotonic_s - self._monotonic_s) * 1e9)
