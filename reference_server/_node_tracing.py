"""A node's spans: one server span per /v1 generation request, parented by the caller's W3C
`traceparent`, and the engine's `queue`, `prefill` and `decode` as its children.

The engine spans are built after the request finished, from the timestamps the engine thread
recorded on the request's handle (start and end times passed explicitly), so the step loop
never calls OpenTelemetry and a request costs its spans once, not once per token.
"""

from __future__ import annotations

from opentelemetry.trace import (
    Span,
    Tracer,
    set_span_in_context,
)
from starlette.requests import Request

from ._sequence import RequestHandle
from ._server_span import record_response_status, start_server_span
from ._tracing import MonotonicClock, sampled_trace_id

__all__ = ["NodeRequestTrace", "NodeTracing"]


class NodeTracing:
    """Starts the server span of each generation request on `tracer`."""

    def __init__(self, tracer: Tracer, *, node_name: str, model_name: str) -> None:
        self._tracer = tracer
        self._node_name = node_name
        self._model_name = model_name

    def start(self, request: Request) -> NodeRequestTrace:
        span = start_server_span(
            self._tracer, request, request.url.path,
            {"inferops.node": self._node_name, "gen_ai.request.model": self._model_name},
        )
        return NodeRequestTrace(self._tracer, span)


class NodeRequestTrace:
    """One request's server span; `finish` adds the engine spans and ends it (once)."""

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self._tracer = tracer
        self.span = span
        self.trace_id = sampled_trace_id(span)
        """32 hex digits when the trace is sampled (the exemplar's `trace_id`), else None."""
        self._ended = False

    def finish(self, status_code: int, handle: RequestHandle | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self.span
        record_response_status(span, status_code)
        if handle is not None:
            self._engine_spans(handle)
        span.end()

    def _engine_spans(self, handle: RequestHandle) -> None:
        span = self.span
        prompt, generated = handle.prompt_tokens, handle.completion_tokens
        reason = handle.finish_reason
        span.set_attribute("gen_ai.usage.input_tokens", prompt)
        span.set_attribute("gen_ai.usage.output_tokens", generated)
        if reason is not None:
            span.set_attribute("gen_ai.response.finish_reasons", (reason,))
        if not span.is_recording():
            return
        clock = MonotonicClock()
        parent = set_span_in_context(span)

        def child(name: str, start_s: float, end_s: float,
                  attributes: dict[str, str | int | bool]) -> None:
            engine_span = self._tracer.start_span(
                name, context=parent, start_time=clock.epoch_ns(start_s), attributes=attributes)
            engine_span.end(end_time=clock.epoch_ns(max(start_s, end_s)))

        if handle.admitted_at_s is not None:
            child("queue", handle.submitted_at_s, handle.admitted_at_s, {})
        first = handle.first_token_at_s
        if handle.prefill_started_at_s is not None and first is not None:
            child("prefill", handle.prefill_started_at_s, first, {
                "gen_ai.usage.input_tokens": prompt,
                "inferops.prefix_cache.hit_blocks": handle.prefix_hit_blocks,
            })
        if first is not None and generated > 1:
            decode: dict[str, str | int | bool] = {
                "gen_ai.usage.output_tokens": generated,
                "inferops.preempted": handle.preemptions > 0,
                "inferops.preemptions": handle.preemptions,
            }
            if reason is not None:
                decode["inferops.finish_reason"] = reason
            child("decode", first, handle.token_times_s[-1], decode)
