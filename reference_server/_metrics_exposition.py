"""`/metrics` for the router and the nodes: Prometheus text, or OpenMetrics with exemplars.

A scraper that asks for `application/openmetrics-text` in its Accept header (Prometheus with
exemplar storage on, an OpenTelemetry collector) gets OpenMetrics 1.0, the only format that
carries exemplars (the trace ids on the latency histograms); anyone else gets the Prometheus
text format, byte for byte what it was before exemplars existed.

Metric names keep their colons (`vllm:e2e_request_latency_seconds`, legal in OpenMetrics 1.0):
prometheus_client's `choose_encoder` would pick its "underscores" escaping, which rewrites
them to `vllm_...` and so would break every rule and dashboard written for vLLM's names.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from starlette.responses import Response

__all__ = ["OPENMETRICS_CONTENT_TYPE", "metrics_response"]

OPENMETRICS = "application/openmetrics-text"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an Accept header lists OpenMetrics (at a non-zero quality)."""
    for media_range in (accept or "").split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        if media_type == OPENMETRICS and _quality(params) > 0:
            return True
    return False


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def metrics_response(registry: CollectorRegistry, accept: str | None) -> Response:
    """`registry` in the format `accept` asks for (see the module docstring)."""
    if wants_openmetrics(accept):
        body = openmetrics.generate_latest(  # type: ignore[no-untyped-call]
            registry, escaping=openmetrics.ALLOWUTF8)
        return Response(body, media_type=OPENMETRICS_CONTENT_TYPE)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

