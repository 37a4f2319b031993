"""Short game days against one real fleet: the faulty node is found and drained in time,
nothing healthy is touched, and a node whose monitoring (not serving) breaks is left alone.

One fleet and one game day serve every case (the fleet is reset between scenarios), so the
module costs one fleet start plus about 35 s per scenario.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from inferops._gameday import GameDay, GameDayOptions
from inferops._gameday_scenarios import SCENARIOS

pytestmark = pytest.mark.integration

SHORT_SCENARIOS = ("error-burst", "gpu-xid", "scrape-down")


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
    ("scenario", "alert", "drained"),
    [
        ("error-burst", "NodeHighErrorRate", ["node-1"]),
        ("gpu-xid", "GpuXidError", ["node-1"]),
    ],
    ids=["an error burst is detected and its node drained in time",
         "a GPU XID is detected and its node drained in time"],
)
def test_a_faulty_node_is_detected_and_drained_within_the_targets(
    game_day: tuple[int, dict[str, dict[str, Any]]], scenario: str, alert: str,
    drained: list[str],
) -> None:
    report = game_day[1][scenario]

    assert report["detection"]["alert"] == alert
    assert report["detection"]["node"] == "node-1"
    assert [a["node"] for a in report["actions"]
            if a["action"] == "drain" and a["outcome"] == "succeeded"] == drained
    assert report["unsafe_actions"] == []
    assert report["requests"]["failed_after_mitigation"] == 0
    assert [c for c in report["checks"] if not c["ok"]] == []
    assert report["passed"] is True


def test_a_node_whose_scrape_breaks_while_it_serves_is_not_remediated(
    game_day: tuple[int, dict[str, dict[str, Any]]],
) -> None:
    report = game_day[1]["scrape-down"]

    assert [a for a in report["actions"] if a["outcome"] == "succeeded"] == []
    assert report["unsafe_actions"] == []
    assert report["requests"]["failed"] == 0
    assert report["passed"] is True


def test_the_game_day_exits_0_when_every_scenario_passed(
    game_day: tuple[int, dict[str, dict[str, Any]]],
) -> None:
    code, reports = game_day

    assert code == (0 if all(r["passed"] for r in reports.values()) else 1)
    assert code == 0
