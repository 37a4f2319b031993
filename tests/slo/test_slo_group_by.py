"""`group_by`: one SLO per model, one status and one alert per group, native and promtool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from slo_replay import Scenario, expand, parse_series, run_native, write_promtool_test

from collectors import SampleStore, ScrapedSample, StoreSource
from slo import (
    BurnRateWindow,
    SloEvaluator,
    generate_rules,
    parse_slo_specs,
    render_rules_yaml,
)

SPEC = """\
version: inferops/v1
slos:
  - name: model-availability
    objective: 0.99
    group_by: [model_name]
    sli:
      ratio:
        bad: http_requests_total{status="5xx"}
        total: http_requests_total
"""
PAGE = [BurnRateWindow("page", long_window_s=1800, short_window_s=300, burn_rate=14.4)]
# 10 requests/s to each model, sampled every 7 s; from 35 min, half of model b's fail.
SERIES = {
    'http_requests_total{model_name="a",status="2xx",node="node-0"}': "0+70x600",
    'http_requests_total{model_name="b",status="2xx",node="node-1"}': "0+70x300 21035+35x299",
    'http_requests_total{model_name="b",status="5xx",node="node-1"}': "0x300 35+35x299",
}
B_PAGE = {
    "alertname": "SloErrorBudgetBurn",
    "model_name": "b",
    "severity": "page",
    "slo": "model-availability",
}


def test_each_group_gets_its_own_status_and_only_the_failing_model_pages(
    tmp_path: Path, promtool: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    [spec] = parse_slo_specs(SPEC)
    # b's errors start at 2107 s; its 30m error ratio 0.5 x (t - 2107) / 1800 passes
    # 14.4 x 1% after 518 s, at 2625 s: the first evaluation after is 2660 s.
    checks = {2520.0: frozenset(), 2590.0: frozenset(), 2660.0: frozenset({"page"})}
    scenario = Scenario(spec, PAGE, 7, 70, SERIES, checks)
    native = run_native(tmp_path, scenario)
    assert native.firing == checks
    assert native.firing_labels[2660.0] == [B_PAGE]

    database = sa.create_engine(f"sqlite:///{tmp_path / 'status.db'}")
    store = SampleStore(database)
    store.append(
        [
            ScrapedSample(*parse_series(text), value, index * 7.0)
            for text, notation in SERIES.items()
            for index, value in enumerate(expand(notation))
        ]
    )
    try:
        statuses = SloEvaluator(StoreSource(store)).evaluate_all(spec, 4200.0, PAGE)
    finally:
        database.dispose()
    # Over the SLO window (all 70 minutes so far) b failed half its requests for 35
    # minutes: SLI 0.75, budget 1 - 0.25 / 0.01 = -24; burning 0.5 / 0.01 = 50x lately.
    assert [s.group for s in statuses] == [{"model_name": "a"}, {"model_name": "b"}]
    assert (statuses[0].sli_value, statuses[0].error_budget_remaining) == (1.0, 1.0)
    assert statuses[0].burn_rates == {300.0: 0.0, 1800.0: 0.0}
    assert statuses[1].sli_value == pytest.approx(0.75, abs=0.005)
    assert statuses[1].error_budget_remaining == pytest.approx(-24.0, abs=0.5)
    assert statuses[1].burn_rates == pytest.approx({300.0: 50.0, 1800.0: 50.0})

    path = write_promtool_test(tmp_path, scenario)
    test = yaml.safe_load(path.read_text(encoding="utf-8"))
    for alert_test in test["tests"][0]["alert_rule_test"]:
        for expected in alert_test["exp_alerts"]:
            expected["exp_labels"] = {k: v for k, v in B_PAGE.items() if k != "alertname"}
    path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    rules = render_rules_yaml(generate_rules([spec], PAGE))
    assert 'sum by (model_name) (rate(http_requests_total{status="5xx"}[5m]))' in rules
    result = promtool("test", "rules", "slo-test.yaml")
    assert result.stdout == "Unit Testing:  slo-test.yaml\n  SUCCESS\n\n", result.stdout
