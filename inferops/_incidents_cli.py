"""`inferops incidents list|show ID`: incidents and their timelines, through the control-plane
API (same token, URL and exit-code rules as `inferops remediate`)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from ._api_client import ApiClient, TokenOption, UrlOption
from ._remediate_cli import (
    DECISION_COLUMNS,
    AsJson,
    ConfigOption,
    decision_rows,
    print_table,
)

incidents_app = typer.Typer(
    help="Incidents: the decisions about one alert on one node, as a timeline.",
    no_args_is_help=True,
)


def _when(at_s: float | None) -> str:
    return "" if at_s is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at_s))


@incidents_app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most recent N incidents.")] = 50,
    config: ConfigOption = None, as_json: AsJson = False, token: TokenOption = None,
    api_url: UrlOption = None,
) -> None:
    """The latest incidents, newest first."""
    with ApiClient(config, token, api_url) as api:
        incidents = api.call("GET", "/api/v1/incidents", params={"limit": limit})["incidents"]
    if as_json:
        typer.echo(json.dumps(incidents, indent=2))
        return
    if not incidents:
        typer.echo("No incidents recorded yet.")
        return
    print_table(
        ("id", "opened", "closed", "title", "decisions", "notes"),
        [[str(i["id"]), _when(i["opened_at_s"]), _when(i["closed_at_s"]) or "open", i["title"],
          str(len(i["decisions"])), str(len(i["notes"]))] for i in incidents],
    )


@incidents_app.command("show")
def show(
    incident_id: Annotated[int, typer.Argument(help="Incident id (see `incidents list`).")],
    config: ConfigOption = None, as_json: AsJson = False, token: TokenOption = None,
    api_url: UrlOption = None,
) -> None:
    """One incident: what fired, every decision about it (oldest first), and its notes."""
    with ApiClient(config, token, api_url) as api:
        incident: dict[str, Any] = api.call("GET", f"/api/v1/incidents/{incident_id}")[
            "incident"]
    if as_json:
        typer.echo(json.dumps(incident, indent=2))
        return
    closed = _when(incident["closed_at_s"]) or "still open"
    typer.echo(f"incident {incident['id']}: {incident['title']}")
    typer.echo(f"alert {incident['alertname'] or '(manual)'} "
               f"fingerprint {incident['alert_fingerprint'] or '-'}; "
               f"opened {_when(incident['opened_at_s'])}, closed {closed}")
    if incident["decisions"]:
        print_table(DECISION_COLUMNS, decision_rows(incident["decisions"]))
    for note in incident["notes"]:
        typer.echo(f"note: {note}")
