"""The generated page alerts fire and clear when the SRE Workbook says, in a real promtool.

Workbook, ch. 5: with budget b = 1 - objective, a burn-rate pair (rate r, long window L,
short window S) detects an error ratio e after b * r * L / e, and once the errors stop the
short window lets go after S * (1 - b * r / e). For objective 99.9% and the 14.4x 1h/5m pair:
a full outage pages after 51.84 s, 15% errors after 345.6 s, and 15% errors that stop clear
271.2 s later (the 1h window alone would hold the page for most of an hour). promtool
evaluates every 10 s here, so each time is checked at the last evaluation before it and the
first after it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from slo import generate_rules, load_burn_rate_windows, parse_slo_specs, render_rules_yaml

SPEC = """\
version: inferops/v1
slos:
  - name: {name}
    objective: {objective}
    sli:
      ratio:
        bad: http_requests_total{{job="router",status="5xx"}}
        total: http_requests_total{{job="router"}}
"""


@dataclass(frozen=True)
class Scenario:
    slo: str
    objective: float
    windows: str
    scrape_interval: str
    ok_requests: str  # promtool expanding notation for the 2xx counter
    failed_requests: str  # and for the 5xx counter
    page_description: str
    firing_at: dict[str, bool]  # eval time -> whether the page fires


WORKBOOK_PAGE = (
    "The error ratio is above 14.4x the budget over both 1h and 5m, or 6x the budget over "
    "both 6h and 30m (objective 99.9% over 30d)."
)

SCENARIOS = {
    # 6 hours at 100 requests/s, then every request fails (6h = sample 2160 at 10 s).
    "a full outage pages after 51.84 s": Scenario(
        slo="api-availability",
        objective=0.999,
        windows="sre-workbook-v1",
        scrape_interval="10s",
        ok_requests="10000+1000x2160 2170000+0x100",
        failed_requests="100+0x2160 1100+1000x100",
        page_description=WORKBOOK_PAGE,
        firing_at={"6h": False, "6h50s": False, "6h1m": True, "6h10m": True},
    ),
    # 6 hours at 100 requests/s, then 15% fail for 10 minutes, then none.
    "15% errors page after 345.6 s and clear 271.2 s after they stop": Scenario(
        slo="api-availability",
        objective=0.999,
        windows="sre-workbook-v1",
        scrape_interval="10s",
        ok_requests="10000+1000x2160 2170850+850x59 2222000+1000x239",
        failed_requests="100+0x2160 250+150x59 9100+0x239",
        page_description=WORKBOOK_PAGE,
        firing_at={
            "6h5m40s": False,
            "6h5m50s": True,
            "6h14m30s": True,
            "6h14m40s": False,
            "6h30m": False,
        },
    ),
    # demo-v1: 30 requests/s scraped every second; after 6 minutes one node of three fails
    # every request it gets (10/s) for 30 s. The page must come within about 5 s.
    "a third of requests failing pages the demo 5 s later and clears 5 s after": Scenario(
        slo="router-availability",
        objective=0.99,
        windows="demo-v1",
        scrape_interval="1s",
        ok_requests="0+30x360 10820+20x29 11400+30x200",
        failed_requests="1+0x360 11+10x29 301+0x200",
        page_description=(
            "The error ratio is above 14.4x the budget over both 10s and 5s, or 6x the budget "
            "over both 30s and 5s (objective 99% over 30d)."
        ),
        firing_at={"6m4s": False, "6m5s": True, "6m34s": True, "6m35s": False},
    ),
}


def promtool_test_file(scenario: Scenario) -> dict[str, object]:
    page = {
        "exp_labels": {"severity": "page", "slo": scenario.slo},
        "exp_annotations": {
            "summary": f"SLO {scenario.slo} is burning its error budget too fast",
            "description": scenario.page_description,
        },
    }
    return {
        "rule_files": ["slo-rules.yaml"],
        "evaluation_interval": scenario.scrape_interval,
        "tests": [
            {
                "interval": scenario.scrape_interval,
                "input_series": [
                    {
                        "series": 'http_requests_total{job="router",status="2xx"}',
                        "values": scenario.ok_requests,
                    },
                    {
                        "series": 'http_requests_total{job="router",status="5xx"}',
                        "values": scenario.failed_requests,
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": "SloErrorBudgetBurn",
                        "exp_alerts": [page] if firing else [],
                    }
                    for eval_time, firing in scenario.firing_at.items()
                ],
            }
        ],
    }


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_the_page_alert_fires_and_clears_on_time(
    tmp_path: Path,
    promtool: Callable[..., subprocess.CompletedProcess[str]],
    scenario: Scenario,
) -> None:
    specs = parse_slo_specs(SPEC.format(name=scenario.slo, objective=scenario.objective))
    # Page windows only: the ticket pairs' days-long windows would need days of series.
    page_windows = [w for w in load_burn_rate_windows(scenario.windows) if w.severity == "page"]
    (tmp_path / "slo-rules.yaml").write_text(
        render_rules_yaml(generate_rules(specs, page_windows)), encoding="utf-8"
    )
    (tmp_path / "slo-test.yaml").write_text(
        yaml.safe_dump(promtool_test_file(scenario), sort_keys=False), encoding="utf-8"
    )
    result = promtool("test", "rules", "slo-test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "Unit Testing:  slo-test.yaml\n  SUCCESS\n\n"
