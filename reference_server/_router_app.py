"""The router's HTTP API: `/v1/*` proxied, `/health`, `/metrics`, and the admin API.

Admin routes need `Authorization: Bearer <admin token>` (compared in constant time); every
error, the router's own included, is answered in OpenAI's error shape.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ._exceptions import CycleError, UnknownNodeError
from ._router import Router
from ._router_pool import PooledNode
from ._router_proxy import openai_error

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                404: "not_found_error", 405: "invalid_request_error"}


class _Unauthorized(Exception):
    pass


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
    async def metrics() -> Response:
        return Response(generate_latest(router.registry), media_type=CONTENT_TYPE_LATEST)

    @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
    async def v1(request: Request) -> Response:
        return await router.proxy.handle(request)

    authorized = [Depends(admin)]

    @app.get("/admin/nodes", dependencies=authorized)
    async def nodes() -> Response:
        return JSONResponse({"nodes": [node.as_json() for node in router.pool.nodes]})

    def answer(node: PooledNode) -> Response:
        return JSONResponse({"node": node.as_json()})

    @app.post("/admin/nodes/{name}/drain", dependencies=authorized)
    async def drain(name: str) -> Response:
        return answer(router.drain(name))

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
