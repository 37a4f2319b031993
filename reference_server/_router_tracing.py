"""The router's spans: a server span per /v1 request and a client span per upstream attempt.

The server span continues the client's trace when its request has a W3C `traceparent` (as a
gateway does), else starts one. It names the model, the node that answered, whether the
request was retried and the status the client got (never the client's API key: no header is
copied onto a span). Each attempt's client span is the parent the node sees: its W3C
`traceparent` goes into the upstream request's headers. An attempt that turned into a relayed
event stream stays open until the relay ends; nothing here runs per relayed chunk.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    set_span_in_context,
)
from starlette.requests import Request

from ._server_span import record_response_status, start_server_span
from ._tracing import inject_trace_context, sampled_trace_id

_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})

__all__ = ["ProxyTracing", "RouterAttemptTrace", "RouterRequestTrace"]


class ProxyTracing:
    """Starts one `RouterRequestTrace` per proxied request on `tracer`."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start(self, request: Request, handler: str) -> RouterRequestTrace:
        span = start_server_span(self._tracer, request, handler, {})
        return RouterRequestTrace(self._tracer, span)


class RouterRequestTrace:
    """One request's server span, its attempts, and its end (`finish`, once)."""

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self._tracer = tracer
        self.span = span
        self.trace_id = sampled_trace_id(span)
        """32 hex digits when the trace is sampled (the exemplar's `trace_id`), else None."""
        self._open: RouterAttemptTrace | None = None
        self._attempts = 0
        self._ended = False

    def attempt(self, node: str, method: str, url: str, model: str | None,
                headers: list[tuple[str, str]]) -> RouterAttemptTrace:
        """A client span for one try on `node`; `headers` get its `traceparent` in place of
        the client's (the client's is this request's parent already)."""
        self._attempts += 1
        retry = self._attempts > 1
        if model is not None:
            self.span.set_attribute("gen_ai.request.model", model)
        self.span.set_attribute("inferops.node", node)
        self.span.set_attribute("inferops.retried", retry)
        parts = urlsplit(url)
        span = self._tracer.start_span(
            method, context=set_span_in_context(self.span), kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": url,
                "server.address": parts.hostname or "",
                "server.port": parts.port or 80,
                "inferops.node": node,
                "inferops.retry": retry,
            },
        )
        carrier: dict[str, str] = {}
        inject_trace_context(span, carrier)
        headers[:] = [(k, v) for k, v in headers if k not in _TRACE_HEADERS]
        headers.extend(carrier.items())
        self._open = RouterAttemptTrace(self, span)
        return self._open

    def finish(self, status_code: int) -> None:
        """The client got `status_code` (499: it went away): end the open attempt, then the
        server span."""
        if self._ended:
            return
        self._ended = True
        if self._open is not None:
            self._open.end(status_code if status_code < 400 else None,
                           None if status_code < 400 else f"relay ended with {status_code}")
        record_response_status(self.span, status_code)
        self.span.end()


class RouterAttemptTrace:
    """One upstream attempt's client span. One that never ended (a relayed stream, a try
    the client's disconnect cancelled) is ended by its request's `finish`."""

    def __init__(self, request: RouterRequestTrace, span: Span) -> None:
        self._request = request
        self.span = span
        self._ended = False

    def answered(self, status_code: int, *, streaming: bool) -> None:
        """The node answered; a stream's span stays open until the relay ends."""
        self.span.set_attribute("http.response.status_code", status_code)
        if not streaming:
            self.end(status_code, None)

    def failed(self, reason: str, detail: str, status_code: int | None = None) -> None:
        """The attempt failed before the client got a byte (`reason`: connect, read,
        timeout, 5xx, drained, ...)."""
        self.span.set_attribute("error.type", reason)
        self.end(status_code, detail)

    def end(self, status_code: int | None, error: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._request._open is self:
            self._request._open = None
        if status_code is not None:
            self.span.set_attribute("http.response.status_code", status_code)
        if error is not None or (status_code is not None and status_code >= 500):
            self.span.set_status(Status(StatusCode.ERROR, error or f"HTTP {status_code}"))
        self.span.end()
