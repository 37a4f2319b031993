"""`inferops remediate ...`: manual actions through the same engine, guards and audit trail.

A person at 3 a.m. gets the same safety as the automation: the disruption budget and
cooldowns apply, and every decision is recorded with `cli:<user>` as the actor.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from remediation import (
    Decision,
    DecisionLog,
    FleetDriverError,
    Outcome,
    ReferenceFleetDriver,
    RemediationEngine,
    RemediationPolicy,
    UnknownNodeError,
)

from ._settings import Settings, load_settings

remediate_app = typer.Typer(
    help="Drain, undrain or cycle nodes through the guarded engine; show the audit trail.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML.", envvar="INFEROPS_CONFIG"),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Decide and record, but do not act.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Reason = Annotated[str, typer.Option(help="Why (stored in the audit trail).")]


@contextlib.contextmanager
def _engine(settings: Settings) -> Iterator[RemediationEngine]:
    """The guarded engine over the configured fleet and store; both closed on exit."""
    token = settings.admin_token()
    if not token:
        typer.echo(
            "error: the fleet admin token is not set: export "
            f"{settings.remediation.admin_token_env}",
            err=True,
        )
        raise typer.Exit(2)
    from collectors import open_database

    database = open_database(settings.store.url)
    driver = ReferenceFleetDriver(settings.remediation.fleet_url, admin_token=token)
    try:
        yield RemediationEngine(
            driver,
            DecisionLog(database),
            RemediationPolicy(rules=()),
            dry_run=settings.remediation.dry_run,
            cooldown_s=settings.remediation.cooldown,
            min_healthy_nodes=settings.remediation.min_healthy_nodes,
            verify_timeout_s=settings.remediation.verify_timeout,
        )
    finally:
        driver.close()
        database.dispose()


def _actor() -> str:
    """`cli:<user>` for the audit trail; the uid where the system has no name for it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def decision_json(decision: Decision) -> dict[str, object]:
    return {
        "id": decision.id,
        "action": decision.action,
        "node": decision.node,
        "outcome": str(decision.outcome),
        "reason": decision.reason,
        "guard": decision.guard,
        "actor": decision.actor,
        "alertname": decision.alertname,
        "alert_fingerprint": decision.alert_fingerprint,
        "started_at": decision.started_at_s,
        "finished_at": decision.finished_at_s,
    }


def _act(
    action: str, node: str, config: Path | None, dry_run: bool, as_json: bool, reason: str
) -> None:
    settings = load_settings(config)
    try:
        with _engine(settings) as engine:
            decision = engine.execute(
                action,
                node,
                actor=_actor(),
                reason=reason,
                dry_run=True if dry_run else None,
            )
    except UnknownNodeError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except FleetDriverError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(decision_json(decision), indent=2))
    else:
        guard = f" (guard: {decision.guard})" if decision.guard else ""
        typer.echo(f"{action} {node}: {decision.outcome}{guard}: {decision.reason}")
    if decision.outcome not in (Outcome.SUCCEEDED, Outcome.DRY_RUN, Outcome.SKIPPED):
        raise typer.Exit(1)


@remediate_app.command()
def drain(
    node: Annotated[str, typer.Argument(help="Node name, e.g. node-1.")],
    config: ConfigOption = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    reason: Reason = "manual drain",
) -> None:
    """Stop sending new requests to NODE (in-flight requests finish)."""
    _act("drain", node, config, dry_run, as_json, reason)


@remediate_app.command()
def undrain(
    node: Annotated[str, typer.Argument(help="Node name.")],
    config: ConfigOption = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    reason: Reason = "manual undrain",
) -> None:
    """Put NODE back into rotation."""
    _act("undrain", node, config, dry_run, as_json, reason)


@remediate_app.command()
def cycle(
    node: Annotated[str, typer.Argument(help="Node name.")],
    config: ConfigOption = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
    reason: Reason = "manual cycle",
) -> None:
    """Drain NODE, restart it, wait for its health check, undrain it."""
    _act("cycle", node, config, dry_run, as_json, reason)


@remediate_app.command()
def history(
    config: ConfigOption = None,
    node: Annotated[str | None, typer.Option(help="Only this node.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent N decisions.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Every decision, taken or refused, newest first."""
    from rich.console import Console
    from rich.table import Table

    from collectors import open_database

    settings = load_settings(config)
    decisions = DecisionLog(open_database(settings.store.url)).recent(limit, node=node)
    if as_json:
        typer.echo(json.dumps([decision_json(d) for d in decisions], indent=2))
        return
    if not decisions:
        typer.echo("No remediation decisions recorded yet.")
        return
    import time as _time

    table = Table("id", "time", "action", "node", "outcome", "guard", "actor", "alert", "reason")
    for d in decisions:
        table.add_row(
            str(d.id),
            _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(d.started_at_s)),
            d.action,
            d.node,
            str(d.outcome),
            d.guard or "",
            d.actor,
            d.alertname or "",
            d.reason,
        )
    Console(width=160).print(table)
