"""The per-slice SLI kinds as written in YAML: the PromQL each judges a slice with, and the
errors (file, line, field) for what cannot be used."""

from __future__ import annotations

import pytest

from slo import BurnRateWindow, SloSpecError, burn_rate_alert_rules, parse_slo_specs
from slo._timeslice_sli import timeslice_bad_expr

HEAD = "version: inferops/v1\nslos:\n  - name: s\n    objective: 0.99\n"

SLICE_EXPRESSIONS = {
    "p99 under 2 s over 30 s slices": (
        "    sli:\n      percentile:\n        histogram: h\n        quantile: 0.99\n"
        "        threshold: 2s\n        selector: '{job=\"router\"}'\n        slice: 30s\n",
        '(histogram_quantile(0.99, sum by (le) (rate(h_bucket{job="router"}[30s]))) > bool 2)\n'
        'and on() (sum(rate(h_count{job="router"}[30s])) > 0)',
    ),
    "at least 50 tokens/s while requests run or wait": (
        "    sli:\n      throughput:\n        tokens: vllm:generation_tokens_total\n"
        "        demand: '{__name__=~\"vllm:num_requests_(running|waiting)\"}'\n"
        "        min_tokens_per_s: 50\n",
        "(sum(rate(vllm:generation_tokens_total[1m])) < bool 50)\n"
        'and on() (sum(max_over_time({__name__=~"vllm:num_requests_(running|waiting)"}[1m])) > 0)',
    ),
    "at most $0.50 per 1k output tokens, GPUs priced by node": (
        "    sli:\n      cost:\n        gpus: DCGM_FI_DEV_GPU_UTIL\n        price_label: Hostname\n"
        "        gpu_hour_prices: {node-0: 2.5, node-1: 1.8}\n"
        "        requests: inferops_gateway_requests_total\n        per: 1k_output_tokens\n"
        '        output_tokens: inferops_gateway_tokens_total{kind="generation"}\n'
        "        max_dollars: 0.5\n",
        '(((count(DCGM_FI_DEV_GPU_UTIL{Hostname="node-0"}) * 0.000694444444444 or on() vector(0))'
        ' + (count(DCGM_FI_DEV_GPU_UTIL{Hostname="node-1"}) * 0.0005 or on() vector(0)))'
        ' / sum(rate(inferops_gateway_tokens_total{kind="generation"}[1m])) * 1000 > bool 0.5)\n'
        "and on() (sum(rate(inferops_gateway_requests_total[1m])) > 0)",
    ),
}


@pytest.mark.parametrize(("sli", "expr"), SLICE_EXPRESSIONS.values(), ids=SLICE_EXPRESSIONS.keys())
def test_each_per_slice_kind_judges_a_slice_with_this_promql(sli: str, expr: str) -> None:
    [spec] = parse_slo_specs(HEAD + sli)
    assert timeslice_bad_expr(spec.sli) == expr  # type: ignore[arg-type]


BAD = {
    "a quantile written as a percentage": (
        "    sli:\n      percentile: {histogram: h, quantile: 99, threshold: 1s}\n",
        "slos.yaml:6: slos[0].sli.percentile.quantile: must be between 0 and 1 (exclusive; "
        "p99 is 0.99), got 99",
    ),
    "a cost per something else": (
        "    sli:\n      cost:\n        gpus: g\n        price_label: modelName\n"
        "        gpu_hour_prices: {H100: 3}\n        requests: r\n        per: token\n"
        "        max_dollars: 1\n",
        "slos.yaml:11: slos[0].sli.cost.per: must be one of request, 1k_output_tokens, got 'token'",
    ),
    "a cost per 1k tokens without the token counter": (
        "    sli:\n      cost:\n        gpus: g\n        price_label: modelName\n"
        "        gpu_hour_prices: {H100: 3}\n        requests: r\n        per: 1k_output_tokens\n"
        "        max_dollars: 1\n",
        "slos.yaml:6: slos[0].sli.cost.output_tokens: required when per is 1k_output_tokens "
        "(a counter of generated tokens)",
    ),
    "throughput without demand": (
        "    sli:\n      throughput: {tokens: t, min_tokens_per_s: 5}\n",
        "slos.yaml:6: slos[0].sli.throughput.demand: required but missing",
    ),
    "a threshold past the last finite bucket": (
        "    sli:\n      latency: {histogram: h, threshold: 12s, buckets: [1, 5, 10]}\n",
        "slos.yaml:6: slos[0].sli.latency.threshold: must be at most the last finite bucket "
        "bound 10s (nothing to interpolate towards +Inf), got 12s",
    ),
    "group_by on a per-slice SLI": (
        "    group_by: [model_name]\n"
        "    sli:\n      percentile: {histogram: h, quantile: 0.99, threshold: 1s}\n",
        "slos.yaml:5: slos[0].group_by: is supported for ratio and latency SLIs only",
    ),
    "a negative min_events": (
        "    min_events: -1\n    sli:\n      ratio: {bad: b, total: t}\n",
        "slos.yaml:5: slos[0].min_events: must be zero or more events, got -1",
    ),
}


@pytest.mark.parametrize(("body", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_sli_is_refused_naming_file_line_and_field(body: str, message: str) -> None:
    with pytest.raises(SloSpecError) as caught:
        parse_slo_specs(HEAD + body, filename="slos.yaml")
    assert str(caught.value) == message


def test_min_events_counts_each_group_on_its_own() -> None:
    [spec] = parse_slo_specs(
        HEAD.replace("objective: 0.99\n", "objective: 0.99\n    min_events: 100\n")
        + "    group_by: [model_name]\n    sli:\n      ratio: {bad: 'r{code=\"5xx\"}', total: r}\n"
    )
    [rule] = burn_rate_alert_rules(spec, [BurnRateWindow("page", 3600, 300, 14.4)])
    assert rule.expr == (
        "(\n"
        '  (sum by (model_name) (rate(r{code="5xx"}[1h])) / sum by (model_name) (rate(r[1h])))'
        " > 0.144\n"
        "  and\n"
        '  (sum by (model_name) (rate(r{code="5xx"}[5m])) / sum by (model_name) (rate(r[5m])))'
        " > 0.144\n"
        "  and on(model_name)\n"
        "  sum by (model_name) (increase(r[1h])) >= 100\n"
        ")"
    )
