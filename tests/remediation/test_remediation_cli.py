"""`inferops remediate drain|undrain|cycle|history` against a stand-in router over real HTTP:
the same guards and audit trail as the automation, with exit codes a script can act on
(0 done, 1 refused or failed, 2 bad input)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from remediation_doubles import ADMIN_TOKEN, StandInRouter, free_port
from typer.testing import CliRunner, Result

from inferops.cli import app
from remediation import DecisionLog, Outcome


@pytest.fixture
def settings_file(tmp_path: Path, router: StandInRouter) -> Path:
    path = tmp_path / "inferops.yaml"
    path.write_text(
        f"store:\n"
        f"  url: sqlite:///{tmp_path / 'state' / 'inferops.db'}\n"
        f"remediation:\n"
        f"  fleet_url: {router.url}\n"
        f"  cooldown: 5m\n"
        f"  min_healthy_nodes: 1\n"
        f"  verify_timeout: 2s\n",
        encoding="utf-8",
    )
    return path


def remediate(
    *args: str, config: Path, token: str | None = ADMIN_TOKEN
) -> Result:
    """Run `inferops remediate ARGS --config CONFIG` as user `oncall`."""
    env = {
        "INFEROPS_ADMIN_TOKEN": token, "INFEROPS_STORE_URL": None, "INFEROPS_CONFIG": None,
        "LOGNAME": "oncall", "USER": "oncall",
    }
    return CliRunner().invoke(app, ["remediate", *args, "--config", str(config)], env=env)


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[DecisionLog]:
    """The decision log the CLI writes to (the settings' store), read by the test."""
    (tmp_path / "state").mkdir(exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'inferops.db'}")
    yield DecisionLog(engine)
    engine.dispose()


@pytest.mark.parametrize(
    ("action", "before", "after", "result"),
    [
        ("drain", "serving", "drained", "node-1 is now drained"),
        ("undrain", "drained", "serving", "node-1 is now serving and healthy"),
        ("cycle", "down", "serving", "node-1 was restarted and is now serving and healthy"),
    ],
    ids=["drain", "undrain", "cycle"],
)
def test_an_action_that_succeeds_exits_0_and_says_what_happened(
    router: StandInRouter, settings_file: Path, audit: DecisionLog,
    action: str, before: str, after: str, result: str,
) -> None:
    router.nodes["node-1"]["status"] = before

    run = remediate(action, "node-1", config=settings_file)

    assert (run.exit_code, run.stdout, run.stderr) == (
        0, f"{action} node-1: succeeded: manual {action}: {result}\n", ""
    )
    assert router.nodes["node-1"]["status"] == after
    [decision] = audit.recent()
    assert (decision.action, decision.node, decision.outcome, decision.actor) == (
        action, "node-1", Outcome.SUCCEEDED, "cli:oncall"
    )


def test_the_reason_given_is_stored_in_the_audit_trail(
    settings_file: Path, audit: DecisionLog
) -> None:
    run = remediate("drain", "node-2", "--reason", "INC-4711 bad DIMM", config=settings_file)

    assert run.exit_code == 0
    assert audit.recent()[0].reason == "INC-4711 bad DIMM: node-2 is now drained"


def test_a_refusal_exits_1_and_names_the_guard(
    router: StandInRouter, settings_file: Path
) -> None:
    router.nodes["node-0"].update(status="down", healthy=False)
    router.nodes["node-2"]["status"] = "drained"

    run = remediate("drain", "node-1", config=settings_file)

    assert (run.exit_code, run.stdout) == (
        1,
        "drain node-1: refused (guard: disruption-budget): manual drain: draining node-1 would "
        "leave 0 nodes serving and healthy (none); the disruption budget needs at least 1\n",
    )
    assert router.nodes["node-1"]["status"] == "serving"


def test_a_repeat_within_the_cooldown_exits_1_naming_the_cooldown(
    router: StandInRouter, settings_file: Path
) -> None:
    assert remediate("drain", "node-1", config=settings_file).exit_code == 0
    router.nodes["node-1"]["status"] = "serving"

    run = remediate("drain", "node-1", config=settings_file)

    assert run.exit_code == 1
    assert run.stdout.startswith("drain node-1: refused (guard: cooldown): manual drain: drain "
                                 "of node-1 already ran ")
    assert run.stdout.endswith(" s ago (decision 1, succeeded); the cooldown is 300 s\n")


def test_nothing_to_do_exits_0(settings_file: Path) -> None:
    run = remediate("undrain", "node-0", config=settings_file)
    assert (run.exit_code, run.stdout) == (
        0, "undrain node-0: skipped: manual undrain: node-0 is already serving; nothing to do\n"
    )


def test_a_dry_run_exits_0_and_leaves_the_node_alone(
    router: StandInRouter, settings_file: Path
) -> None:
    run = remediate("cycle", "node-2", "--dry-run", config=settings_file)

    assert (run.exit_code, run.stdout) == (
        0, "cycle node-2: dry_run: manual cycle: dry run: would cycle node-2 (now serving, "
           "healthy); every guard passed\n",
    )
    assert router.seen == ["GET /admin/nodes"]


def test_an_unknown_node_exits_2_with_the_names_the_fleet_knows(
    settings_file: Path, audit: DecisionLog
) -> None:
    run = remediate("drain", "node-9", config=settings_file)

    assert (run.exit_code, run.stdout, run.stderr) == (
        2, "", "error: unknown node 'node-9'; known: node-0, node-1, node-2\n"
    )
    assert [(d.node, d.outcome, d.guard) for d in audit.recent()] == [
        ("node-9", Outcome.REFUSED, "unknown-node")
    ]


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
def test_without_the_admin_token_it_exits_2_and_says_which_variable(
    router: StandInRouter, settings_file: Path, token: str | None
) -> None:
    run = remediate("drain", "node-1", config=settings_file, token=token)

    assert (run.exit_code, run.stdout, run.stderr) == (
        2, "", "error: the fleet admin token is not set: export INFEROPS_ADMIN_TOKEN\n"
    )
    assert router.seen == []


def test_a_wrong_admin_token_exits_1_with_the_routers_refusal(
    router: StandInRouter, settings_file: Path
) -> None:
    run = remediate("drain", "node-1", config=settings_file, token="wrong")

    assert (run.exit_code, run.stdout) == (
        1,
        "drain node-1: failed: manual drain: could not read the fleet's nodes: the fleet router "
        f"at {router.url} refused the admin token (GET /admin/nodes answered 401)\n",
    )


def test_a_router_that_is_down_exits_1_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "inferops.yaml"
    config.write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 'state' / 'inferops.db'}'}}\n"
        f"remediation: {{fleet_url: '{url}'}}\n",
        encoding="utf-8",
    )

    run = remediate("drain", "node-1", config=config)

    assert run.exit_code == 1
    assert run.stdout.startswith(
        f"drain node-1: failed: manual drain: could not read the fleet's nodes: cannot reach "
        f"the fleet router at {url} (GET /admin/nodes): "
    )


def test_json_output_is_the_stored_decision(settings_file: Path, audit: DecisionLog) -> None:
    run = remediate("drain", "node-1", "--json", config=settings_file)

    assert run.exit_code == 0
    [decision] = audit.recent()
    assert json.loads(run.stdout) == {
        "id": 1, "action": "drain", "node": "node-1", "outcome": "succeeded",
        "reason": "manual drain: node-1 is now drained", "guard": None, "actor": "cli:oncall",
        "alertname": None, "alert_fingerprint": None, "started_at": decision.started_at_s,
        "finished_at": decision.finished_at_s,
    }


def test_history_json_lists_every_decision_newest_first_exactly(
    settings_file: Path, audit: DecisionLog
) -> None:
    audit.record(action="drain", node="node-1", outcome=Outcome.SUCCEEDED,
               reason="alert NodeDown fired for node-1 (policy p): node-1 is now drained",
               actor="policy:p", started_at_s=1764000003.25, alertname="NodeDown",
               alert_fingerprint="8e9b249c8f3b53af", finished_at_s=1764000003.5)
    audit.record(action="drain", node="node-2", outcome=Outcome.REFUSED,
               reason="manual drain: draining node-2 would leave 0 nodes serving and healthy "
                      "(none); the disruption budget needs at least 1",
               actor="cli:oncall", started_at_s=1764000010.0, guard="disruption-budget",
               finished_at_s=1764000010.0)

    run = remediate("history", "--json", config=settings_file)

    assert (run.exit_code, run.stdout) == (0, """\
[
  {
    "id": 2,
    "action": "drain",
    "node": "node-2",
    "outcome": "refused",
    "reason": "manual drain: draining node-2 would leave 0 nodes serving and healthy (none); \
the disruption budget needs at least 1",
    "guard": "disruption-budget",
    "actor": "cli:oncall",
    "alertname": null,
    "alert_fingerprint": null,
    "started_at": 1764000010.0,
    "finished_at": 1764000010.0
  },
  {
    "id": 1,
    "action": "drain",
    "node": "node-1",
    "outcome": "succeeded",
    "reason": "alert NodeDown fired for node-1 (policy p): node-1 is now drained",
    "guard": null,
    "actor": "policy:p",
    "alertname": "NodeDown",
    "alert_fingerprint": "8e9b249c8f3b53af",
    "started_at": 1764000003.25,
    "finished_at": 1764000003.5
  }
]
""")


@pytest.mark.parametrize(
    ("options", "ids"),
    [(["--node", "node-1"], [3, 1]), (["--limit", "1"], [3]), ([], [3, 2, 1])],
    ids=["one node", "the latest one", "all"],
)
def test_history_filters_by_node_and_limit(
    settings_file: Path, options: list[str], ids: list[int]
) -> None:
    for node in ("node-1", "node-2", "node-1"):
        remediate("undrain", node, config=settings_file)

    run = remediate("history", "--json", *options, config=settings_file)

    assert run.exit_code == 0
    assert [entry["id"] for entry in json.loads(run.stdout)] == ids


def test_history_needs_no_admin_token_and_says_when_it_is_empty(settings_file: Path) -> None:
    run = remediate("history", config=settings_file, token=None)
    assert (run.exit_code, run.stdout) == (0, "No remediation decisions recorded yet.\n")


def test_history_as_a_table_shows_guard_actor_and_reason(settings_file: Path) -> None:
    remediate("drain", "node-9", config=settings_file)

    run = remediate("history", config=settings_file, token=None)

    assert run.exit_code == 0
    for text in ("node-9", "refused", "unknown-node", "cli:oncall", "unknown node 'node-9'"):
        assert text in run.stdout
