"""OpenSLO v1 `SLO` / `SLI` documents loaded by the same `load_slo_specs` as the native form.

The documents follow the OpenSLO specification's own examples (github.com/OpenSLO/OpenSLO:
README.md, sections "SLO", "SLI" and "Ratio Metric" for the inline indicator and the
Prometheus `ratioMetric` with `sum(localhost_server_requests{...})`; examples/budgeting-method/
occurences-slo.yaml and timeslices-slo.yaml for the budgeting methods and time windows),
their comments left out. Those two examples name a metric source of type `Any`, which we
refuse with the file, line and field.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from slo import (
    RatioSli,
    SloSpec,
    SloSpecError,
    ThresholdSli,
    generate_rules,
    load_burn_rate_windows,
    load_slo_specs,
    render_rules_yaml,
)

README_RATIO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: foo-slo
  displayName: Foo SLO
spec:
  service: foo
  indicator:
    metadata:
      name: foo-error
      displayName: Foo Error
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            metricSourceRef: prometheus-datasource
            spec:
              query: GOOD_QUERY
        total:
          metricSource:
            type: Prometheus
            metricSourceRef: prometheus-datasource
            spec:
              query: localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}
  budgetingMethod: Occurrences
  objectives:
    - displayName: Foo Total Errors
      target: 0.98
""".replace(
    "GOOD_QUERY",
    'sum(localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"})',
)

REFERENCED_THRESHOLD = """\
apiVersion: openslo/v1
kind: Service
metadata:
  name: web-shop
spec:
  description: The shop.
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: search-latency
  displayName: Latency of user searches
spec:
  thresholdMetric:
    metricSource:
      type: Prometheus
      spec:
        query: histogram_quantile(0.99, sum by (le) (rate(search_seconds_bucket[1m])))
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-slo
  displayName: Searching time
spec:
  description: Regardless of the number of parallel searches it never should be more than 500ms.
  service: web-shop
  indicatorRef: search-latency
  timeWindow:
    - duration: 2w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good experience
      op: lt
      value: 0.5
      target: 0.99
"""

TIMESLICES_CALENDAR = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: service-availability
spec:
  description: SLO to see if we are above our SLA and to react before.
  service: web-availability
  indicator:
    metadata:
      name: web-availability
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total{code="200"}
        total:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar:
        startTime: 2022-01-01 00:00:00
        timeZone: UTC
  budgetingMethod: Timeslices
  objectives:
    - displayName: SLA
      target: 0.99
      timeSliceTarget: 0.99
      timeSliceWindow: 1m
"""

LOADED = {
    "the README's inline Prometheus ratioMetric (good over total, sum() unwrapped)": (
        README_RATIO,
        [
            SloSpec(
                name="foo-slo",
                objective=0.98,
                sli=RatioSli(
                    bad="",
                    good='localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"}',
                    total='localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}',
                ),
                labels={"service": "foo"},
            )
        ],
    ),
    "a thresholdMetric SLI by indicatorRef, Occurrences, a rolling 2w window": (
        REFERENCED_THRESHOLD,
        [
            SloSpec(
                name="search-slo",
                objective=0.99,
                sli=ThresholdSli(
                    query="histogram_quantile(0.99, sum by (le) (rate(search_seconds_bucket[1m])))",
                    op="lt",
                    value=0.5,
                ),
                window_s=14 * 86_400.0,
                description=(
                    "Regardless of the number of parallel searches it never should be more "
                    "than 500ms."
                ),
                labels={"service": "web-shop"},
            )
        ],
    ),
    "Timeslices over a ratioMetric, a calendar month": (
        TIMESLICES_CALENDAR,
        [
            SloSpec(
                name="service-availability",
                objective=0.99,
                sli=ThresholdSli(
                    query=(
                        'sum(rate(http_requests_total{code="200"}[60s])) / '
                        "sum(rate(http_requests_total[60s]))"
                    ),
                    op="gte",
                    value=0.99,
                    slice_s=60.0,
                ),
                window_s=30 * 86_400.0,
                description="SLO to see if we are above our SLA and to react before.",
                labels={"service": "web-availability"},
                calendar="month",
            )
        ],
    ),
}


@pytest.mark.parametrize(("text", "specs"), LOADED.values(), ids=LOADED.keys())
def test_openslo_documents_load_as_slo_specs(
    tmp_path: Path,
    promtool: Callable[..., subprocess.CompletedProcess[str]],
    text: str,
    specs: list[SloSpec],
) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_slo_specs(path)
    assert loaded == specs
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        render_rules_yaml(generate_rules(loaded, load_burn_rate_windows("sre-workbook-v1"))),
        encoding="utf-8",
    )
    result = promtool("check", "rules", "rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


# The OpenSLO repository's examples/budgeting-method files, as written there: a metric
# source of type Any, and (occurrences) a source spec holding only comments.
OCCURRENCES_EXAMPLE = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-slo
  displayName: Searching time
spec:
  description: Regardless of the number of paraller searches it never should be more than 500ms.
  service: web-shop
  indicator:
    metadata:
      name: search-latency
      displayName: Latency of user searches
    spec:
      thresholdMetric:
        metricSource:
          type: Any
          spec:
  timeWindow:
    - duration: 2w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good experience
      op: lt
      value: 500
      target: 0.99
  alertPolicies:
"""

REFUSED = {
    "the occurrences example's metric source of type Any": (
        OCCURRENCES_EXAMPLE,
        "openslo.yaml:16: spec.indicator.spec.thresholdMetric.metricSource.type: only "
        "Prometheus metric sources are supported, got 'Any'",
    ),
    "the timeslices example's RatioTimeslices cousin": (
        TIMESLICES_CALENDAR.replace(
            "budgetingMethod: Timeslices", "budgetingMethod: RatioTimeslices"
        ),
        "openslo.yaml:30: spec.budgetingMethod: must be Occurrences or Timeslices "
        "(RatioTimeslices is not supported), got 'RatioTimeslices'",
    ),
    "a calendar window in another time zone": (
        TIMESLICES_CALENDAR.replace("timeZone: UTC", "timeZone: America/New_York"),
        "openslo.yaml:29: spec.timeWindow[0].calendar.timeZone: calendar months are counted "
        "in UTC only, got 'America/New_York'",
    ),
    "an indicatorRef to no SLI": (
        REFERENCED_THRESHOLD.replace("indicatorRef: search-latency", "indicatorRef: search"),
        "openslo.yaml:28: spec.indicatorRef: no SLI document named 'search' in this file "
        "(SLIs: search-latency)",
    ),
    "a ratio query that is not a counter selector": (
        README_RATIO.replace(
            'query: localhost_server_requests{code="total"',
            'query: rate(localhost_server_requests{code="total"',
        ).replace('127.0.0.1:9090"}\n  budgeting', '127.0.0.1:9090"}[5m])\n  budgeting'),
        "openslo.yaml:26: spec.indicator.spec.ratioMetric.total.metricSource.spec.query: must "
        'be a PromQL vector selector such as http_requests_total{job="router",status="5xx"}, '
        'got \'rate(localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}'
        "[5m])' (a counter selector, optionally in sum(...), is what maps onto a ratio)",
    ),
    "a target of 98 (a percentage)": (
        README_RATIO.replace("target: 0.98", "target: 98"),
        "openslo.yaml:1: foo-slo: objective: must be between 0 and 1 (exclusive), got 98 "
        "(write 98% as 0.98)",
    ),
}


@pytest.mark.parametrize(("text", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_unsupported_openslo_is_refused_naming_file_line_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "openslo.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SloSpecError) as caught:
        load_slo_specs(path)
    assert str(caught.value) == message.replace("openslo.yaml", str(path))
