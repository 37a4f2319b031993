"""Short game days against one real fleet: the faulty node is found and drained in time,
nothing healthy is touched, and a node whose monitoring (not serving) breaks is left alone.

One fleet and one game day serve every case (the fleet is reset between scenarios), so the
module costs one fleet start plus about 40 s per scenario (two here: the GPU XID, crash
and latency faults are the demo's tests already).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from inferops._gameday import GameDay, GameDayOptions
from inferops._gameday_scenarios import SCENARIOS

pytestmark = pytest.mark.integration

SHORT_SCENARIOS = ("error-burst", "scrape-down")


@pytest.fixture(scope="module")
def game_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("gameday")
    lines: list[str] = []
    options = GameDayOptions(
        scenarios=tuple(SCENARIOS[name] for name in SHORT_SCENARIOS), short=True,
        report_dir=work / "report", work_dir=work / ".inferops",
    )
    saved = os.environ.pop("INFEROPS_ADMIN_TOKEN", None)
    try:
        code = GameDay(options, out=lines.append).run()
    finally:
        if saved is not None:
            os.environ["INFEROPS_ADMIN_TOKEN"] = saved
    reports = {
        name: json.loads((work / "report" / f"{name}.json").read_text())
        for name in SHORT_SCENARIOS
    }
    table = (work / "report" / "gameday.md").read_text()
    assert table.count("\n") == 2 + len(SHORT_SCENARIOS), "\n".join(lines)
    return code, reports


@pytest.mark.parametrize(
    ("scenario", "alerts", "taken"),
    [
        # The node's own error rate, or the router ejecting it: whichever fires first.
        ("error-burst", {"NodeHighErrorRate", "NodeUnhealthy"}, [("drain", "node-1")]),
        ("scrape-down", None, []),
    ],
    ids=["an error burst is detected and its node drained in time",
         "a node whose scrape breaks while it serves is not remediated"],
)
def test_each_short_scenario_does_what_its_expectation_says(
    game_day: tuple[int, dict[str, dict[str, Any]]], scenario: str, alerts: set[str] | None,
    taken: list[tuple[str, str]],
) -> None:
    report = game_day[1][scenario]

    detected = report["detection"]
    if alerts is None:
        assert detected is None
    else:
        assert detected is not None and detected["node"] == "node-1"
        assert detected["alert"] in alerts
    assert [(a["action"], a["node"]) for a in report["actions"]
            if a["outcome"] == "succeeded"] == taken
    assert report["unsafe_actions"] == [], report["actions"]
    assert report["requests"]["failed_after_mitigation"] == 0
    # The detect/mitigate targets are speed: `inferops gameday --scenario all` reports them.
    assert [c for c in report["checks"]
            if not c["ok"] and not c["check"].endswith("within target")] == [], report["actions"]


def test_the_game_day_exit_code_says_whether_every_scenario_passed(
    game_day: tuple[int, dict[str, dict[str, Any]]],
) -> None:
    code, reports = game_day

    assert code == (0 if all(r["passed"] for r in reports.values()) else 1)
