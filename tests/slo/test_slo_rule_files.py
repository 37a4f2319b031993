"""Prometheus rule files read for the native engine, and the errors for ones it cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from slo import AlertingRule, SloSpecError, load_alerting_rules

RULES = """\
groups:
  - name: fleet
    interval: 30s
    rules:
      - alert: NodeDown
        expr: up{job="nodes"} == 0
        for: 1m30s
        labels:
          severity: page
        annotations:
          summary: "Node {{ $labels.node }} is down"
      - alert: AlwaysFiring
        expr: vector(1)
"""


def test_alerting_rules_are_read_in_order(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    assert load_alerting_rules(tmp_path / "rules.yaml") == [
        AlertingRule(
            alert="NodeDown",
            expr='up{job="nodes"} == 0',
            for_s=90.0,
            labels={"severity": "page"},
            annotations={"summary": "Node {{ $labels.node }} is down"},
        ),
        AlertingRule(alert="AlwaysFiring", expr="vector(1)"),
    ]


BAD_FILES = [
    (
        "a recording rule",
        RULES.replace("- alert: AlwaysFiring", "- record: job:up:sum"),
        "rules.yaml:12: groups[0].rules[1].record: recording rules are not supported by the "
        "native engine yet: inline the expression in the alert, or run this file in Prometheus",
    ),
    (
        "an expression that is not PromQL",
        RULES.replace("expr: vector(1)", "expr: vector(1"),
        "rules.yaml:13: groups[0].rules[1].expr: not valid PromQL: unclosed left parenthesis",
    ),
    (
        "a rule without an expression",
        RULES.replace("        expr: vector(1)\n", ""),
        "rules.yaml:12: groups[0].rules[1].expr: required but missing",
    ),
    (
        "a misspelt key",
        RULES.replace("annotations:", "anotations:"),
        "rules.yaml:10: groups[0].rules[0].anotations: unknown key (allowed: alert, expr, for, "
        "labels, annotations)",
    ),
    (
        "a wait that is not a duration",
        RULES.replace("for: 1m30s", "for: 90"),
        "rules.yaml:7: groups[0].rules[0].for: must be a duration such as 30d, 1h30m or 500ms, "
        "got 90",
    ),
    (
        "a label value that is a number",
        RULES.replace("severity: page", "severity: 1"),
        "rules.yaml:9: groups[0].rules[0].labels.severity: must be a string (quote it), got 1",
    ),
    (
        "no groups",
        "rules: []\n",
        "rules.yaml:1: rules: unknown key (allowed: groups)",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_a_rule_file_the_engine_cannot_run_is_refused_with_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SloSpecError) as caught:
        load_alerting_rules(tmp_path / "rules.yaml")
    assert str(caught.value) == f"{tmp_path}/{message}"
