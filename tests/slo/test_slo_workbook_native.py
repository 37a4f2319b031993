"""The SRE Workbook's worked numbers, reproduced by the native engine on stored series.

The same series as test_slo_promtool_alerts.py (which checks the generated rules in
promtool), written into a real SQLite `SampleStore` and read by the `AlertEngine` through
`StoreSource`, evaluated every 10 s. At 99.9 % with the 14.4x 1h/5m pair a total outage
pages after b x r x L / e = 0.001 x 14.4 x 3600 s / 1 = 51.84 s; 15 % errors page after
345.6 s and, once they stop, clear after 300 s x (1 - 0.0144 / 0.15) = 271.2 s. Each is
checked at the last evaluation before and the first after, so within one interval.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from slo_replay import Scenario, run_native
from test_slo_promtool_alerts import SCENARIOS, SPEC

from slo import load_burn_rate_windows, parse_slo_specs

ONSET_S = 6 * 3600.0  # both scenarios: 6 hours of clean traffic first
INTERVAL_S = 10.0
# scenario -> (theoretical time, whether the page fires from then on)
THEORY = {
    "a full outage pages after 51.84 s": [(ONSET_S + 51.84, True)],
    "15% errors page after 345.6 s and clear 271.2 s after they stop": [
        (ONSET_S + 345.6, True),
        (ONSET_S + 600.0 + 271.2, False),
    ],
}


def within_one_interval(theory: list[tuple[float, bool]]) -> dict[float, frozenset[str]]:
    """The evaluations one interval either side of each theoretical change: before it the
    old state, after it the new one."""
    checks: dict[float, frozenset[str]] = {}
    for at_s, fires in theory:
        before = (at_s - INTERVAL_S) // INTERVAL_S * INTERVAL_S
        after = -((-(at_s + INTERVAL_S)) // INTERVAL_S) * INTERVAL_S
        checks[before] = frozenset() if fires else frozenset({"page"})
        checks[after] = frozenset({"page"}) if fires else frozenset()
    return checks


@pytest.mark.parametrize("name", THEORY.keys())
def test_the_native_engine_pages_and_clears_when_the_workbook_says(
    tmp_path: Path, name: str
) -> None:
    case = SCENARIOS[name]
    [spec] = parse_slo_specs(SPEC.format(name=case.slo, objective=case.objective))
    page = [w for w in load_burn_rate_windows(case.windows) if w.severity == "page"]
    checks = within_one_interval(THEORY[name])
    series = {
        'http_requests_total{job="router",status="2xx"}': case.ok_requests,
        'http_requests_total{job="router",status="5xx"}': case.failed_requests,
    }
    native = run_native(tmp_path, Scenario(spec, page, INTERVAL_S, INTERVAL_S, series, checks))
    assert native.firing == checks
