"""The cost page: GPU dollars per request and per 1k output tokens per node and per model,
read with the cost SLO's own PromQL (prices from the SLI), and the page's tables."""

from __future__ import annotations

import pytest
from dashboards_doubles import (
    AlertBook,
    DecisionBook,
    ScriptedSource,
    SetClock,
    sample,
    series,
    table_message,
    table_rows,
)
from test_dashboards_app import Page

from dashboards import ChartSeries, CostRow, DashboardData, ElementId, create_app
from dashboards._cost import narrowed
from dashboards._rows import ChartKind
from slo import CostSli

NOW_S = 1_700_000_000.0
SLI = CostSli(
    gpus='DCGM_FI_DEV_GPU_UTIL{job="nodes"}',
    price_label="modelName",
    gpu_hour_prices={"H100": 3.6, "L4": 0.72},
    requests='http_requests_total{job="nodes"}',
    per="request",
    max_dollars=0.01,
    output_tokens='vllm:generation_tokens_total{job="nodes"}',
    slice_s=60.0,
)


def dollars(node: str) -> str:
    return (
        f'(count(DCGM_FI_DEV_GPU_UTIL{{job="nodes",node="{node}",modelName="H100"}}) * 0.001'
        " or on() vector(0)) + "
        f'(count(DCGM_FI_DEV_GPU_UTIL{{job="nodes",node="{node}",modelName="L4"}}) * 0.0002'
        " or on() vector(0))"
    )


FLEET_DOLLARS = (
    '((count(DCGM_FI_DEV_GPU_UTIL{job="nodes",modelName="H100"}) * 0.001 or on() vector(0))'
    ' + (count(DCGM_FI_DEV_GPU_UTIL{job="nodes",modelName="L4"}) * 0.0002 or on() vector(0)))'
)
INSTANT = {
    'count by (node) (DCGM_FI_DEV_GPU_UTIL{job="nodes"})': [
        sample(2, node="node-0"), sample(1, node="node-1"), sample(1, node="node-10")],
    'count by (node, model_name) (http_requests_total{job="nodes"})': [
        sample(4, node="node-0", model_name="big"), sample(4, node="node-1", model_name="big"),
        sample(4, node="node-10", model_name="small")],
    # node-0: two H100 = $7.20/h; node-1: one L4 = $0.72/h; node-10: one L4, no traffic.
    dollars("node-0"): [sample(0.002)],
    dollars("node-1"): [sample(0.0002)],
    dollars("node-10"): [sample(0.0002)],
    'sum(rate(http_requests_total{job="nodes",node="node-0"}[1m]))': [sample(4.0)],
    'sum(rate(http_requests_total{job="nodes",node="node-1"}[1m]))': [sample(1.0)],
    'sum(rate(http_requests_total{job="nodes",node="node-10"}[1m]))': [sample(0.0)],
    'sum(rate(vllm:generation_tokens_total{job="nodes",node="node-0"}[1m]))': [sample(400.0)],
    'sum(rate(vllm:generation_tokens_total{job="nodes",node="node-1"}[1m]))': [sample(50.0)],
    'sum(rate(vllm:generation_tokens_total{job="nodes",node="node-10"}[1m]))': [],
}
RANGES = {
    f'{FLEET_DOLLARS} / sum(rate(http_requests_total{{job="nodes"}}[1m]))': [
        series([NOW_S - 60, NOW_S], [0.0006, 0.00044])],
    f'{FLEET_DOLLARS} / sum(rate(vllm:generation_tokens_total{{job="nodes"}}[1m])) * 1000': [
        series([NOW_S - 60, NOW_S], [0.005, 0.0049])],
}


@pytest.fixture
def data() -> DashboardData:
    return DashboardData(
        ScriptedSource(INSTANT, RANGES), AlertBook(), DecisionBook([]),
        clock=SetClock(NOW_S), cost=SLI,
    )


@pytest.mark.parametrize(
    ("selector", "expected"),
    [("m", 'm{node="n\\"1"}'), ("m{}", 'm{node="n\\"1"}'),
     ('m{job="x"}', 'm{job="x",node="n\\"1"}'), ('m{job="x",}', 'm{job="x",node="n\\"1"}')],
)
def test_a_selector_is_narrowed_to_one_node(selector: str, expected: str) -> None:
    assert narrowed(selector, "node", 'n"1') == expected


def test_each_node_costs_its_gpus_by_the_slis_prices_over_its_traffic(
    data: DashboardData,
) -> None:
    nodes, models = data.costs(NOW_S)
    assert nodes == [
        CostRow("node-0", "big", pytest.approx(7.2), 4.0, 400.0, pytest.approx(0.0005),
                pytest.approx(0.005)),
        CostRow("node-1", "big", pytest.approx(0.72), 1.0, 50.0, pytest.approx(0.0002),
                pytest.approx(0.004)),
        CostRow("node-10", "small", pytest.approx(0.72), 0.0, None, None, None),
    ]
    # big: ($7.20 + $0.72)/h over 5 requests/s and 450 tokens/s.
    assert models == [
        CostRow(None, "big", pytest.approx(7.92), 5.0, 450.0, pytest.approx(0.00044),
                pytest.approx(0.0048888889)),
        CostRow(None, "small", pytest.approx(0.72), 0.0, None, None, None),
    ]


def test_the_cost_charts_are_the_fleets_cost_per_unit_over_time(data: DashboardData) -> None:
    assert data.chart(ChartKind.COST_PER_REQUEST, NOW_S - 60, NOW_S, 60.0) == [
        ChartSeries("fleet", (NOW_S - 60, NOW_S), (0.0006, 0.00044))]
    assert data.chart(ChartKind.COST_PER_1K_OUTPUT_TOKENS, NOW_S - 60, NOW_S, 60.0) == [
        ChartSeries("fleet", (NOW_S - 60, NOW_S), (0.005, 0.0049))]


def test_the_cost_page_shows_dollars_per_node_and_per_model(data: DashboardData) -> None:
    answer = Page(create_app(data)).update((ElementId.COST_TABLE, "children"))
    nodes = table_rows(answer[ElementId.COST_TABLE]["children"])
    assert [row.key for row in nodes] == ["node-0", "node-1", "node-10"]
    assert {key: text for key, (text, _css) in nodes[0].cells.items()} == {
        "node": "node-0", "model": "big", "gpu_dollars_per_hour": "$7.2000",
        "requests_per_s": "4.00", "output_tokens_per_s": "400.00", "dollars_per_request":
        "$0.0005", "dollars_per_1k_output_tokens": "$0.0050"}
    assert nodes[2].cells["dollars_per_request"][0] == "\N{EN DASH}"
    models = table_rows(answer[ElementId.COST_MODELS_TABLE]["children"])
    assert [(row.key, row.cells["dollars_per_request"][0]) for row in models] == [
        ("big", "$0.0004"), ("small", "\N{EN DASH}")]


def test_without_a_cost_slo_the_page_says_so() -> None:
    data = DashboardData(ScriptedSource(), AlertBook(), DecisionBook([]), clock=SetClock(NOW_S))
    answer = Page(create_app(data)).update((ElementId.COST_TABLE, "children"))
    message = "no cost SLO configured (an SLO with a cost SLI gives the GPU prices)"
    assert table_message(answer[ElementId.COST_TABLE]["children"]) == (message, 7)
    assert table_message(answer[ElementId.COST_MODELS_TABLE]["children"]) == (message, 6)
