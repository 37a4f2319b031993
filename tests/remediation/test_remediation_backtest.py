"""`inferops remediate backtest`: a store filled with a known hour of history (scrapes, router
gauges, alert instances) replayed through a policy in dry run; the exact rows it prints."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from alerting import AlertState, AlertStore
from alerting._store import AlertInstance
from collectors import SampleStore, ScrapedSample
from inferops.cli import app

NODES = ("node-0", "node-1", "node-2")
STEP_S = 5
POLICY = """\
version: inferops/v1
policies:
  - name: drain-erroring-node
    match: {alertname: NodeHighErrorRate}
    steps: [drain]
"""
T0 = (int(time.time()) - 3600) // 60 * 60
"""The start of the stored hour (a minute boundary an hour ago)."""


def fleet_samples() -> list[ScrapedSample]:
    """Every node scraped every 5 s from T0 to T0+1500, except: node-0 down and node-2
    drained by a person from T0+600; node-1's scrapes missing (the monitoring broke) from
    T0+1200."""
    samples: list[ScrapedSample] = []
    for at_s in range(T0, T0 + 1500, STEP_S):
        for node in NODES:
            down = node == "node-0" and at_s >= T0 + 600
            drained = node == "node-2" and at_s >= T0 + 600
            if not (node == "node-1" and at_s >= T0 + 1200):
                samples.append(ScrapedSample(
                    "up", {"job": "nodes", "instance": f"{node}:80", "node": node},
                    0.0 if down else 1.0, float(at_s)))
            router = {"job": "router", "instance": "router:80", "node": node}
            samples += [
                ScrapedSample("inferops_router_node_healthy", router, 0.0 if down else 1.0,
                              float(at_s)),
                ScrapedSample("inferops_router_node_draining", router, 1.0 if drained else 0.0,
                              float(at_s)),
                ScrapedSample("inferops_router_in_flight", router, 0.0, float(at_s)),
            ]
    return samples


def stored_alert(fingerprint: str, node: str, fired_at_s: float,
                 resolved_at_s: float | None = None,
                 alertname: str = "NodeHighErrorRate") -> AlertInstance:
    return AlertInstance(
        rule_key="r", fingerprint=fingerprint,
        labels={"alertname": alertname, "node": node, "severity": "page"},
        annotations={"summary": f"{node} errors"},
        state=AlertState.RESOLVED if resolved_at_s else AlertState.FIRING,
        active_at_s=fired_at_s - 10, last_evaluated_at_s=resolved_at_s or fired_at_s,
        generator_url="", fired_at_s=fired_at_s, resolved_at_s=resolved_at_s,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    database_url = f"sqlite:///{tmp_path / 'inferops.db'}"
    database = sa.create_engine(database_url)
    SampleStore(database).append(fleet_samples())
    AlertStore(database).save([
        stored_alert("a1", "node-1", T0 + 60, T0 + 300),   # would drain
        stored_alert("a2", "node-1", T0 + 120, T0 + 200),  # within the cooldown of a1
        stored_alert("a3", "node-1", T0 + 900),            # node-0 down, node-2 drained
        stored_alert("a4", "node-1", T0 + 1300),           # node-1's scrapes stopped
        stored_alert("a5", "node-2", T0 + 400, alertname="GpuTemperatureHigh"),  # no rule
        stored_alert("a0", "node-1", T0 - 86400 * 8),      # before --since
    ])
    database.dispose()
    settings = tmp_path / "inferops.yaml"
    settings.write_text(
        f"store: {{url: '{database_url}'}}\n"
        "remediation: {cooldown: 5m, min_healthy_nodes: 1, max_unavailable: '1', "
        "stale_after: 15s}\n",
        encoding="utf-8",
    )
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    return settings


def run_backtest(config: Path, *options: str) -> Result:
    return CliRunner().invoke(
        app, ["remediate", "backtest", "--policy", str(config.parent / "policy.yaml"),
              "--config", str(config), *options],
        env={"INFEROPS_STORE_URL": None, "INFEROPS_CONFIG": None},
    )


EXPECTED = [
    (T0 + 60, "NodeHighErrorRate", "node-1", "drain", "dry_run", None,
     "alert NodeHighErrorRate fired for node-1 (policy drain-erroring-node): dry run: would "
     "drain node-1 (now serving, healthy); every guard passed"),
    (T0 + 120, "NodeHighErrorRate", "node-1", "drain", "refused", "cooldown",
     "alert NodeHighErrorRate fired for node-1 (policy drain-erroring-node): drain of node-1 "
     "already ran 60 s ago (decision 1, dry_run); the cooldown is 300 s"),
    (T0 + 900, "NodeHighErrorRate", "node-1", "drain", "refused", "disruption-budget",
     "alert NodeHighErrorRate fired for node-1 (policy drain-erroring-node): draining node-1 "
     "would leave 0 nodes serving and healthy (none); the disruption budget needs at least 1"),
    (T0 + 1300, "NodeHighErrorRate", "node-1", "drain", "refused", "stale-evidence",
     "alert NodeHighErrorRate fired for node-1 (policy drain-erroring-node): no scrape of "
     "node-1 in the last 15 s, but the fleet's health check says node-1 is serving and "
     "healthy: the monitoring, not the node, looks broken"),
]


def test_backtest_json_says_what_the_policy_would_have_done_and_which_guard_stopped_it(
    config: Path,
) -> None:
    run = run_backtest(config, "--since", "7d", "--json")

    assert run.exit_code == 0, run.output
    assert [tuple(row.values()) for row in json.loads(run.stdout)] == EXPECTED


def test_backtest_prints_a_summary_and_one_table_row_per_decision(config: Path) -> None:
    run = run_backtest(config, "--since", "2h")

    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert lines[0] == ("5 alert firings in the last 2h: 1 action would have run, 3 would have "
                        "been stopped by a guard")
    rows = [line for line in lines if "│ NodeHighErrorRate" in line]
    assert [[cell.strip() for cell in row.split("│")[1:7]] for row in rows] == [
        [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at_s)), alert, node, action,
         outcome, guard or ""]
        for at_s, alert, node, action, outcome, guard, _ in EXPECTED
    ]


def test_a_bad_since_exits_2_naming_the_option(config: Path) -> None:
    run = run_backtest(config, "--since", "a week")
    assert (run.exit_code, run.stderr) == (
        2, "error: --since: expected a duration such as 15s, 1m or 500ms, got 'a week'\n")


@pytest.mark.parametrize(
    ("limits", "guard"),
    [
        ({"max_actions_per_hour": 1}, "rate-limit"),
        ({"breaker_max_share": 0.5, "breaker_window_s": 3600.0}, "circuit-breaker"),
    ],
    ids=["the hourly limit", "the circuit breaker"],
)
def test_a_backtest_counts_its_own_would_be_actions_against_the_fleet_wide_guards(
    tmp_path: Path, limits: dict[str, float], guard: str
) -> None:
    from collectors import StoreSource
    from remediation import GuardLimits, HistoricAlert, backtest, load_remediation_policy

    database = sa.create_engine(f"sqlite:///{tmp_path / 'history.db'}")
    store = SampleStore(database)
    store.append([
        sample for sample in fleet_samples()
        if sample.timestamp_s < T0 + 600  # all three nodes up and serving throughout
    ])
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    alerts = [
        HistoricAlert("b1", {"alertname": "NodeHighErrorRate", "node": "node-1"}, T0 + 60),
        HistoricAlert("b2", {"alertname": "NodeHighErrorRate", "node": "node-2"}, T0 + 120),
    ]

    rows = backtest(
        load_remediation_policy(tmp_path / "policy.yaml"), alerts, StoreSource(store),
        since_s=T0, until_s=T0 + 500,
        limits=GuardLimits(max_unavailable="100%", **limits),  # type: ignore[arg-type]
        check_freshness=False,
    )

    assert [(row.node, row.outcome, row.guard) for row in rows] == [
        ("node-1", "dry_run", None),
        ("node-2", "refused", guard),
    ]
