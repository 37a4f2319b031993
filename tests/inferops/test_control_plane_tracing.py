"""The control plane's spans (in-memory exporter): one per evaluation round with the rules it
evaluated and the alerts that changed, one per notification handed to a background receiver
(a child of the round that raised it), one per remediation decision; and the `tracing:`
settings section with its OTEL_EXPORTER_OTLP_ENDPOINT fallback."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from inferops import ConfigError, ControlPlane, load_settings, parse_settings
from inferops._control_plane_tracing import ControlPlaneTracing
from inferops._notify_dispatch import BackgroundNotifier
from inferops._settings import TracingSettings
from remediation import Decision, Outcome

RULES = """\
groups:
  - name: always
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: info}
"""


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(spans: InMemorySpanExporter) -> Iterator[ControlPlaneTracing]:
    traced = ControlPlaneTracing(TracingSettings(), processors=[SimpleSpanProcessor(spans)])
    yield traced
    traced.close()


def test_without_an_endpoint_the_control_plane_does_not_trace() -> None:
    assert ControlPlaneTracing(TracingSettings()).enabled is False


def test_each_evaluation_round_is_a_span_with_the_alerts_it_changed(
    tmp_path: Path, tracing: ControlPlaneTracing, spans: InMemorySpanExporter,
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "inferops.yaml").write_text(f"""\
store:
  url: sqlite:///{tmp_path / "inferops.db"}
alerting:
  rule_files: [rules.yaml]
  watchdog: false
remediation:
  enabled: false
""", encoding="utf-8")
    plane = ControlPlane(load_settings(tmp_path / "inferops.yaml", environ={}), tracing=tracing)
    try:
        plane.evaluate_once(1_800_000_000.0)
        plane.evaluate_once(1_800_000_001.0)
    finally:
        plane.close()
    rounds = [s for s in spans.get_finished_spans() if s.name == "evaluation round"]
    assert [dict(s.attributes or {}) for s in rounds] == [
        {"inferops.evaluation.at_s": 1_800_000_000.0, "inferops.rules": 1, "inferops.slos": 0,
         "inferops.alerts_changed": 1},
        {"inferops.evaluation.at_s": 1_800_000_001.0, "inferops.rules": 1, "inferops.slos": 0,
         "inferops.alerts_changed": 0},
    ]


class _Recording:
    def __init__(self, *, fail: bool = False) -> None:
        self.threads: list[str] = []
        self.fail = fail

    def notify(self, payload: Mapping[str, Any]) -> None:
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("receiver is down")


PAYLOAD = {"status": "firing", "groupKey": '{}:{alertname="NodeDown"}',
           "alerts": [{"labels": {"alertname": "NodeDown"}}, {"labels": {"alertname": "X"}}]}


def test_a_notification_is_traced_on_its_thread_as_a_child_of_its_round(
    tracing: ControlPlaneTracing, spans: InMemorySpanExporter,
) -> None:
    inner = _Recording()
    background = BackgroundNotifier(inner, name="remediation", tracing=tracing)
    try:
        with tracing.evaluation_round(1.0, rules=3, slos=1):
            background.notify(PAYLOAD)
        background.wait_idle()
    finally:
        background.close()
    assert inner.threads == ["notify-remediation"]
    by_name = {s.name: s for s in spans.get_finished_spans()}
    round_span, dispatch = by_name["evaluation round"], by_name["notify remediation"]
    assert dispatch.parent is not None
    assert dispatch.parent.span_id == round_span.context.span_id
    assert dict(dispatch.attributes or {}) == {
        "inferops.receiver": "remediation", "inferops.notification.status": "firing",
        "inferops.notification.alerts": 2,
        "inferops.notification.group_key": '{}:{alertname="NodeDown"}',
    }


def test_a_failing_receiver_marks_its_span_and_the_thread_goes_on(
    tracing: ControlPlaneTracing, spans: InMemorySpanExporter,
) -> None:
    inner = _Recording(fail=True)
    background = BackgroundNotifier(inner, name="webhook", tracing=tracing)
    try:
        background.notify(PAYLOAD)
        background.notify(PAYLOAD)
        background.wait_idle()
    finally:
        background.close()
    assert len(inner.threads) == 2
    failed = [s for s in spans.get_finished_spans() if s.name == "notify webhook"]
    assert [s.status.status_code for s in failed] == [StatusCode.ERROR, StatusCode.ERROR]
    assert [e.attributes["exception.message"] for e in failed[0].events
            if e.attributes is not None] == ["receiver is down"]


def _decision(id_: int, outcome: Outcome, guard: str | None, finished: float | None) -> Decision:
    return Decision(id=id_, action="drain", node="node-1", outcome=outcome,
                    reason="error rate over 20%", guard=guard, actor="policy:node-errors",
                    alertname="NodeHighErrorRate", alert_fingerprint="a1b2c3d4e5f60718",
                    started_at_s=1_800_000_000.25, finished_at_s=finished)


def test_each_remediation_decision_is_a_span_timed_by_the_decision(
    tracing: ControlPlaneTracing, spans: InMemorySpanExporter,
) -> None:
    with tracing.tracer.start_as_current_span("notify remediation") as parent:
        tracing.decisions([
            _decision(7, Outcome.SUCCEEDED, None, 1_800_000_001.5),
            _decision(8, Outcome.REFUSED, "disruption-budget", 1_800_000_000.25),
            _decision(9, Outcome.FAILED, None, None),
        ])
    decisions: list[ReadableSpan] = [s for s in spans.get_finished_spans()
                                     if s.name == "remediation drain"]
    assert [(s.start_time, s.end_time) for s in decisions] == [
        (1_800_000_000_250_000_000, 1_800_000_001_500_000_000),
        (1_800_000_000_250_000_000, 1_800_000_000_250_000_000),
        (1_800_000_000_250_000_000, 1_800_000_000_250_000_000),
    ]
    assert {s.parent.span_id for s in decisions if s.parent} == {parent.get_span_context().span_id}
    assert dict(decisions[1].attributes or {}) == {
        "inferops.decision.id": 8, "inferops.decision.action": "drain",
        "inferops.decision.node": "node-1", "inferops.decision.outcome": "refused",
        "inferops.decision.actor": "policy:node-errors",
        "inferops.decision.guard": "disruption-budget",
        "inferops.decision.alertname": "NodeHighErrorRate",
    }
    assert [s.status.status_code for s in decisions] == [
        StatusCode.UNSET, StatusCode.UNSET, StatusCode.ERROR]


@pytest.mark.parametrize(("text", "environ", "expected"), [
    ("", {}, None),
    ("", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318"),
    ("tracing:\n  otlp_endpoint: http://tempo:4318\n",
     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://tempo:4318"),
    ("tracing:\n  sample_ratio: 0.5\n",
     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "http://collector:4318"),
])
def test_the_otlp_endpoint_comes_from_the_file_then_the_standard_variable(
    text: str, environ: dict[str, str], expected: str | None,
) -> None:
    assert parse_settings(text, environ=environ).tracing.otlp_endpoint == expected


def test_tracing_settings_defaults() -> None:
    assert parse_settings("", environ={}).tracing == TracingSettings(
        otlp_endpoint=None, service_name="inferops-control-plane", sample_ratio=1.0)


@pytest.mark.parametrize(("text", "message"), [
    ("tracing:\n  otlp_endpoint: collector:4318\n",
     "inferops.yaml:2: tracing.otlp_endpoint: expected an http(s) URL such as "
     "http://127.0.0.1:4318, got 'collector:4318'"),
    ("tracing:\n  sample_ratio: 1.5\n",
     "inferops.yaml:2: tracing.sample_ratio: Input should be less than or equal to 1"),
])
def test_bad_tracing_settings_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, filename="inferops.yaml", environ={})
    assert str(raised.value) == message
