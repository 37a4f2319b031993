"""`inferops remediate ...` over the control-plane API, served for real on 127.0.0.1 with a
real engine whose driver talks to a stand-in router: the same guards and audit trail as the
automation, with exit codes a script can act on (0 done, 1 refused or failed, 2 bad usage,
unknown node or decision, 3 control plane unreachable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from remediation_doubles import (
    ADMIN_TOKEN,
    StandInRouter,
    alert,
    free_port,
    serve_stand_in_router,
    webhook,
)
from served_app import serve
from typer.testing import CliRunner, Result

from inferops._api import create_control_plane_api
from inferops.cli import app
from remediation import (
    DecisionLog,
    IncidentLog,
    Outcome,
    ReferenceFleetDriver,
    RemediationEngine,
    create_remediation_router,
    parse_remediation_policy,
)

API_TOKEN = "cli-test-api-token"
POLICY = parse_remediation_policy("""
version: inferops/v1
policies:
  - name: drain-with-approval
    match: {alertname: NodeHighErrorRate}
    mode: approval
    steps: [drain]
""")


@dataclass
class ControlPlaneApi:
    url: str
    engine: RemediationEngine
    audit: DecisionLog


@pytest.fixture(scope="module")
def served_router() -> Iterator[StandInRouter]:
    yield from serve_stand_in_router()


@pytest.fixture
def router(served_router: StandInRouter) -> StandInRouter:
    served_router.reset()
    served_router.seen.clear()
    served_router.token = ADMIN_TOKEN
    return served_router


class SwappableApp:
    """One ASGI server per module whose app each test replaces (starting a server per test
    was most of this module's runtime)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served_api() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve(swappable) as url:
        yield swappable, url


def control_plane_on(served: tuple[SwappableApp, str], fleet_url: str, log: DecisionLog
                     ) -> Iterator[ControlPlaneApi]:
    """The control plane's API (a real engine over `fleet_url`) behind the module's server."""
    swappable, url = served
    driver = ReferenceFleetDriver(fleet_url, admin_token=ADMIN_TOKEN)
    engine = RemediationEngine(driver, log, POLICY, cooldown_s=300.0, verify_timeout_s=2.0)
    swappable.app = create_control_plane_api(
        token=API_TOKEN,
        routers=[create_remediation_router(engine, log, IncidentLog(log.database))],
    )
    yield ControlPlaneApi(url, engine, log)
    engine.close()
    driver.close()


@pytest.fixture
def plane(router: StandInRouter, log: DecisionLog, served_api: tuple[SwappableApp, str]
          ) -> Iterator[ControlPlaneApi]:
    """The control plane's API on 127.0.0.1, acting on the stand-in router's fleet."""
    yield from control_plane_on(served_api, router.url, log)


def remediate(*args: str, plane: ControlPlaneApi | None, token: str | None = API_TOKEN,
              command: str = "remediate", **env: str | None) -> Result:
    """Run `inferops remediate ARGS` as user `oncall` against `plane`'s API."""
    environment: dict[str, str | None] = {
        "INFEROPS_API_TOKEN": token, "INFEROPS_API_URL": plane.url if plane else None,
        "INFEROPS_CONFIG": None, "LOGNAME": "oncall", "USER": "oncall", **env,
    }
    return CliRunner().invoke(app, [command, *args], env=environment)


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
    router: StandInRouter, plane: ControlPlaneApi, action: str, before: str, after: str,
    result: str,
) -> None:
    router.nodes["node-1"]["status"] = before

    run = remediate(action, "node-1", plane=plane)

    assert (run.exit_code, run.stdout, run.stderr) == (
        0, f"{action} node-1: succeeded: manual {action}: {result}\n", ""
    )
    assert router.nodes["node-1"]["status"] == after
    [decision] = plane.audit.recent()
    assert (decision.action, decision.node, decision.outcome, decision.actor) == (
        action, "node-1", Outcome.SUCCEEDED, "cli:oncall"
    )


def test_the_reason_given_is_stored_in_the_audit_trail(plane: ControlPlaneApi) -> None:
    run = remediate("drain", "node-2", "--reason", "INC-4711 bad DIMM", plane=plane)

    assert run.exit_code == 0
    assert plane.audit.recent()[0].reason == "INC-4711 bad DIMM: node-2 is now drained"


def test_a_refusal_exits_1_and_names_the_guard(
    router: StandInRouter, plane: ControlPlaneApi
) -> None:
    router.nodes["node-0"].update(status="down", healthy=False)
    router.nodes["node-2"]["status"] = "drained"

    run = remediate("drain", "node-1", plane=plane)

    assert (run.exit_code, run.stdout) == (
        1,
        "drain node-1: refused (guard: disruption-budget): manual drain: draining node-1 would "
        "leave 0 nodes serving and healthy (none); the disruption budget needs at least 1\n",
    )
    assert router.nodes["node-1"]["status"] == "serving"


def test_a_repeat_within_the_cooldown_exits_1_naming_the_cooldown(
    router: StandInRouter, plane: ControlPlaneApi
) -> None:
    assert remediate("drain", "node-1", plane=plane).exit_code == 0
    router.nodes["node-1"]["status"] = "serving"

    run = remediate("drain", "node-1", plane=plane)

    assert run.exit_code == 1
    assert run.stdout.startswith("drain node-1: refused (guard: cooldown): manual drain: drain "
                                 "of node-1 already ran ")
    assert run.stdout.endswith(" s ago (decision 1, succeeded); the cooldown is 300 s\n")


def test_nothing_to_do_exits_0(plane: ControlPlaneApi) -> None:
    run = remediate("undrain", "node-0", plane=plane)
    assert (run.exit_code, run.stdout) == (
        0, "undrain node-0: skipped: manual undrain: node-0 is already serving; nothing to do\n"
    )


def test_a_dry_run_exits_0_and_leaves_the_node_alone(
    router: StandInRouter, plane: ControlPlaneApi
) -> None:
    run = remediate("cycle", "node-2", "--dry-run", plane=plane)

    assert (run.exit_code, run.stdout) == (
        0, "cycle node-2: dry_run: manual cycle: dry run: would cycle node-2 (now serving, "
           "healthy); every guard passed\n",
    )
    assert router.seen == ["GET /admin/nodes"]


def test_reroute_sends_the_weight_as_a_parameter_in_a_dry_run(plane: ControlPlaneApi) -> None:
    run = remediate("reroute", "node-2", "--weight", "0.25", "--dry-run", "--json", plane=plane)

    assert run.exit_code == 0
    decision = json.loads(run.stdout)
    assert (decision["action"], decision["params"], decision["outcome"]) == (
        "reroute", {"weight": "0.25"}, "dry_run")


def test_an_unknown_node_exits_2_with_the_names_the_fleet_knows(plane: ControlPlaneApi) -> None:
    run = remediate("drain", "node-9", plane=plane)

    assert (run.exit_code, run.stdout, run.stderr) == (
        2, "", "error: unknown node 'node-9'; known: node-0, node-1, node-2\n"
    )
    assert [(d.node, d.outcome, d.guard) for d in plane.audit.recent()] == [
        ("node-9", Outcome.REFUSED, "unknown-node")
    ]


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
def test_without_an_api_token_it_exits_2_and_says_how_to_get_one(
    router: StandInRouter, plane: ControlPlaneApi, token: str | None, tmp_path: Path
) -> None:
    settings = tmp_path / "inferops.yaml"  # its base_dir holds no saved token file
    settings.write_text("api: {port: 9095}\n", encoding="utf-8")

    run = remediate("drain", "node-1", "--config", str(settings), plane=plane, token=token)

    assert (run.exit_code, run.stdout, run.stderr) == (
        2, "", "error: no API token: pass --token, export INFEROPS_API_TOKEN, or run "
               "`inferops run` once on this machine (it saves one)\n"
    )
    assert router.seen == []


def test_a_wrong_api_token_exits_2_and_never_prints_the_token(
    router: StandInRouter, plane: ControlPlaneApi
) -> None:
    run = remediate("drain", "node-1", plane=plane, token="wrong-secret-123")

    assert (run.exit_code, run.stdout, run.stderr) == (
        2, "", f"error: the control plane at {plane.url} refused the API token (401)\n"
    )
    assert router.seen == []


def test_an_unreachable_control_plane_exits_3_naming_its_url_not_the_token() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    run = remediate("drain", "node-1", plane=None, INFEROPS_API_URL=url)

    assert run.exit_code == 3
    assert run.stderr.startswith(
        f"error: cannot reach the control plane at {url} (POST /api/v1/remediation/actions): "
        "ConnectError: ")
    assert API_TOKEN not in run.stderr + run.stdout


def test_a_fleet_router_that_is_down_behind_the_control_plane_exits_1_naming_it(
    log: DecisionLog, served_api: tuple[SwappableApp, str]
) -> None:
    fleet_url = f"http://127.0.0.1:{free_port()}"
    for plane in control_plane_on(served_api, fleet_url, log):
        run = remediate("drain", "node-1", plane=plane)

        assert run.exit_code == 1
        assert run.stdout.startswith(
            f"drain node-1: failed: manual drain: could not read the fleet's nodes: cannot "
            f"reach the fleet router at {fleet_url} (GET /admin/nodes): "
        )


def test_the_url_and_token_come_from_the_settings_and_the_saved_token_file(
    plane: ControlPlaneApi, tmp_path: Path
) -> None:
    host, port = plane.url.removeprefix("http://").split(":")
    settings = tmp_path / "inferops.yaml"
    settings.write_text(f"api: {{host: '{host}', port: {port}}}\n", encoding="utf-8")
    (tmp_path / ".inferops").mkdir()
    (tmp_path / ".inferops" / "api-token").write_text(API_TOKEN + "\n", encoding="utf-8")

    run = CliRunner().invoke(
        app, ["remediate", "undrain", "node-0", "--config", str(settings)],
        env={"INFEROPS_API_TOKEN": None, "INFEROPS_API_URL": None, "INFEROPS_CONFIG": None},
    )

    assert (run.exit_code, run.stdout) == (
        0, "undrain node-0: skipped: manual undrain: node-0 is already serving; nothing to do\n"
    )


def test_the_token_and_url_options_win_over_the_environment(plane: ControlPlaneApi) -> None:
    run = remediate("undrain", "node-0", "--token", API_TOKEN, "--api-url", plane.url,
                    plane=None, token="stale-token", INFEROPS_API_URL="http://127.0.0.1:9")

    assert (run.exit_code, run.stdout) == (
        0, "undrain node-0: skipped: manual undrain: node-0 is already serving; nothing to do\n"
    )


def test_json_output_is_the_stored_decision(plane: ControlPlaneApi) -> None:
    run = remediate("drain", "node-1", "--json", plane=plane)

    assert run.exit_code == 0
    [decision] = plane.audit.recent()
    assert json.loads(run.stdout) == {
        "id": 1, "action": "drain", "node": "node-1", "outcome": "succeeded",
        "reason": "manual drain: node-1 is now drained", "guard": None, "actor": "cli:oncall",
        "alertname": None, "alert_fingerprint": None, "started_at_s": decision.started_at_s,
        "finished_at_s": decision.finished_at_s, "params": {}, "evidence": "",
        "incident_id": None, "approved_by": None,
    }


def pending_drain(plane: ControlPlaneApi) -> int:
    [pending] = plane.engine.handle_notification(
        webhook(alert("NodeHighErrorRate", node="node-1", fingerprint="e1")))
    return pending.id


def test_approve_acts_and_a_second_approve_exits_1(
    router: StandInRouter, plane: ControlPlaneApi
) -> None:
    decision_id = pending_drain(plane)

    run = remediate("approve", str(decision_id), plane=plane)

    assert (run.exit_code, run.stdout) == (0, (
        "drain node-1: succeeded: alert NodeHighErrorRate fired for node-1 (policy "
        "drain-with-approval): waiting for approval to drain node-1 (now serving, healthy); "
        "every guard passed; approved by cli:oncall: node-1 is now drained\n"))
    assert router.nodes["node-1"]["status"] == "drained"
    again = remediate("approve", str(decision_id), plane=plane)
    assert (again.exit_code, again.stderr) == (1, (
        f"error: decision {decision_id} is not pending approval (its outcome is succeeded)\n"))


def test_deny_records_the_reason_and_an_unknown_decision_exits_2(
    router: StandInRouter, plane: ControlPlaneApi
) -> None:
    decision_id = pending_drain(plane)

    run = remediate("deny", str(decision_id), "--reason", "client errors", plane=plane)

    assert run.exit_code == 0
    assert run.stdout.endswith("; denied by cli:oncall: client errors\n")
    assert router.nodes["node-1"]["status"] == "serving"
    unknown = remediate("deny", "99", "--reason", "x", plane=plane)
    assert (unknown.exit_code, unknown.stderr) == (
        2, "error: no remediation decision with id 99\n")


def test_pause_status_and_resume_through_the_kill_switch(plane: ControlPlaneApi) -> None:
    paused = remediate("pause", "--reason", "firmware rollout", "--json", plane=plane)

    assert paused.exit_code == 0
    status = json.loads(paused.stdout)
    assert (status["paused"], status["actor"], status["reason"]) == (
        True, "cli:oncall", "firmware rollout")
    assert plane.engine.kill_switch().paused
    shown = remediate("status", plane=plane)
    assert shown.stdout.startswith("remediation is paused since ")
    assert shown.stdout.endswith(" by cli:oncall: firmware rollout\n")
    resumed = remediate("resume", plane=plane)
    assert (resumed.exit_code, resumed.stdout) == (0, "remediation is running\n")
    assert not plane.engine.kill_switch().paused


def test_history_json_lists_every_decision_newest_first_exactly(plane: ControlPlaneApi) -> None:
    plane.audit.record(
        action="drain", node="node-1", outcome=Outcome.SUCCEEDED,
        reason="alert NodeDown fired for node-1 (policy p): node-1 is now drained",
        actor="policy:p", started_at_s=1764000003.25, alertname="NodeDown",
        alert_fingerprint="8e9b249c8f3b53af", finished_at_s=1764000003.5)
    plane.audit.record(
        action="drain", node="node-2", outcome=Outcome.REFUSED,
        reason="manual drain: draining node-2 would leave 0 nodes serving and healthy "
               "(none); the disruption budget needs at least 1",
        actor="cli:oncall", started_at_s=1764000010.0, guard="disruption-budget",
        finished_at_s=1764000010.0)

    run = remediate("history", "--json", plane=plane)

    assert run.exit_code == 0
    assert json.loads(run.stdout) == [
        {"id": 2, "action": "drain", "node": "node-2", "outcome": "refused",
         "reason": "manual drain: draining node-2 would leave 0 nodes serving and healthy "
                   "(none); the disruption budget needs at least 1",
         "guard": "disruption-budget", "actor": "cli:oncall", "alertname": None,
         "alert_fingerprint": None, "started_at_s": 1764000010.0,
         "finished_at_s": 1764000010.0, "params": {}, "evidence": "", "incident_id": None,
         "approved_by": None},
        {"id": 1, "action": "drain", "node": "node-1", "outcome": "succeeded",
         "reason": "alert NodeDown fired for node-1 (policy p): node-1 is now drained",
         "guard": None, "actor": "policy:p", "alertname": "NodeDown",
         "alert_fingerprint": "8e9b249c8f3b53af", "started_at_s": 1764000003.25,
         "finished_at_s": 1764000003.5, "params": {}, "evidence": "", "incident_id": None,
         "approved_by": None},
    ]


@pytest.mark.parametrize(
    ("options", "ids"),
    [(["--node", "node-1"], [3, 1]), (["--limit", "1"], [3]), ([], [3, 2, 1]),
     (["--outcome", "skipped", "--node", "node-2"], [2])],
    ids=["one node", "the latest one", "all", "outcome and node"],
)
def test_history_filters_by_node_outcome_and_limit(
    plane: ControlPlaneApi, options: list[str], ids: list[int]
) -> None:
    for node in ("node-1", "node-2", "node-1"):
        remediate("undrain", node, plane=plane)

    run = remediate("history", "--json", *options, plane=plane)

    assert run.exit_code == 0
    assert [entry["id"] for entry in json.loads(run.stdout)] == ids


def test_history_says_when_it_is_empty(plane: ControlPlaneApi) -> None:
    run = remediate("history", plane=plane)
    assert (run.exit_code, run.stdout) == (0, "No remediation decisions recorded yet.\n")


def test_history_as_a_table_shows_guard_actor_and_reason(plane: ControlPlaneApi) -> None:
    remediate("drain", "node-9", plane=plane)

    run = remediate("history", plane=plane)

    assert run.exit_code == 0
    for text in ("node-9", "refused", "unknown-node", "cli:oncall", "unknown node 'node-9'"):
        assert text in run.stdout


def test_incidents_list_and_show_print_the_timeline(plane: ControlPlaneApi) -> None:
    decision_id = pending_drain(plane)
    remediate("deny", str(decision_id), "--reason", "client errors", plane=plane)

    listed = remediate("list", "--json", plane=plane, command="incidents")
    [incident] = json.loads(listed.stdout)
    shown = remediate("show", str(incident["id"]), plane=plane, command="incidents")

    assert listed.exit_code == shown.exit_code == 0
    assert shown.stdout.startswith(
        f"incident {incident['id']}: NodeHighErrorRate on node-1\n"
        "alert NodeHighErrorRate fingerprint e1; opened ")
    assert ", closed still open\n" in shown.stdout
    for text in (str(decision_id), "drain", "node-1", "denied", "policy:drain-with-approval"):
        assert text in shown.stdout
    table = remediate("list", plane=plane, command="incidents")
    assert "NodeHighErrorRate on node-1" in table.stdout
    missing = remediate("show", "404", plane=plane, command="incidents")
    assert (missing.exit_code, missing.stderr) == (2, "error: no incident with id 404\n")
