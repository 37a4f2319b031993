"""The node's HTTP API (FastAPI): OpenAI-compatible /v1, /health, /metrics, bearer-token admin."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.sdk.trace import TracerProvider
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import _openai_schema as oai
from ._metrics_exposition import metrics_response
from ._node_faults import parse_fault
from ._node_generate import error_response, fault_gate, handle_generate, record_simple
from ._node_runtime import Node
from ._node_tracing import NodeTracing
from ._profiler import parse_profile_request, run_profile

logger = logging.getLogger("reference_server.node")

CRASH_DELAY_S = 0.1


def _exit_now() -> None:
    logging.getLogger("reference_server.node").critical("crash fault: exiting with status 1")
    os._exit(1)


def create_node_app(node: Node, *, exit_process: bool = True,
                    tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The app serving `node`. Its lifespan starts the engine and closes the node.
    `exit_process=False` (tests only) makes the crash fault log instead of exiting.
    With a `tracer_provider`, every generation request gets a server span (see
    `_node_tracing`); the lifespan shuts the provider down last, flushing batched spans
    before the process exits."""
    tracing = None if tracer_provider is None else NodeTracing(
        tracer_provider.get_tracer("reference_server.node"), node_name=node.name,
        model_name=node.model_name)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        node.start()
        try:
            yield
        finally:
            node.close()
            if tracer_provider is not None:
                tracer_provider.shutdown()
            logger.info("%s: stopped", node.name)

    app = FastAPI(title=f"InferOps reference node {node.name}", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.node = node

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind: oai.ErrorType = "not_found_error" if exc.status_code == 404 else (
            "server_error" if exc.status_code >= 500 else "invalid_request_error")
        return error_response(oai.ApiError(exc.status_code, str(exc.detail), type=kind))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(oai.ApiError(400, str(exc.errors()[:1])))

    # ---- OpenAI-compatible ------------------------------------------------------------

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await handle_generate(node, request, chat=False, tracing=tracing)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await handle_generate(node, request, chat=True, tracing=tracing)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        started = time.monotonic()
        try:
            fault_gate(node)
        except oai.ApiError as error:
            record_simple(node, request, error.status_code, started)
            return error_response(error)
        record_simple(node, request, 200, started)
        return JSONResponse(oai.models_body(node.model_name, node.started_at, node.context_len))

    # ---- operations -------------------------------------------------------------------

    @app.get("/health")
    async def health() -> JSONResponse:
        status, body = node.health()
        return JSONResponse(body, status_code=status)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return metrics_response(node.registry, request.headers.get("accept"))

    # ---- admin ------------------------------------------------------------------------

    def unauthorized(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), node.admin_token.encode()
        ):
            return None
        response = error_response(oai.ApiError(401, "a valid admin bearer token is required"))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.post("/admin/faults")
    async def inject_fault(request: Request) -> JSONResponse:
        if (denied := unauthorized(request)) is not None:
            return denied
        try:
            fault = parse_fault(oai.parse_json_object(await request.body()))
            node.apply_fault(fault)
        except oai.ApiError as error:
            return error_response(error)
        logger.info("%s: fault injected: %s", node.name, fault)
        if fault["kind"] == "crash":
            if exit_process:
                timer = threading.Timer(CRASH_DELAY_S, _exit_now)
                timer.daemon = True
                timer.start()
            else:
                logger.info("%s: crash fault: would exit now (exit_process=False)", node.name)
        return JSONResponse({"faults": node.faults.active()})

    @app.delete("/admin/faults")
    async def clear_faults(request: Request) -> JSONResponse:
        if (denied := unauthorized(request)) is not None:
            return denied
        node.clear_faults()
        logger.info("%s: faults cleared", node.name)
        return JSONResponse({"faults": []})

    @app.post("/admin/profile")
    async def profile(request: Request) -> JSONResponse:
        if (denied := unauthorized(request)) is not None:
            return denied
        try:
            asked = parse_profile_request(oai.parse_json_object(await request.body()))
            logger.info("%s: profiling %s", node.name, asked)
            result = await run_profile(node.engine.faults, asked, device=node.model.device,
                                       trace_path=node.next_trace_path())
        except oai.ApiError as error:
            return error_response(error)
        logger.info("%s: profile done: %d of %d steps, trace %s", node.name,
                    result.steps_profiled, result.steps_seen, result.trace_file)
        return JSONResponse(result.as_dict())

    @app.post("/admin/drain")
    async def drain(request: Request) -> JSONResponse:
        if (denied := unauthorized(request)) is not None:
            return denied
        node.draining = True
        logger.info("%s: draining (running %d, waiting %d)", node.name,
                    node.engine.num_running, node.engine.num_waiting)
        return JSONResponse({"draining": True})

    @app.post("/admin/undrain")
    async def undrain(request: Request) -> JSONResponse:
        if (denied := unauthorized(request)) is not None:
            return denied
        node.draining = False
        logger.info("%s: undrained: serving", node.name)
        return JSONResponse({"draining": False})

    return app
