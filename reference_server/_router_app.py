"""The router's HTTP API: `/v1/*` proxied, `/health`, `/metrics`, and the admin API.

Admin routes need `Authorization: Bearer <admin token>` (compared in constant time); every
error, the router's own included, is answered in OpenAI's error shape.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ._exceptions import CycleError, UnknownNodeError
from ._metrics_exposition import metrics_response
from ._openai_schema import openai_error
from ._router import Router
from ._router_pool import PooledNode

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                404: "not_found_error", 405: "invalid_request_error"}


class _Unauthorized(Exception):
    pass


class _BadBody(Exception):
    """An admin request body that is not what the route takes; the message names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    body = await request.body()
    if optional and not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _BadBody("the body must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise _BadBody("the body must be a JSON object")
    return parsed


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadBody(f"{name}: must be a number, got {value!r}", name)
    return float(value)


class _RelayFirst:
    """Hands `/v1/*` straight to the router's proxy, ahead of FastAPI's routing, dependency
    and exception layers (a quarter of the router's CPU per relayed request went there).
    The proxy answers every error itself, so nothing those layers did is lost; any other
    path or method goes on to the app."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self._router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"].startswith("/v1/")
                and scope["method"] in _RELAYED_METHODS):
            response = await self._router.proxy.handle(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


_RELAYED_METHODS = frozenset({"GET", "HEAD", "POST"})


def create_router_app(router: Router) -> FastAPI:
    """A FastAPI app serving `router`; its lifespan starts and closes the router."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await router.start()
        try:
            yield
        finally:
            await router.close()

    app = FastAPI(title="InferOps reference router", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.router = router
    app.add_middleware(_RelayFirst, router=router)
    token = router.admin_token.encode()

    def admin(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token):
            raise _Unauthorized

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, __: Exception) -> Response:
        return openai_error(401, "missing or invalid admin token (Authorization: Bearer ...)",
                            "invalid_request_error", code="invalid_api_key",
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(_BadBody)
    async def bad_body(_: Request, error: Exception) -> Response:
        assert isinstance(error, _BadBody)
        return openai_error(400, str(error), "invalid_request_error", param=error.param)

    @app.exception_handler(UnknownNodeError)
    async def unknown_node(_: Request, error: Exception) -> Response:
        return openai_error(404, str(error), "not_found_error", param="node")

    @app.exception_handler(CycleError)
    async def cycle_failed(_: Request, error: Exception) -> Response:
        assert isinstance(error, CycleError)
        return openai_error(error.status_code, str(error), "server_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        return openai_error(error.status_code, str(error.detail),
                            _ERROR_TYPES.get(error.status_code, "server_error"))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: Exception) -> Response:
        return openai_error(400, str(error), "invalid_request_error")

    @app.get("/health")
    async def health() -> Response:
        status, body = router.health()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return metrics_response(router.registry, request.headers.get("accept"))

    @app.get("/sd/targets")
    async def sd_targets() -> Response:
        """The node registry as Prometheus http_sd target groups (read only, no secrets)."""
        pid_of = getattr(router.controller, "pid", None)  # NodeSupervisor knows its children
        groups = []
        for node in router.pool.nodes:
            labels = {"node": node.name, "model_name": router.model_name,
                      "__meta_inferops_status": node.status}
            pid = pid_of(node.name) if callable(pid_of) else None
            if isinstance(pid, int):
                labels["__meta_inferops_pid"] = str(pid)
            groups.append({"targets": [node.url.split("://", 1)[1]], "labels": labels})
        return JSONResponse(groups)

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def v1(request: Request) -> Response:
        """Served by `_RelayFirst`; declared so that other methods answer 405."""
        return await router.proxy.handle(request)

    authorized = [Depends(admin)]

    @app.get("/admin/nodes", dependencies=authorized)
    async def nodes() -> Response:
        return JSONResponse({"nodes": [node.as_json() for node in router.pool.nodes]})

    def answer(node: PooledNode) -> Response:
        return JSONResponse({"node": node.as_json()})

    @app.post("/admin/nodes/{name}/drain", dependencies=authorized)
    async def drain(name: str, request: Request) -> Response:
        body = await _json_object(request, optional=True)
        mode = body.get("mode", "allow-completion")
        deadline = _number(body, "deadline_s") if "deadline_s" in body else None
        try:
            return answer(router.drain(name, str(mode), deadline))
        except ValueError as error:
            field = str(error).partition(":")[0]
            raise _BadBody(str(error), field) from None

    @app.post("/admin/nodes/{name}/weight", dependencies=authorized)
    async def weight(name: str, request: Request) -> Response:
        value = _number(await _json_object(request), "weight")
        router.pool.get(name)
        try:
            router.set_weights({name: value})
        except ValueError as error:
            raise _BadBody(str(error).replace(f"weights.{name}", "weight"), "weight") from None
        return answer(router.pool.get(name))

    @app.post("/admin/reroute", dependencies=authorized)
    async def reroute(request: Request) -> Response:
        weights = (await _json_object(request)).get("weights")
        if not isinstance(weights, dict) or not weights:
            raise _BadBody("weights: must be an object of node name to weight", "weights")
        try:
            router.set_weights(weights)
        except ValueError as error:
            raise _BadBody(str(error), "weights") from None
        return JSONResponse({"nodes": [node.as_json() for node in router.pool.nodes]})

    @app.post("/admin/nodes/{name}/profile", dependencies=authorized)
    async def profile(name: str, request: Request) -> Response:
        return await router.forward_profile(name, await request.body())

    @app.post("/admin/nodes/{name}/undrain", dependencies=authorized)
    async def undrain(name: str) -> Response:
        return answer(router.undrain(name))

    @app.post("/admin/nodes/{name}/cycle", dependencies=authorized)
    async def cycle(name: str) -> Response:
        return answer(await router.cycle(name))

    @app.api_route("/admin/nodes/{name}/faults", methods=["POST", "DELETE"],
                   dependencies=authorized)
    async def faults(name: str, request: Request) -> Response:
        return await router.forward_faults(name, request.method, await request.body())

    return app
