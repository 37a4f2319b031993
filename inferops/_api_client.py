"""The control-plane API as the CLI commands reach it (`remediate`, `incidents`, `silences`):
the `--token`/`--api-url` options, token and URL resolution, the actor header, a timeout on
every call and the exit-code rules, declared once so every command resolves them alike.

The token comes from `--token`, then `$INFEROPS_API_TOKEN` (`api.token_env`), then the file
`inferops run` saved; the URL from `--api-url`, then `$INFEROPS_API_URL`, then the settings'
`api.host:api.port`. Messages name the URL, never the token.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from alerting import ACTOR_HEADER

from ._settings import load_settings

__all__ = [
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "TIMEOUT_S",
    "ApiClient",
    "TokenOption",
    "UrlOption",
    "actor",
    "fail",
]

TIMEOUT_S = 10.0
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3

TokenOption = Annotated[
    str | None, typer.Option("--token", help="API bearer token (else env, else token file).")
]
UrlOption = Annotated[
    str | None, typer.Option("--api-url", help="Control-plane API URL (else env, else settings).")
]


def actor() -> str:
    """`cli:<user>` for the audit trail; the uid where the system has no name for it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def fail(code: int, message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class ApiClient:
    """The control-plane API with the CLI's token, actor and exit-code rules. `http` is the
    underlying client, for commands with exit rules of their own (`silences`)."""

    def __init__(self, config: Path | None, token: str | None, url: str | None) -> None:
        from ._api import api_url, client_token

        settings = load_settings(config)
        self.url = api_url(settings, url)
        resolved = client_token(settings, token)
        if not resolved:
            fail(EXIT_USAGE, f"no API token: pass --token, export {settings.api.token_env}, or "
                             "run `inferops run` once on this machine (it saves one)")
        self.http = httpx.Client(
            base_url=self.url, timeout=TIMEOUT_S,
            headers={"Authorization": f"Bearer {resolved}", ACTOR_HEADER: actor()},
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, timeout_s: float = TIMEOUT_S,
             **kwargs: Any) -> Any:
        """The JSON answer; 401 and 4xx exit 2 (409: 1), unreachable exits 3."""
        try:
            response = self.http.request(method, path, timeout=timeout_s, **kwargs)
        except httpx.HTTPError as error:
            kind = type(error).__name__
            fail(EXIT_UNREACHABLE, f"cannot reach the control plane at {self.url} "
                                   f"({method} {path}): {kind}: {error}")
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("error") if isinstance(body, dict) else None
        if response.status_code == 401:
            fail(EXIT_USAGE, f"the control plane at {self.url} refused the API token (401)")
        if response.status_code == 409:
            fail(EXIT_REFUSED, str(message))
        if response.status_code >= 400 or body is None:
            fail(EXIT_USAGE if response.status_code < 500 else EXIT_REFUSED,
                 str(message or f"{method} {path} answered {response.status_code}: "
                                f"{response.text[:200]}"))
        return body
