"""Latency percentile, throughput and cost SLOs: one YAML spec, judged per slice, fire and
clear at the same evaluations in the native engine (a real store) and in promtool.

Every scenario samples its series every 7 s and evaluates every 70 s, so no sample sits
exactly on a window's edge (where Prometheus 2 and the embedded engine disagree on whether
a range includes it); the windows are page 6x over 30m/5m and ticket 2x over 1h/10m with
objective 95% of slices good.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from slo_replay import Scenario, run_native, write_promtool_test

from slo import BurnRateWindow, parse_slo_specs

WINDOWS = [
    BurnRateWindow("page", long_window_s=1800, short_window_s=300, burn_rate=6.0),
    BurnRateWindow("ticket", long_window_s=3600, short_window_s=600, burn_rate=2.0),
]
H = "vllm:e2e_request_latency_seconds"
H100 = 'modelName="NVIDIA H100 80GB HBM3"'
L4 = 'modelName="NVIDIA L4"'


@dataclass(frozen=True)
class Case:
    spec: str
    series: dict[str, str]
    transitions: dict[int, frozenset[str]]  # eval time (s) -> severities firing from then on
    ratios: dict[float, dict[float, float]]


NONE: frozenset[str] = frozenset()
TICKET = frozenset({"ticket"})
BOTH = frozenset({"page", "ticket"})

CASES = {
    # 10 requests/s, all under 0.5 s; from 21 min to 42 min 4 of every 70 take 1-2.5 s,
    # so p99 = 1 + 1.5 x (69.3 - 66) / 4 = 2.24 s > 1 s: every slice then is bad.
    "p99 over 1 s for 21 minutes tickets, pages, then clears": Case(
        spec=f"""\
version: inferops/v1
slos:
  - name: chat-p99
    objective: 0.95
    sli:
      percentile:
        histogram: {H}
        quantile: 0.99
        threshold: 1s
        selector: '{{job="router"}}'
""",
        series={
            f'{H}_bucket{{job="router",le="0.5"}}': "0+70x180 12666+66x179 24550+70x359",
            f'{H}_bucket{{job="router",le="1.0"}}': "0+70x180 12666+66x179 24550+70x359",
            f'{H}_bucket{{job="router",le="2.5"}}': "0+70x720",
            f'{H}_bucket{{job="router",le="+Inf"}}': "0+70x720",
            f'{H}_count{{job="router"}}': "0+70x720",
        },
        # First bad slice 1330 s; 1h window 3 bad of 21 at 1470 s (> 0.1); 30m window 8
        # bad of 26 at 1820 s (> 0.3); last bad slice 2520 s; the 5m window holds 1 bad of
        # 5 at 2800 s (< 0.3), the 10m window none at 3150 s.
        transitions={70: NONE, 1470: TICKET, 1820: BOTH, 2800: TICKET, 3150: NONE},
        ratios={1820.0: {1800.0: 8 / 26, 300.0: 1.0}, 3150.0: {600.0: 0.0}},
    ),
    # 100 tokens/s while 2 requests run; idle (no demand, no tokens) 21-42 min is not bad;
    # 20 tokens/s with 3 running from 42 to 63 min is.
    "too few tokens per second pages only while there is demand": Case(
        spec="""\
version: inferops/v1
slos:
  - name: decode-throughput
    objective: 0.95
    labels: {team: inference}
    sli:
      throughput:
        tokens: vllm:generation_tokens_total{job="node"}
        demand: vllm:num_requests_running{job="node"}
        min_tokens_per_s: 50
""",
        series={
            'vllm:generation_tokens_total{job="node"}': (
                "0+700x180 126000x179 126140+140x179 151900+700x179"
            ),
            'vllm:num_requests_running{job="node"}': "2x180 0x179 3x179 2x179",
        },
        # Demanded slices: 70-1260 s good, none while idle, 2590-3780 s bad. At 2730 s the
        # 30m window holds 3 bad of 9 (> 0.3) and the 1h window 3 of 21 (> 0.1); at 2940 s
        # the 30m window 6 bad of 8 (the idle gap does not dilute it). The 5m window lets
        # go at 4060 s (1 bad of 5), the 10m window at 4410 s.
        transitions={70: NONE, 2730: BOTH, 4060: TICKET, 4410: NONE},
        ratios={2940.0: {1800.0: 0.75, 300.0: 1.0}},
    ),
    # Two H100s at $3.60/h and one L4 at $0.72/h cost $0.0022/s: $0.00022 a request at
    # 10 requests/s (good), $0.00044 at 5/s from 21 to 42 min (bad, over $0.0003).
    "dollars per request over the limit while traffic halves": Case(
        spec="""\
version: inferops/v1
slos:
  - name: cost-per-request
    objective: 0.95
    sli:
      cost:
        gpus: DCGM_FI_DEV_GPU_UTIL
        price_label: modelName
        gpu_hour_prices: {"NVIDIA H100 80GB HBM3": 3.6, "NVIDIA L4": 0.72}
        requests: inferops_gateway_requests_total{status="200"}
        per: request
        max_dollars: 0.0003
""",
        series={
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",Hostname="node-0",{H100}}}': "50x720",
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="1",Hostname="node-0",{H100}}}': "50x720",
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",Hostname="node-1",{L4}}}': "50x720",
            'inferops_gateway_requests_total{api_key_name="team-a",status="200"}': (
                "0+70x180 12635+35x179 18970+70x359"
            ),
        },
        # Bad slices 1330-2520 s, as in the p99 case: the same evaluations.
        transitions={70: NONE, 1470: TICKET, 1820: BOTH, 2800: TICKET, 3150: NONE},
        ratios={1820.0: {1800.0: 8 / 26, 300.0: 1.0}},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_native_engine_and_promtool_fire_at_the_same_evaluations(
    tmp_path: Path,
    promtool: Callable[..., subprocess.CompletedProcess[str]],
    case: Case,
) -> None:
    [spec] = parse_slo_specs(case.spec)
    checks: dict[float, frozenset[str]] = {}
    current = NONE
    for at_s in range(70, 5041, 70):
        current = case.transitions.get(at_s, current)
        checks[float(at_s)] = current
    scenario = Scenario(spec, WINDOWS, 7, 70, case.series, checks, case.ratios)
    native = run_native(tmp_path, scenario)
    assert native.firing == checks
    assert native.ratios == case.ratios
    write_promtool_test(tmp_path, scenario)
    result = promtool("test", "rules", "slo-test.yaml")
    assert result.stdout == "Unit Testing:  slo-test.yaml\n  SUCCESS\n\n", result.stdout
