"""SLO specs from YAML: the example file, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from slo import LatencySli, RatioSli, SloSpec, SloSpecError, load_slo_specs, parse_slo_specs

EXAMPLE = Path(__file__).parents[2] / "slo" / "examples" / "fleet-slos.yaml"

VALID = """\
version: inferops/v1
slos:
  - name: router-availability
    objective: 0.99
    window: 30d
    sli:
      ratio:
        bad: http_requests_total{status="5xx"}
        total: http_requests_total
"""

LATENCY = """\
version: inferops/v1
slos:
  - name: router-latency
    objective: 0.95
    labels:
      team: inference
    sli:
      latency:
        histogram: vllm:e2e_request_latency_seconds
        threshold: 2.5s
        selector: '{job="router"}'
"""


def test_the_example_file_reads_as_two_slos() -> None:
    assert load_slo_specs(EXAMPLE) == [
        SloSpec(
            name="router-availability",
            objective=0.99,
            sli=RatioSli(
                bad='http_requests_total{job="router",status="5xx"}',
                total='http_requests_total{job="router"}',
            ),
            window_s=2_592_000.0,
            description="Requests through the gateway that do not fail with a server error.",
        ),
        SloSpec(
            name="router-latency",
            objective=0.95,
            sli=LatencySli(
                histogram="vllm:e2e_request_latency_seconds",
                threshold_s=2.5,
                selector='{job="router"}',
            ),
            window_s=2_592_000.0,
            description="Requests through the gateway that complete within 2.5 seconds.",
        ),
    ]


@pytest.mark.parametrize(
    ("threshold", "window", "threshold_s", "window_s"),
    [
        ("2.5s", "30d", 2.5, 2_592_000.0),
        ("500ms", "1w", 0.5, 604_800.0),
        ("1", "1h30m", 1.0, 5_400.0),
        ("1m30s", "28d", 90.0, 2_419_200.0),
    ],
    ids=["decimal seconds", "milliseconds", "a plain number of seconds", "compound durations"],
)
def test_durations_read_as_seconds(
    threshold: str, window: str, threshold_s: float, window_s: float
) -> None:
    text = LATENCY.replace("threshold: 2.5s", f"threshold: {threshold}").replace(
        "objective: 0.95", f"objective: 0.95\n    window: {window}"
    )
    [spec] = parse_slo_specs(text)
    assert spec == SloSpec(
        name="router-latency",
        objective=0.95,
        sli=LatencySli(
            histogram="vllm:e2e_request_latency_seconds",
            threshold_s=threshold_s,
            selector='{job="router"}',
        ),
        window_s=window_s,
        labels={"team": "inference"},
    )


BAD_INPUTS = [
    (
        "an objective above one",
        VALID.replace("objective: 0.99", "objective: 1.5"),
        "slos.yaml:4: slos[0].objective: must be between 0 and 1 (exclusive), got 1.5",
    ),
    (
        "an objective written as a percentage",
        VALID.replace("objective: 0.99", "objective: 99.9"),
        "slos.yaml:4: slos[0].objective: must be between 0 and 1 (exclusive), got 99.9 "
        "(write 99.9% as 0.999)",
    ),
    (
        "an objective that is not a number",
        VALID.replace("objective: 0.99", "objective: high"),
        "slos.yaml:4: slos[0].objective: must be a number, got 'high'",
    ),
    (
        "a window that is not a duration",
        VALID.replace("window: 30d", "window: 30days"),
        "slos.yaml:5: slos[0].window: not a duration: '30days' (expected Prometheus syntax "
        "such as 30d, 1h30m, 500ms)",
    ),
    (
        "a window of zero",
        VALID.replace("window: 30d", "window: 0s"),
        "slos.yaml:5: slos[0].window: must be longer than zero, got 0s",
    ),
    (
        "a misspelt key",
        VALID.replace("window: 30d", "windwo: 30d"),
        "slos.yaml:5: slos[0].windwo: unknown key (allowed: name, objective, sli, description, "
        "window, labels, min_events, calendar, group_by)",
    ),
    (
        "a missing objective",
        VALID.replace("    objective: 0.99\n", ""),
        "slos.yaml:3: slos[0].objective: required but missing",
    ),
    (
        "a selector that does not parse",
        VALID.replace('status="5xx"}', 'status="5xx"'),
        "slos.yaml:8: slos[0].sli.ratio.bad: not valid PromQL (unexpected end of input inside "
        "braces): 'http_requests_total{status=\"5xx\"'",
    ),
    (
        "an aggregation where a selector belongs",
        VALID.replace("total: http_requests_total", "total: sum(http_requests_total)"),
        "slos.yaml:9: slos[0].sli.ratio.total: must be a PromQL vector selector such as "
        'http_requests_total{job="router",status="5xx"}, got \'sum(http_requests_total)\'',
    ),
    (
        "a selector with an offset",
        VALID.replace("total: http_requests_total", "total: http_requests_total offset 1h"),
        "slos.yaml:9: slos[0].sli.ratio.total: must be a vector selector without offset or @, "
        "got 'http_requests_total offset 1h'",
    ),
    (
        "two kinds of SLI",
        VALID + "      latency:\n        histogram: h\n        threshold: 1s\n",
        "slos.yaml:6: slos[0].sli: must have exactly one of ratio, latency, "
        "percentile, throughput, cost, got ratio and latency",
    ),
    (
        "a ratio without its total",
        VALID.replace("        total: http_requests_total\n", ""),
        "slos.yaml:7: slos[0].sli.ratio.total: required but missing",
    ),
    (
        "two SLOs of one name",
        VALID + VALID.split("slos:\n")[1],
        "slos.yaml:10: slos[1].name: duplicate SLO name 'router-availability' (first defined "
        "at line 3)",
    ),
    (
        "a spec of another tool",
        VALID.replace("version: inferops/v1", 'version: "prometheus/v1"'),
        "slos.yaml:1: version: unsupported version 'prometheus/v1' (expected inferops/v1)",
    ),
    (
        "no SLOs at all",
        "version: inferops/v1\nslos: []\n",
        "slos.yaml:2: slos: must not be empty",
    ),
    (
        "a name with a space",
        VALID.replace("name: router-availability", "name: router availability"),
        "slos.yaml:3: slos[0].name: must start with a letter or digit and use only letters, "
        "digits, '.', '_' and '-', got 'router availability'",
    ),
    (
        "a latency threshold that is not a duration",
        LATENCY.replace("threshold: 2.5s", "threshold: fast"),
        "slos.yaml:10: slos[0].sli.latency.threshold: not a duration: 'fast' (expected "
        "Prometheus syntax such as 30d, 1h30m, 500ms)",
    ),
    (
        "a histogram named by its bucket series",
        LATENCY.replace("latency_seconds\n", "latency_seconds_bucket\n"),
        "slos.yaml:9: slos[0].sli.latency.histogram: must be the histogram's base name, "
        "without '_bucket': 'vllm:e2e_request_latency_seconds'",
    ),
    (
        "a latency selector that picks a bucket itself",
        LATENCY.replace('{job="router"}', '{job="router",le="1.0"}'),
        "slos.yaml:11: slos[0].sli.latency.selector: must not match 'le': the threshold picks "
        'the bucket, got \'{job="router",le="1.0"}\'',
    ),
    (
        "a label the rules set themselves",
        LATENCY.replace("team: inference", "severity: high"),
        "slos.yaml:6: slos[0].labels.severity: is set by the generated rules (alertname, "
        "severity, slo are reserved)",
    ),
    (
        "a label value YAML reads as a number",
        LATENCY.replace("team: inference", "tier: 2"),
        "slos.yaml:6: slos[0].labels.tier: must be a string (quote it), got 2",
    ),
    (
        "broken YAML",
        VALID.replace("    window: 30d\n", "    window: [30d\n"),
        "slos.yaml:6: invalid YAML: expected ',' or ']', but got ':'",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_a_bad_spec_is_refused_naming_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(SloSpecError) as caught:
        parse_slo_specs(text, filename="slos.yaml")
    assert str(caught.value) == message


def test_an_unreadable_file_is_named() -> None:
    with pytest.raises(SloSpecError) as caught:
        load_slo_specs("/nonexistent/slos.yaml")
    assert str(caught.value) == (
        "/nonexistent/slos.yaml: cannot read SLO spec file: No such file or directory"
    )


def test_a_spec_built_in_code_validates_the_same_rules() -> None:
    spec = SloSpec(name="api", objective=0.0, sli=RatioSli(bad="errors_total", total="requests"))
    with pytest.raises(SloSpecError) as caught:
        spec.validate()
    assert str(caught.value) == "objective: must be between 0 and 1 (exclusive), got 0"
