"""The server span the node and the router each open per request, and the status it ends
with: the same OpenTelemetry HTTP attribute names and error rule in both, so a trace reads
alike at every hop."""

from __future__ import annotations

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from starlette.requests import Request

from ._tracing import extract_trace_context

__all__ = ["record_response_status", "start_server_span"]


def start_server_span(
    tracer: Tracer, request: Request, route: str, attributes: dict[str, AttributeValue]
) -> Span:
    """`METHOD route`, continuing the caller's W3C `traceparent` when it sent one."""
    return tracer.start_span(
        f"{request.method} {route}",
        context=extract_trace_context(request.headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route, **attributes},
    )


def record_response_status(span: Span, status_code: int) -> None:
    """The status the client got; a 5xx marks the span as an error (the caller ends it)."""
    span.set_attribute("http.response.status_code", status_code)
    if status_code >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status_code}"))
