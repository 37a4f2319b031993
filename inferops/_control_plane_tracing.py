"""The control plane's spans: one per evaluation round, one per notification handed to a
receiver (a child of the round that raised it, though it runs on the receiver's thread), and
one per remediation decision (a child of that notification, timed by the decision's own
start and finish).

Without an OTLP endpoint the tracer is OpenTelemetry's no-op one: the loop pays nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import NoOpTracer, Span, Status, StatusCode, Tracer

from reference_server import TracingConfig, build_tracer_provider
from remediation import Decision, Outcome

from ._settings import TracingSettings

__all__ = ["ControlPlaneTracing"]

_FAILED = frozenset({Outcome.FAILED})


class ControlPlaneTracing:
    """The control plane's tracer, built from the `tracing:` settings; `close()` flushes."""

    def __init__(self, settings: TracingSettings, *,
                 processors: Iterable[SpanProcessor] = ()) -> None:
        self.provider: TracerProvider | None = build_tracer_provider(
            TracingConfig(settings.service_name, settings.otlp_endpoint, settings.sample_ratio),
            processors=processors)
        self.tracer: Tracer = (NoOpTracer() if self.provider is None
                               else self.provider.get_tracer("inferops.control_plane"))

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @contextlib.contextmanager
    def evaluation_round(self, at_s: float, *, rules: int, slos: int) -> Iterator[Span]:
        """The round's span, current while the round runs (notifications raised in it
        become its children). Set `inferops.alerts_changed` on it when known."""
        with self.tracer.start_as_current_span("evaluation round", attributes={
            "inferops.evaluation.at_s": at_s, "inferops.rules": rules, "inferops.slos": slos,
        }) as span:
            yield span

    def dispatch_context(self) -> Context:
        """What a notification queued now should be traced under (the current round)."""
        return get_current()

    @contextlib.contextmanager
    def dispatch(self, receiver: str, payload: Mapping[str, Any],
                 context: Context | None) -> Iterator[Span]:
        """One notification handed to `receiver`, as a child of the round that raised it."""
        alerts = payload.get("alerts")
        with self.tracer.start_as_current_span(f"notify {receiver}", context=context, attributes={
            "inferops.receiver": receiver,
            "inferops.notification.status": str(payload.get("status", "")),
            "inferops.notification.alerts": len(alerts) if isinstance(alerts, list) else 0,
            "inferops.notification.group_key": str(payload.get("groupKey", "")),
        }) as span:
            yield span

    def decisions(self, decisions: Sequence[Decision]) -> None:
        """One span per remediation decision, under the current (dispatch) span, spanning the
        decision's start to its finish."""
        for decision in decisions:
            attributes: dict[str, str | int] = {
                "inferops.decision.id": decision.id,
                "inferops.decision.action": decision.action,
                "inferops.decision.node": decision.node,
                "inferops.decision.outcome": str(decision.outcome),
                "inferops.decision.actor": decision.actor,
            }
            if decision.guard is not None:
                attributes["inferops.decision.guard"] = decision.guard
            if decision.alertname is not None:
                attributes["inferops.decision.alertname"] = decision.alertname
            start_ns = _epoch_ns(decision.started_at_s)
            finished = decision.finished_at_s
            span = self.tracer.start_span(f"remediation {decision.action}", start_time=start_ns,
                                          attributes=attributes)
            if decision.outcome in _FAILED:
                span.set_status(Status(StatusCode.ERROR, decision.reason))
            span.end(end_time=start_ns if finished is None
                     else max(start_ns, _epoch_ns(finished)))

    def close(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _epoch_ns(seconds: float) -> int:
    """Unix seconds to nanoseconds at microsecond resolution (a float has no more)."""
    return round(seconds * 1e6) * 1000
