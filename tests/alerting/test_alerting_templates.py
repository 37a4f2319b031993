"""Annotation templates expand as Prometheus expands them; the real promtool is the judge
where it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from alerting_doubles import ScriptedSource, sample

from alerting import AlertEngine, AlertStore, expand_template
from slo import AlertingRule

LABELS = {"node": "node-1", "gpu": "0", "job": "nodes"}

CASES = [
    ("a label", "Node {{ $labels.node }} is down", 0.0, "Node node-1 is down"),
    ("a label without spaces", "Node {{$labels.node}} is down", 0.0, "Node node-1 is down"),
    ("a label through .Labels", "{{ .Labels.node }}", 0.0, "node-1"),
    ("a label through index", '{{ index $labels "gpu" }}', 0.0, "0"),
    ("a missing label, which Prometheus expands to nothing", "[{{ $labels.zone }}]", 0.0, "[]"),
    ("the value", "fails {{ $value }} of its requests", 0.25, "fails 0.25 of its requests"),
    ("a whole value", "XID {{ $value }}", 79.0, "XID 79"),
    ("a large value, as Go prints a float64", "{{ $value }}", 1e6, "1e+06"),
    ("a small value, as Go prints a float64", "{{ $value }}", 1e-5, "1e-05"),
    ("a value with all its digits", "{{ $value }}", 0.45454545454545453, "0.45454545454545453"),
    ("a NaN value", "{{ $value }}", float("nan"), "NaN"),
    ("an infinite value", "{{ $value }}", float("inf"), "+Inf"),
    ("humanize", "{{ humanize $value }}", 1234567.0, "1.235M"),
    ("humanize of a small value", "{{ humanize $value }}", 0.00001, "10u"),
    ("humanize through a pipe", "{{ $value | humanize }}", 123456.5, "123.5k"),
    ("humanizePercentage", "{{ $value | humanizePercentage }}", 0.4545, "45.45%"),
    ("printf with a precision", '{{ printf "%.2f" $value }} s', 2.5, "2.50 s"),
    ("printf through a pipe", '{{ $value | printf "%.1f%%" }}', 12.345, "12.3%"),
    ("trim markers", "a  {{- $labels.node -}}  b", 0.0, "anode-1b"),
    ("a comment", "a{{/* not shown */}}b", 0.0, "ab"),
    ("toUpper", "{{ $labels.node | toUpper }}", 0.0, "NODE-1"),
    ("an unsupported function, left as written", "{{ query \"up\" | first }}", 0.0,
     '{{ query "up" | first }}'),
    ("an unsupported action among supported ones",
     "{{ $labels.node }} {{ if gt $value 1.0 }}high{{ end }}", 2.0,
     "node-1 {{ if gt $value 1.0 }}high{{ end }}"),
    ("text without actions", "plain text", 0.0, "plain text"),
]


@pytest.mark.parametrize(
    ("text", "value", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_templates_expand_as_prometheus_expands_them(
    text: str, value: float, expected: str
) -> None:
    assert expand_template(text, labels=LABELS, value=value) == expected


def test_the_external_url_is_the_engines(source: ScriptedSource, store: AlertStore) -> None:
    source.script("x", {0: [sample(1.0, 0)]})
    rule = AlertingRule("X", "x", annotations={"link": "{{ $externalURL }}/alerts"})
    engine = AlertEngine(source, store, [rule], external_url="http://inferops:8050")
    [alert] = engine.evaluate(0)
    assert alert.annotations == {"link": "http://inferops:8050/alerts"}


# Templates whose Prometheus output promtool can check (no external URL in promtool).
PROMTOOL_ANNOTATIONS = {
    "label": "Node {{ $labels.node }} ({{$labels.missing}})",
    "value": "{{ $value }}",
    "humanize": "{{ humanize $value }}",
    "percentage": "{{ $value | humanizePercentage }}",
    "printf": '{{ printf "%.2f" $value }}',
    "trimmed": "a  {{- $labels.node -}}  b",
}
PROMTOOL_VALUES = {"a": 1e6, "b": 1e-5, "c": 123456.5, "d": 0.45454545454545453, "e": 79.0}


def test_promtool_agrees_with_every_expanded_annotation(
    tmp_path: Path, source: ScriptedSource, store: AlertStore
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    rule = AlertingRule(
        "Templated", "m > 0", labels={"severity": "{{ $labels.node }}-page"},
        annotations=PROMTOOL_ANNOTATIONS,
    )
    source.script("m > 0", {0: [
        sample(value, 0, __name__="m", node=node) for node, value in PROMTOOL_VALUES.items()
    ]})
    alerts = AlertEngine(source, store, [rule]).evaluate(0)
    assert len(alerts) == len(PROMTOOL_VALUES)

    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [rule.to_prometheus()]}]}),
        encoding="utf-8",
    )
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'm{{node="{node}"}}', "values": f"{value!r}x2"}
                for node, value in PROMTOOL_VALUES.items()
            ],
            "alert_rule_test": [{
                "eval_time": "0m",
                "alertname": "Templated",
                "exp_alerts": [
                    {"exp_labels": {k: v for k, v in a.labels.items() if k != "alertname"},
                     "exp_annotations": dict(a.annotations)}
                    for a in alerts
                ],
            }],
        }],
    }), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
