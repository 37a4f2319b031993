"""`inferops silences add|list|expire`: silences through the control plane's HTTP API.

The API speaks Alertmanager's v2 silence shapes (so `amtool` works too); this command is the
same calls with InferOps's token and URL resolution: `--token`, then `$INFEROPS_API_TOKEN`
(`api.token_env`), then the token file `inferops run` saved; `--api-url`, then
`$INFEROPS_API_URL`, then the settings' `api.host:api.port`. Every call carries
`X-InferOps-Actor: cli:<user>` and has a timeout.

Exit codes: 0 done, 1 the API refused or could not be reached, 2 bad input (a matcher or
duration that does not parse, named in the message).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from alerting import Matcher, MatcherError, MatchOp, rfc3339

from ._api_client import ApiClient, TokenOption, UrlOption, actor
from ._settings import parse_duration

silences_app = typer.Typer(
    help="Add, list and expire alert silences through the control-plane API.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML.", envvar="INFEROPS_CONFIG"),
]


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        typer.echo(f"error: cannot reach the control-plane API at {client.base_url}: {error}",
                   err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        typer.echo(f"error: {response.status_code}: {message}", err=True)
        raise typer.Exit(1)
    return response


def _v2_matcher(matcher: Matcher) -> dict[str, object]:
    return {
        "name": matcher.name,
        "value": matcher.value,
        "isRegex": matcher.op in (MatchOp.REGEX, MatchOp.NOT_REGEX),
        "isEqual": matcher.op in (MatchOp.EQUAL, MatchOp.REGEX),
    }


def _matcher_text(data: dict[str, Any]) -> str:
    op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
        (bool(data["isRegex"]), bool(data.get("isEqual", True)))
    ]
    return f'{data["name"]}{op}"{data["value"]}"'


@silences_app.command("add")
def add(
    matchers: Annotated[list[str], typer.Argument(help='Matchers: node="node-1" alertname=~"X.*"')],
    comment: Annotated[str, typer.Option(help="Why the alerts are silenced.")],
    duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "1h",
    author: Annotated[str | None, typer.Option(help="Who (default: your user name).")] = None,
    config: ConfigOption = None,
    token: TokenOption = None,
    api_url_: UrlOption = None,
) -> None:
    """Silence the alerts all MATCHERS match, from now for DURATION."""
    parsed: list[Matcher] = []
    bad: list[str] = []
    for text in matchers:
        try:
            parsed.append(Matcher.parse(text))
        except MatcherError as error:
            bad.append(str(error))
    if bad:
        typer.echo("error: bad matchers: " + "; ".join(bad), err=True)
        raise typer.Exit(2)
    try:
        seconds = parse_duration(duration)
    except ValueError as error:
        typer.echo(f"error: --duration: {error}", err=True)
        raise typer.Exit(2) from None
    now = time.time()
    body = {
        "matchers": [_v2_matcher(m) for m in parsed],
        "startsAt": rfc3339(now),
        "endsAt": rfc3339(now + seconds),
        "createdBy": author or actor(),
        "comment": comment,
    }
    with ApiClient(config, token, api_url_) as api:
        client = api.http
        response = _call(client, "POST", "/api/v2/silences", json=body)
    typer.echo(response.json()["silenceID"])


@silences_app.command("list")
def list_(
    expired: Annotated[bool, typer.Option("--expired", help="Include expired silences.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
    token: TokenOption = None,
    api_url_: UrlOption = None,
) -> None:
    """Pending and active silences (and expired ones with --expired), newest first."""
    with ApiClient(config, token, api_url_) as api:
        client = api.http
        silences = _call(client, "GET", "/api/v2/silences").json()
    shown = [s for s in silences if expired or s["status"]["state"] != "expired"]
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    if not shown:
        typer.echo("no silences")
        return
    for s in shown:
        matchers = ",".join(_matcher_text(m) for m in s["matchers"])
        typer.echo(f"{s['id']}  {s['status']['state']:<8} {{{matchers}}}  until {s['endsAt']}  "
                   f"by {s['createdBy']}: {s['comment']}")


@silences_app.command("expire")
def expire(
    silence_ids: Annotated[list[str], typer.Argument(help="Silence ids.")],
    config: ConfigOption = None,
    token: TokenOption = None,
    api_url_: UrlOption = None,
) -> None:
    """End the silences now."""
    with ApiClient(config, token, api_url_) as api:
        client = api.http
        for silence_id in silence_ids:
            _call(client, "DELETE", f"/api/v2/silence/{silence_id}")
            typer.echo(f"expired {silence_id}")
