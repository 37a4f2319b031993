"""The game-day verdict without a fleet: unsafe actions, lost notifications, the scenario
report's numbers and checks, the markdown table, and the scenario catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alerting import Alert, AlertState
from inferops._exceptions import DemoError
from inferops._gameday import gameday_settings
from inferops._gameday_process import settings_yaml
from inferops._gameday_report import (
    markdown_table,
    missing_notifications,
    scenario_report,
    unsafe_actions,
)
from inferops._gameday_scenarios import NOT_IMPLEMENTED, SCENARIOS, select_scenarios
from inferops._load import RequestRecord
from inferops._settings import parse_settings
from inferops.cli import app
from remediation import Decision, Outcome

T0 = 1000.0


def decision(id_: int, action: str, node: str, at: float, outcome: Outcome = Outcome.SUCCEEDED,
             guard: str | None = None) -> Decision:
    return Decision(id=id_, action=action, node=node, outcome=outcome, reason="r", guard=guard,
                    actor="policy:drain-unhealthy-node", alertname="NodeDown",
                    alert_fingerprint=None, started_at_s=at, finished_at_s=at + 0.5)


def alert(node: str, fired_at: float | None, name: str = "NodeDown",
          resolved_at: float | None = None) -> Alert:
    return Alert(
        fingerprint=f"fp-{node}-{name}", labels={"alertname": name, "node": node},
        annotations={},
        state=AlertState.RESOLVED if resolved_at is not None else AlertState.FIRING,
        active_at_s=(fired_at or T0) - 2.0, fired_at_s=fired_at, resolved_at_s=resolved_at,
    )


def record(started: float, finished: float, ok: bool = True) -> RequestRecord:
    return RequestRecord(started, finished, ok, 200 if ok else 502, False,
                         None if ok else "boom")


@pytest.mark.parametrize(
    ("decisions", "faulty", "blocked", "expected"),
    [
        ([decision(1, "drain", "node-1", T0)], ["node-1"], [], []),
        (
            [decision(1, "drain", "node-0", T0)], ["node-1"], [],
            [{"decision_id": 1, "action": "drain", "node": "node-0",
              "why": "took out node-0, a healthy node"}],
        ),
        (
            [decision(1, "drain", "node-1", T0)], [], ["node-1"],
            [{"decision_id": 1, "action": "drain", "node": "node-1",
              "why": "acted on node-1, whose scrape was broken but which was healthy"}],
        ),
        (
            [decision(1, "drain", "node-1", T0), decision(2, "drain", "node-2", T0 + 1)],
            ["node-1", "node-2"], [],
            [{"decision_id": 2, "action": "drain", "node": "node-2",
              "why": "2 nodes taken out (node-1, node-2), over the disruption budget of 1"}],
        ),
        (
            [decision(1, "drain", "node-1", T0), decision(2, "undrain", "node-1", T0 + 1),
             decision(3, "drain", "node-2", T0 + 2)],
            ["node-1", "node-2"], [], [],
        ),
        (
            [decision(1, "drain", "node-1", T0),
             decision(2, "drain", "node-2", T0 + 1, Outcome.REFUSED, "disruption_budget")],
            ["node-1", "node-2"], [], [],
        ),
        ([decision(1, "cycle", "node-0", T0, Outcome.DRY_RUN)], ["node-1"], [], []),
        (
            [decision(1, "drain", "node-1", T0 - 0.5)], ["node-1"], [],
            [{"decision_id": 1, "action": "drain", "node": "node-1",
              "why": "took out node-1 before any fault, while it was healthy"}],
        ),
    ],
    ids=[
        "draining the faulty node is safe",
        "draining a healthy node is unsafe",
        "acting on a node whose only problem is its scrape is unsafe",
        "a second drain over the one-node budget is unsafe",
        "a drain after the first node came back is within budget",
        "a drain the disruption budget refused is not an action",
        "a dry run takes nothing out",
        "draining the node-to-be-faulted before its fault is unsafe",
    ],
)
def test_unsafe_actions_are_the_ones_the_docs_define(
    decisions: list[Decision], faulty: list[str], blocked: list[str],
    expected: list[dict[str, Any]],
) -> None:
    assert unsafe_actions(decisions, faulty_nodes=faulty, max_nodes_out=1, injected_at_s=T0,
                          scrape_blocked=blocked) == expected


def test_a_notification_the_receiver_never_got_is_reported_missing() -> None:
    alerts = [alert("node-1", T0 + 5, "NodeHighErrorRate", resolved_at=T0 + 30),
              alert("node-2", T0 + 6), alert("node-0", T0 + 59)]
    received = [{"alerts": [{"fingerprint": "fp-node-1-NodeHighErrorRate", "status": "firing"}]}]

    missing = missing_notifications(alerts, received, settled_before_s=T0 + 50)

    assert missing == ["NodeDown node-2 firing", "NodeHighErrorRate node-1 resolved"]


def test_a_crash_report_has_the_numbers_and_checks_of_the_issue() -> None:
    scenario = SCENARIOS["node-crash"]
    records = [
        record(T0 - 5, T0 - 4),
        record(T0 - 0.5, T0 + 1, ok=False),  # in flight on node-1 when it crashed
        record(T0 + 3, T0 + 3.2, ok=False),  # before mitigation
        record(T0 + 20, T0 + 21),
        record(T0 + 25, T0 + 26),
    ]

    report = scenario_report(
        scenario, injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-1", T0 + 4.25), alert("node-0", T0 - 30)],
        decisions=[decision(1, "drain", "node-1", T0 + 6)],
        records=records, availability_objective=0.99, max_nodes_out=1,
    )

    assert {k: report[k] for k in ("detection", "time_to_detect_s", "time_to_mitigate_s",
                                   "requests", "error_budget_consumed", "unsafe_actions",
                                   "passed")} == {
        "detection": {"alert": "NodeDown", "node": "node-1", "fired_at": T0 + 4.25},
        "time_to_detect_s": 4.25,
        "time_to_mitigate_s": 6.5,
        "requests": {"total": 5, "failed": 2, "failed_in_flight_at_fault": 1,
                     "failed_after_mitigation": 0},
        "error_budget_consumed": 40.0,
        "unsafe_actions": [],
        "passed": True,
    }
    assert report["actions"] == [{"id": 1, "action": "drain", "node": "node-1",
                                  "outcome": "succeeded", "guard": None, "alert": "NodeDown",
                                  "at_s": 6.5}]
    assert [(c["check"], c["ok"]) for c in report["checks"]] == [
        ("detected", True), ("detect within target", True), ("mitigated", True),
        ("mitigate within target", True), ("no failures after mitigation", True),
        ("drains per node", True), ("no unsafe actions", True),
    ]


def test_a_late_mitigation_and_a_later_failure_fail_the_scenario() -> None:
    report = scenario_report(
        SCENARIOS["error-burst"], injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-1", T0 + 12, "NodeHighErrorRate")],
        decisions=[decision(1, "drain", "node-1", T0 + 16)],
        records=[record(T0 + 30, T0 + 31, ok=False)],
        availability_objective=0.99, max_nodes_out=1,
    )

    failing = {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert failing == {
        "detect within target": "12.0 s (target <= 10 s)",
        "mitigate within target": "16.5 s (target <= 15 s)",
        "no failures after mitigation": "1 failed request(s) started after mitigation",
    }
    assert report["passed"] is False


def test_an_undetected_fault_fails_every_detection_and_mitigation_check() -> None:
    report = scenario_report(
        SCENARIOS["node-hang"], injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-0", T0 + 3, "NodeHighLatency")], decisions=[],
        records=[record(T0 - 1, T0 + 9, ok=False)], availability_objective=0.99,
        max_nodes_out=1,
    )

    assert {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]} == {
        "detected": "no NodeDown|NodeUnhealthy|NodeHighErrorRate|NodeHighLatency|GpuXidError"
                    "|GpuThermalSlowdown|KvCacheExhausted alert named node-1",
        "detect within target": "not detected (target <= 10 s)",
        "mitigated": "no faulty node was drained",
        "mitigate within target": "not mitigated (target <= 15 s)",
        "no failures after mitigation": "not mitigated",
    }
    assert report["requests"] == {"total": 1, "failed": 1, "failed_in_flight_at_fault": 1,
                                  "failed_after_mitigation": 0}


def test_remediating_a_node_whose_scrape_is_down_fails_the_scrape_drill() -> None:
    report = scenario_report(
        SCENARIOS["scrape-down"], injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-1", T0 + 3)], decisions=[decision(1, "drain", "node-1", T0 + 4)],
        records=[record(T0, T0 + 1)], availability_objective=0.99, max_nodes_out=1,
    )

    assert [(c["check"], c["ok"], c["detail"]) for c in report["checks"]] == [
        ("no remediation", False, "drain node-1 (NodeDown)"),
        ("drains per node", True, "at most 1 drain(s) of one node (limit 1)"),
        ("no unsafe actions", False,
         "acted on node-1, whose scrape was broken but which was healthy"),
    ]


def test_the_markdown_table_has_one_row_per_scenario() -> None:
    report = scenario_report(
        SCENARIOS["two-nodes"], injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-1", T0 + 4, "NodeHighErrorRate"),
                alert("node-2", T0 + 4, "NodeHighErrorRate")],
        decisions=[decision(1, "drain", "node-1", T0 + 5),
                   decision(2, "drain", "node-2", T0 + 5, Outcome.REFUSED, "disruption-budget")],
        records=[record(T0, T0 + 1), record(T0 + 1, T0 + 2, ok=False)],
        availability_objective=0.99, max_nodes_out=1,
    )

    assert markdown_table([report]).splitlines() == [
        "| scenario | detect s | mitigate s | failed (in flight at fault / after mitigation)"
        " | budget used | actions | unsafe | result |",
        "|---|---|---|---|---|---|---|---|",
        "| two-nodes | 4.0 | 5.5 | 1 of 2 (0 / 0) | 50.0x | drain node-1 succeeded, "
        "drain node-2 refused [disruption-budget] | 0 | PASS |",
    ]


def test_scenarios_are_chosen_by_name_or_all() -> None:
    assert [s.name for s in select_scenarios("all")] == [
        "node-crash", "node-hang", "error-burst", "slow-kernel", "gpu-xid", "thermal-throttle",
        "kv-cache-leak", "two-nodes", "flapping-node", "scrape-down", "webhook-down",
        "control-plane-killed",
    ]
    assert [s.name for s in select_scenarios("gpu-xid")] == ["gpu-xid"]
    with pytest.raises(DemoError, match="unknown scenario 'meltdown'; choose all or one of "
                                        "node-crash, node-hang,"):
        select_scenarios("meltdown")
    assert NOT_IMPLEMENTED == {}


def test_the_cli_refuses_an_unknown_scenario_with_exit_code_2() -> None:
    result = CliRunner().invoke(app, ["gameday", "--scenario", "meltdown"])

    assert result.exit_code == 2
    assert "error: --scenario: unknown scenario 'meltdown'" in result.output


def test_a_two_node_failure_without_a_budget_refusal_fails() -> None:
    report = scenario_report(
        SCENARIOS["two-nodes"], injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-1", T0 + 4, "NodeHighErrorRate")],
        decisions=[decision(1, "drain", "node-1", T0 + 5), decision(2, "drain", "node-2", T0 + 6)],
        records=[record(T0 + 20, T0 + 21)], availability_objective=0.99, max_nodes_out=1,
    )

    assert {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]} == {
        "no unsafe actions": "2 nodes taken out (node-1, node-2), over the disruption budget of 1",
        "refused by disruption-budget": "no action was refused by the disruption-budget guard",
    }


KILLED = {"node": "node-1", "decision_id": 1, "killed_at": T0 + 6, "restarted_at": T0 + 7}


@pytest.mark.parametrize(
    ("drained_at_kill", "decisions", "drained_at_end", "failing"),
    [
        (True, [decision(1, "drain", "node-1", T0 + 5, Outcome.FAILED)], ["node-1"], {}),
        (False, [decision(1, "drain", "node-1", T0 + 5, Outcome.FAILED),
                 decision(2, "drain", "node-1", T0 + 20)], ["node-1"], {}),
        (False, [decision(1, "drain", "node-1", T0 + 5, Outcome.FAILED)], [],
         {"action not lost": "node-1 is NOT drained at the end",
          "mitigated": "no faulty node was drained",
          "no failures after mitigation": "not mitigated"}),
        (True, [decision(1, "drain", "node-1", T0 + 5, Outcome.FAILED),
                decision(2, "drain", "node-1", T0 + 20)], ["node-1"],
         {"action not repeated": "node-1 was already drained at the kill; after the restart: "
                                 "drain succeeded"}),
    ],
    ids=["the router had drained it and nothing was redone",
         "the drain had not reached the router and the restart did it once",
         "the drain was lost",
         "the drain was repeated on a drained node"],
)
def test_a_control_plane_killed_mid_drain_neither_loses_nor_repeats_it(
    drained_at_kill: bool, decisions: list[Decision], drained_at_end: list[str],
    failing: dict[str, str],
) -> None:
    report = scenario_report(
        SCENARIOS["control-plane-killed"], injected_at_s=T0, judged_at_s=T0 + 40,
        alerts=[alert("node-1", T0 + 4, "NodeHighErrorRate")], decisions=decisions,
        records=[record(T0 + 30, T0 + 31)], availability_objective=0.99, max_nodes_out=1,
        kill={**KILLED, "node_drained_at_kill": drained_at_kill},
        drained_at_end=drained_at_end,
    )

    assert {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]} == failing
    assert [c["check"] for c in report["checks"]][-3:] == [
        "killed mid-action", "action not lost", "action not repeated"]


def test_the_kill_drill_settings_file_reads_back_as_the_game_day_settings(
    tmp_path: Path,
) -> None:
    settings = gameday_settings(store_url=f"sqlite:///{tmp_path / 'g.db'}", router_port=18000,
                                scrape_ports=[18010, 18011, 18012], webhook_url=None)

    back = parse_settings(settings_yaml(settings), base_dir=tmp_path / "elsewhere")

    assert [back.resolve(f) for f in back.slo.files] == [
        settings.resolve(f) for f in settings.slo.files]
    assert back.resolve(back.alerting.rule_files[0]) == settings.resolve("node-alerts.yaml")
    assert back.resolve(str(back.remediation.policy_file)) == settings.resolve(
        "remediation-policy.yaml")
    assert back.scrape_configs[1].static_configs[1].targets == ["127.0.0.1:18011"]
    assert (back.remediation.max_unavailable, back.remediation.breaker_max_share) == ("1", 0.5)
    assert back.model_dump(exclude={"base_dir", "slo", "alerting", "remediation"}) == (
        settings.model_dump(exclude={"base_dir", "slo", "alerting", "remediation"}))
