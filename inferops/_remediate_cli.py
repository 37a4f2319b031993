"""`inferops remediate ...`: manual actions, approvals and the kill switch, through the
control-plane API (docs/remediation-cli.md).

A person at 3 a.m. gets the same safety as the automation: the control plane's engine runs
every guard and records every decision with `cli:<user>` as the actor. The token comes from
`--token`, then `$INFEROPS_API_TOKEN` (`api.token_env`), then the file `inferops run` saved;
the URL from `--api-url`, then `$INFEROPS_API_URL`, then the settings' `api.host:api.port`.

Exit codes: 0 done (succeeded, dry run, nothing to do, pending approval, denied), 1 refused
or failed (the message names the guard), 2 bad usage, unknown node or unknown decision,
3 the control plane could not be reached (the message names the URL, never the token).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ._api_client import (
    EXIT_REFUSED,
    EXIT_USAGE,
    ApiClient,
    TokenOption,
    UrlOption,
    fail,
)
from ._settings import load_settings

remediate_app = typer.Typer(
    help="Drain, undrain, cycle or reroute nodes, approve or deny decisions, pause automation, "
    "show the audit trail, backtest a policy: through the control plane's guarded engine.",
    no_args_is_help=True,
)

ACTION_TIMEOUT_S = 300.0
"""A cycle waits for the node's restart and health check inside the control plane."""
DONE = frozenset({"succeeded", "dry_run", "skipped", "pending_approval", "denied"})

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML.", envvar="INFEROPS_CONFIG"),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Decide and record, but do not act.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Reason = Annotated[str | None, typer.Option(help="Why (stored in the audit trail).")]
NodeArgument = Annotated[str, typer.Argument(help="Node name, e.g. node-1.")]


def _print_decision(decision: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(decision, indent=2))
    else:
        guard = f" (guard: {decision['guard']})" if decision["guard"] else ""
        typer.echo(f"{decision['action']} {decision['node']}: {decision['outcome']}{guard}: "
                   f"{decision['reason']}")
    if decision["outcome"] not in DONE:
        raise typer.Exit(EXIT_REFUSED)


def _act(action: str, node: str, *, config: Path | None, token: str | None, url: str | None,
         dry_run: bool, as_json: bool, reason: str | None,
         params: dict[str, str] | None = None) -> None:
    body = {"action": action, "node": node, "reason": reason or f"manual {action}",
            "dry_run": dry_run, "params": params or {}}
    with ApiClient(config, token, url) as api:
        answer = api.call("POST", "/api/v1/remediation/actions", json=body,
                          timeout_s=ACTION_TIMEOUT_S)
    _print_decision(answer["decision"], as_json)


@remediate_app.command()
def drain(node: NodeArgument, config: ConfigOption = None, dry_run: DryRun = False,
          as_json: AsJson = False, reason: Reason = None, token: TokenOption = None,
          api_url: UrlOption = None) -> None:
    """Stop sending new requests to NODE (in-flight requests finish)."""
    _act("drain", node, config=config, token=token, url=api_url, dry_run=dry_run,
         as_json=as_json, reason=reason)


@remediate_app.command()
def undrain(node: NodeArgument, config: ConfigOption = None, dry_run: DryRun = False,
            as_json: AsJson = False, reason: Reason = None, token: TokenOption = None,
            api_url: UrlOption = None) -> None:
    """Put NODE back into rotation."""
    _act("undrain", node, config=config, token=token, url=api_url, dry_run=dry_run,
         as_json=as_json, reason=reason)


@remediate_app.command()
def cycle(node: NodeArgument, config: ConfigOption = None, dry_run: DryRun = False,
          as_json: AsJson = False, reason: Reason = None, token: TokenOption = None,
          api_url: UrlOption = None) -> None:
    """Drain NODE, restart it, wait for its health check, undrain it."""
    _act("cycle", node, config=config, token=token, url=api_url, dry_run=dry_run,
         as_json=as_json, reason=reason)


@remediate_app.command()
def reroute(
    node: NodeArgument,
    weight: Annotated[float, typer.Option(min=0.0, help="Routing weight (0: no new traffic).")]
    = 0.0,
    config: ConfigOption = None, dry_run: DryRun = False, as_json: AsJson = False,
    reason: Reason = None, token: TokenOption = None, api_url: UrlOption = None,
) -> None:
    """Set NODE's routing weight in its pool (0 sends it no new traffic)."""
    _act("reroute", node, config=config, token=token, url=api_url, dry_run=dry_run,
         as_json=as_json, reason=reason, params={"weight": f"{weight:g}"})


DecisionId = Annotated[int, typer.Argument(help="Decision id (see `remediate history`).")]


@remediate_app.command()
def approve(decision_id: DecisionId, config: ConfigOption = None, as_json: AsJson = False,
            token: TokenOption = None, api_url: UrlOption = None) -> None:
    """Act on a decision pending approval (every guard is asked again first)."""
    with ApiClient(config, token, api_url) as api:
        answer = api.call("POST", f"/api/v1/remediation/decisions/{decision_id}/approve",
                          json={}, timeout_s=ACTION_TIMEOUT_S)
    _print_decision(answer["decision"], as_json)


@remediate_app.command()
def deny(decision_id: DecisionId,
         reason: Annotated[str, typer.Option(help="Why (stored in the audit trail).")],
         config: ConfigOption = None, as_json: AsJson = False, token: TokenOption = None,
         api_url: UrlOption = None) -> None:
    """Refuse a decision pending approval; nothing acts."""
    with ApiClient(config, token, api_url) as api:
        answer = api.call("POST", f"/api/v1/remediation/decisions/{decision_id}/deny",
                          json={"reason": reason})
    _print_decision(answer["decision"], as_json)


def _print_status(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    if status["paused"]:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["since_s"]))
        typer.echo(f"remediation is paused since {since} by {status['actor']}: "
                   f"{status['reason']}")
    else:
        typer.echo("remediation is running")
    breaker = status["breaker"]
    if breaker["open"]:
        typer.echo(f"circuit breaker is open: {breaker['reason']}")


@remediate_app.command()
def pause(reason: Annotated[str, typer.Option(help="Why (shown to everyone who looks).")],
          config: ConfigOption = None, as_json: AsJson = False, token: TokenOption = None,
          api_url: UrlOption = None) -> None:
    """The kill switch: stop every automated action until `resume` (stored; holds across
    restarts). Manual actions still run, through the guards."""
    with ApiClient(config, token, api_url) as api:
        _print_status(api.call("POST", "/api/v1/remediation/pause", json={"reason": reason}),
                      as_json)


@remediate_app.command()
def resume(config: ConfigOption = None, as_json: AsJson = False, token: TokenOption = None,
           api_url: UrlOption = None) -> None:
    """Let automated actions run again."""
    with ApiClient(config, token, api_url) as api:
        _print_status(api.call("POST", "/api/v1/remediation/resume", json={}), as_json)


@remediate_app.command()
def status(config: ConfigOption = None, as_json: AsJson = False, token: TokenOption = None,
           api_url: UrlOption = None) -> None:
    """Whether automation is paused, and whether the circuit breaker is open."""
    with ApiClient(config, token, api_url) as api:
        _print_status(api.call("GET", "/api/v1/remediation/status"), as_json)


def decision_rows(decisions: list[dict[str, Any]]) -> list[list[str]]:
    """Table rows of decisions: id, time, action, node, outcome, guard, actor, alert, reason."""
    return [
        [str(d["id"]), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["started_at_s"])),
         d["action"], d["node"], d["outcome"], d["guard"] or "", d["actor"],
         d["alertname"] or "", d["reason"]]
        for d in decisions
    ]


DECISION_COLUMNS = ("id", "time", "action", "node", "outcome", "guard", "actor", "alert",
                    "reason")


def print_table(columns: tuple[str, ...], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)


@remediate_app.command()
def history(
    config: ConfigOption = None,
    node: Annotated[str | None, typer.Option(help="Only this node.")] = None,
    outcome: Annotated[str | None, typer.Option(help="Only this outcome, e.g. refused.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most recent N decisions.")] = 50,
    as_json: AsJson = False, token: TokenOption = None, api_url: UrlOption = None,
) -> None:
    """Every decision, taken or refused, newest first."""
    query: dict[str, str | int] = {"limit": limit}
    if node:
        query["node"] = node
    if outcome:
        query["outcome"] = outcome
    with ApiClient(config, token, api_url) as api:
        decisions = api.call("GET", "/api/v1/remediation/decisions", params=query)["decisions"]
    if as_json:
        typer.echo(json.dumps(decisions, indent=2))
    elif not decisions:
        typer.echo("No remediation decisions recorded yet.")
    else:
        print_table(DECISION_COLUMNS, decision_rows(decisions))


BACKTEST_COLUMNS = ("time", "alert", "node", "action", "outcome", "guard", "reason")
STORED_ALERTS_READ = 1_000_000
"""The most stored alert instances a backtest reads (newest first)."""


@remediate_app.command()
def backtest(
    policy: Annotated[Path, typer.Option(help="Remediation policy YAML to try.")],
    since: Annotated[str, typer.Option(help="How far back: 7d, 12h, 30m.")] = "7d",
    config: ConfigOption = None,
    as_json: AsJson = False,
) -> None:
    """Replay the stored alert history through POLICY in dry run: what it would have done,
    when, and which guard would have stopped it. Reads the settings' store; acts on nothing
    and writes nothing."""
    from alerting import AlertStore
    from collectors import SampleStore, open_database
    from remediation import HistoricAlert, load_remediation_policy
    from remediation import backtest as run_backtest

    from ._control_plane import remediation_limits
    from ._settings import parse_duration
    from ._sources import open_metric_source

    try:
        window_s = parse_duration(since)
    except ValueError as error:
        fail(EXIT_USAGE, f"--since: {error}")
    settings = load_settings(config)
    rules = load_remediation_policy(policy)
    database = open_database(settings.store.url)
    try:
        until_s = time.time()
        since_s = until_s - window_s
        alerts = [
            HistoricAlert(fingerprint=a.fingerprint, labels=a.labels, fired_at_s=a.fired_at_s,
                          resolved_at_s=a.resolved_at_s, annotations=a.annotations,
                          generator_url=a.generator_url)
            for a in AlertStore(database).recent(STORED_ALERTS_READ)
            if a.fired_at_s is not None
        ]
        section = settings.remediation
        rows = run_backtest(
            rules, alerts, open_metric_source(settings, SampleStore(database)),
            since_s=since_s, until_s=until_s, cooldown_s=section.cooldown,
            min_healthy_nodes=section.min_healthy_nodes, limits=remediation_limits(settings),
        )
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps([
            {"at_s": r.at_s, "alertname": r.alertname, "node": r.node, "action": r.action,
             "outcome": r.outcome, "guard": r.guard, "reason": r.reason} for r in rows
        ], indent=2))
        return
    firings = sum(1 for a in alerts if since_s <= a.fired_at_s <= until_s)
    would = sum(1 for r in rows if r.outcome == "dry_run")
    stopped = sum(1 for r in rows if r.outcome == "refused")
    typer.echo(f"{firings} alert firings in the last {since}: {would} "
               f"action{'' if would == 1 else 's'} would have run, {stopped} would have been "
               "stopped by a guard")
    if rows:
        print_table(BACKTEST_COLUMNS, [
            [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.at_s)), r.alertname, r.node,
             r.action, r.outcome, r.guard or "", r.reason] for r in rows
        ])
