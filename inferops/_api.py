"""The control-plane HTTP API that `inferops run` serves: one app, every component's router.

`create_control_plane_api(token=..., routers=[...])` mounts each router behind a bearer-token
check (constant-time compare; 401 `{"error": "missing or invalid bearer token"}`), leaves only
`GET /health` open, and answers every error as `{"error": "<message>"}`. Who called comes from
the `X-InferOps-Actor` header ("api" when absent) and goes into the audit trail.

The token: the server takes it from the environment variable `api.token_env`, or generates
one, prints it once to stderr and saves it in `<base_dir>/.inferops/api-token` (mode 0600);
clients (`inferops silences`, `inferops remediate`, the dashboard) take `--token`, then that
variable, then that file. The URL: `--api-url`, then `INFEROPS_API_URL`, then the settings'
`api.host:api.port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from alerting import ACTOR_HEADER

from ._settings import Settings

logger = logging.getLogger("inferops.api")

ENV_API_URL = "INFEROPS_API_URL"
TOKEN_FILE = Path(".inferops") / "api-token"
UNAUTHORIZED = "missing or invalid bearer token"

__all__ = [
    "ENV_API_URL",
    "TOKEN_FILE",
    "ApiUnauthorized",
    "actor",
    "api_url",
    "client_token",
    "create_control_plane_api",
    "serve_api",
    "server_token",
]


class ApiUnauthorized(Exception):
    """Raised by the token check; rendered as 401 with the contract's message."""


def actor(request: Request) -> str:
    """The caller's name for the audit trail (`X-InferOps-Actor`, default "api")."""
    return request.headers.get(ACTOR_HEADER, "").strip() or "api"


def create_control_plane_api(*, token: str, routers: Sequence[APIRouter]) -> FastAPI:
    """The API app: `GET /health` open, every route of `routers` behind `token`."""
    if not token:
        raise ValueError("token must be set: the API changes the fleet")
    expected = f"Bearer {token}".encode()

    def require_token(request: Request) -> None:
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            raise ApiUnauthorized

    app = FastAPI(title="InferOps control plane", docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(ApiUnauthorized)
    async def unauthorized(_request: Request, _error: ApiUnauthorized) -> JSONResponse:
        return JSONResponse({"error": UNAUTHORIZED}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"},
                            status_code=400)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    for router in routers:
        app.include_router(router, dependencies=[Depends(require_token)])
    return app


def server_token(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """(token, generated): from `api.token_env`, else a new one saved (mode 0600) in
    `<base_dir>/.inferops/api-token` for the clients on this machine."""
    env = os.environ if environ is None else environ
    token = env.get(settings.api.token_env, "").strip()
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    path = settings.base_dir / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return token, True


def client_token(
    settings: Settings, explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """`--token`, then `api.token_env`, then the server's saved token file."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    if env.get(settings.api.token_env, "").strip():
        return env[settings.api.token_env].strip()
    try:
        return (settings.base_dir / TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def api_url(
    settings: Settings, explicit: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """`--api-url`, then `INFEROPS_API_URL`, then `http://{api.host}:{api.port}`."""
    env = os.environ if environ is None else environ
    url = explicit or env.get(ENV_API_URL) or f"http://{settings.api.host}:{settings.api.port}"
    return url.rstrip("/")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the control plane's loop: the control plane owns Ctrl-C, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_api(app: FastAPI, *, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """Serve `app` in the running event loop while the context is open; stop it cleanly.
    A port that is taken raises `OSError` naming it (the socket is bound here, first)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            f"api: cannot listen on {host}:{port}: {error.strerror} (set api.port, or "
            "api.enabled: false)"
        ) from None
    server = _EmbeddedServer(uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", access_log=False,
    ))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="control-plane-api")
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if task.done():
        sock.close()
        task.result()
        raise OSError(f"api: the server on {host}:{port} stopped while starting")
    logger.info("control-plane API on http://%s:%d", host, port)
    try:
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=10.0)
        sock.close()
