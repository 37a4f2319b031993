"""Replaying promtool-style input series through the native engine and through promtool.

One scenario (series in promtool's expanding notation, rule evaluation interval, times to
check) runs twice: into a real `SampleStore` read by the native `SloEvaluator` and
`AlertEngine`, and as a `promtool test rules` file over the generated Prometheus rules; the
tests then compare both against the same expected firing times and recorded numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
import yaml

from alerting import AlertEngine, AlertState, AlertStore
from collectors import SampleStore, ScrapedSample, StoreSource
from slo import (
    BurnRateWindow,
    SloEvaluator,
    SloSpec,
    burn_rate_alert_rules,
    generate_rules,
    render_rules_yaml,
)

_TERM = re.compile(r"(?P<start>-?[0-9.]+)(?:(?P<sign>[+-])(?P<step>[0-9.]+))?x(?P<n>\d+)")
_SERIES = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def expand(notation: str) -> list[float]:
    """promtool's expanding notation: `a+bxn` is n+1 values from a by b, `axn` a repeated."""
    values: list[float] = []
    for term in notation.split():
        match = _TERM.fullmatch(term)
        if match is None:
            values.append(float(term))
            continue
        start = float(match["start"])
        step = float(match["step"] or 0.0) * (-1.0 if match["sign"] == "-" else 1.0)
        values.extend(start + step * i for i in range(int(match["n"]) + 1))
    return values


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    match = _SERIES.fullmatch(text.strip())
    assert match is not None, text
    return match["name"], dict(_LABEL.findall(match["labels"] or ""))


@dataclass(frozen=True)
class Scenario:
    """Input series (promtool notation at `interval_s`), checked at `checks` (seconds -> the
    severities firing then) and `ratios` (seconds -> window seconds -> error ratio)."""

    spec: SloSpec
    windows: Sequence[BurnRateWindow]
    interval_s: float
    evaluation_interval_s: float
    series: Mapping[str, str]
    checks: Mapping[float, frozenset[str]]
    ratios: Mapping[float, Mapping[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class NativeRun:
    firing: dict[float, frozenset[str]]
    firing_labels: dict[float, list[dict[str, str]]]
    ratios: dict[float, dict[float, float | None]]


def run_native(tmp_path: Path, scenario: Scenario) -> NativeRun:
    """The control plane's round, replayed: record the slices, then evaluate the alerts."""
    database = sa.create_engine(f"sqlite:///{tmp_path / 'native.db'}")
    try:
        store = SampleStore(database)
        samples = []
        for text, notation in scenario.series.items():
            name, labels = parse_series(text)
            samples += [
                ScrapedSample(name, labels, value, index * scenario.interval_s)
                for index, value in enumerate(expand(notation))
            ]
        store.append(samples)
        source = StoreSource(store)
        evaluator = SloEvaluator(source)
        engine = AlertEngine(
            source, AlertStore(database), burn_rate_alert_rules(scenario.spec, scenario.windows)
        )
        last = max([*scenario.checks, *scenario.ratios])
        firing: dict[float, frozenset[str]] = {}
        firing_labels: dict[float, list[dict[str, str]]] = {}
        ratios: dict[float, dict[float, float | None]] = {}
        step = 0
        while step * scenario.evaluation_interval_s <= last:
            at_s = step * scenario.evaluation_interval_s
            step += 1
            recorded = evaluator.timeslice_samples([scenario.spec], at_s)
            if recorded:
                store.append(recorded)
            if at_s in scenario.checks:
                engine.evaluate(at_s)
                fired = [alert for alert in engine.active() if alert.state == AlertState.FIRING]
                firing[at_s] = frozenset(alert.labels["severity"] for alert in fired)
                firing_labels[at_s] = sorted(
                    (dict(alert.labels) for alert in fired),
                    key=lambda labels: sorted(labels.items()),
                )
            if at_s in scenario.ratios:
                ratios[at_s] = {
                    window_s: evaluator.error_ratio(scenario.spec, window_s, at_s)
                    for window_s in scenario.ratios[at_s]
                }
        return NativeRun(firing, firing_labels, ratios)
    finally:
        database.dispose()


def _promql_duration(seconds: float) -> str:
    return f"{round(seconds)}s"


def write_promtool_test(tmp_path: Path, scenario: Scenario) -> Path:
    """The generated rules and a `promtool test rules` file checking the same expectations."""
    spec = scenario.spec
    (tmp_path / "slo-rules.yaml").write_text(
        render_rules_yaml(generate_rules([spec], scenario.windows)), encoding="utf-8"
    )
    rules = {
        rule.labels["severity"]: rule for rule in burn_rate_alert_rules(spec, scenario.windows)
    }
    alert_tests = [
        {
            "eval_time": _promql_duration(at_s),
            "alertname": "SloErrorBudgetBurn",
            "exp_alerts": [
                {
                    "exp_labels": dict(rules[severity].labels),
                    "exp_annotations": dict(rules[severity].annotations),
                }
                for severity in sorted(firing)
            ],
        }
        for at_s, firing in sorted(scenario.checks.items())
    ]
    expr_tests = [
        {
            "expr": f'slo:sli_error:ratio_rate{_format(window_s)}{{slo="{spec.name}"}}',
            "eval_time": _promql_duration(at_s),
            "exp_samples": [
                {
                    "labels": _labels_text(f"slo:sli_error:ratio_rate{_format(window_s)}", spec),
                    "value": value,
                }
            ],
        }
        for at_s, by_window in sorted(scenario.ratios.items())
        for window_s, value in sorted(by_window.items())
    ]
    test = {
        "rule_files": ["slo-rules.yaml"],
        "evaluation_interval": _promql_duration(scenario.evaluation_interval_s),
        "tests": [
            {
                "interval": _promql_duration(scenario.interval_s),
                "input_series": [
                    {"series": text, "values": notation}
                    for text, notation in scenario.series.items()
                ],
                "alert_rule_test": alert_tests,
                **({"promql_expr_test": expr_tests} if expr_tests else {}),
            }
        ],
    }
    path = tmp_path / "slo-test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    return path


def _format(window_s: float) -> str:
    from slo import format_duration

    return format_duration(window_s)


def _labels_text(record: str, spec: SloSpec) -> str:
    labels = dict(sorted({**spec.labels, "slo": spec.name}.items()))
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{record}{{{inner}}}"
