"""How many series the generated rules record per SLO, against Sloth for the same SLOs.

Sloth (github.com/slok/sloth, internal/prometheus/recording_rules.go) records per SLO one
`slo:sli_error:ratio_rate<w>` per alert window (5m, 30m, 1h, 2h, 6h, 1d, 3d) plus the SLO
period (30d), and 7 metadata series (`slo:objective:ratio`, `slo:error_budget:ratio`,
`slo:time_period:days`, `slo:current_burn_rate:ratio`, `slo:period_burn_rate:ratio`,
`slo:period_error_budget_remaining:ratio`, `sloth_slo_info`), and 2 alerts (page, ticket).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slo import (
    RecordingRule,
    SloSpec,
    generate_rules,
    load_burn_rate_windows,
    load_slo_specs,
    parse_slo_specs,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "slo" / "examples" / "fleet-slos.yaml"
SLOTH_SERIES_PER_SLO = 8 + 7  # SLI windows + metadata, with the Workbook windows and 30d
P99_SPEC = """\
version: inferops/v1
slos:
  - name: chat-p99
    objective: 0.99
    sli:
      percentile: {histogram: vllm:e2e_request_latency_seconds, quantile: 0.99, threshold: 2s}
"""

COUNTS = {
    # ratio and latency SLIs: 8 error ratios + objective, SLI, budget remaining
    "the example ratio and latency SLOs record 11 series each (Sloth: 15)": (
        load_slo_specs(EXAMPLES),
        11,
        2,
    ),
    # a per-slice SLI records its slice as well
    "a p99 SLO records 12 (Sloth has no percentile SLI)": (parse_slo_specs(P99_SPEC), 12, 2),
}


@pytest.mark.parametrize(("specs", "series", "alerts"), COUNTS.values(), ids=COUNTS.keys())
def test_the_generated_rules_record_fewer_series_than_sloth(
    specs: list[SloSpec], series: int, alerts: int
) -> None:
    groups = generate_rules(specs, load_burn_rate_windows("sre-workbook-v1"))
    for group in groups:
        recorded = [rule for rule in group.rules if isinstance(rule, RecordingRule)]
        assert len(recorded) == series
        assert len(group.rules) - len(recorded) == alerts
        assert len(recorded) < SLOTH_SERIES_PER_SLO
