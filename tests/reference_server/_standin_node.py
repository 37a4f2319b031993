"""A stand-in inference node for the router's tests: the node HTTP contract, no model.

Run as `python _standin_node.py --name node-0 --host 127.0.0.1 --port P` with
INFEROPS_ADMIN_TOKEN set (other node flags are accepted and ignored). It serves the node
contract's /health, /v1/models, /v1/completions and /v1/chat/completions (SSE with
"stream": true, a usage chunk with stream_options.include_usage), /admin/faults,
/admin/drain|undrain and /admin/profile (a fixed one-op table), and, for the tests only:
- request fields `test_token_delay_s` (seconds between tokens) and `test_exit_after_tokens`
  (the process exits after sending that many stream chunks);
- GET /_test/stats: what it received and answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL = "inferops-tiny"


def build_app(name: str, token: str) -> Starlette:
    routes: list[Route] = []

    def route(path: str, method: str) -> Any:
        def register(endpoint: Any) -> Any:
            routes.append(Route(path, endpoint, methods=[method]))
            return endpoint
        return register

    state: dict[str, Any] = {
        "draining": False, "faults": [], "requests": 0, "answered_500": 0, "completed": 0,
        "in_flight": 0, "cancelled": 0, "last_headers": {},
    }

    def error(status: int, message: str, kind: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                       "code": None}}, status_code=status)

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {token}"

    def fault(kind: str) -> dict[str, Any] | None:
        return next((f for f in state["faults"] if f["kind"] == kind), None)

    @route("/health", "GET")
    async def health(_: Request) -> Response:
        body = {"status": "draining" if state["draining"] else "ok", "name": name,
                "model": MODEL, "draining": state["draining"], "running": state["in_flight"],
                "waiting": 0}
        return JSONResponse(body, status_code=503 if state["draining"] else 200)

    @route("/v1/models", "GET")
    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def generate(request: Request, chat: bool) -> Response:
        state["requests"] += 1
        state["last_headers"] = dict(request.headers)
        body = await request.json()
        burst = fault("error-burst")
        if burst is not None and random.random() < burst["ratio"]:
            state["answered_500"] += 1
            return error(500, f"{name}: injected error burst", "server_error")
        latency = fault("latency")
        tokens = int(body.get("max_tokens", 4))
        delay = float(body.get("test_token_delay_s", 0.0))
        exit_after = body.get("test_exit_after_tokens")
        kind = "chat.completion" if chat else "text_completion"

        def piece(i: int) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "finish_reason": None}
            if chat:
                choice["delta"] = {"content": f" t{i}"}
            else:
                choice["text"] = f" t{i}"
            return {"id": "cmpl-1", "object": kind + (".chunk" if chat else ""), "model": MODEL,
                    "node": name, "choices": [choice]}

        if not body.get("stream"):
            state["in_flight"] += 1
            try:
                if latency:
                    await asyncio.sleep(latency["seconds"])
                await asyncio.sleep(delay * tokens)
            finally:
                state["in_flight"] -= 1
            state["completed"] += 1
            text = "".join(f" t{i}" for i in range(tokens))
            choice = ({"message": {"role": "assistant", "content": text}} if chat
                      else {"text": text})
            return JSONResponse({"id": "cmpl-1", "object": kind, "model": MODEL, "node": name,
                                 "choices": [{"index": 0, "finish_reason": "length", **choice}],
                                 "usage": {"prompt_tokens": 3, "completion_tokens": tokens,
                                           "total_tokens": 3 + tokens}})

        async def events() -> AsyncIterator[bytes]:
            state["in_flight"] += 1
            try:
                if latency:
                    await asyncio.sleep(latency["seconds"])
                for i in range(tokens):
                    if i:
                        await asyncio.sleep(delay)
                    yield f"data: {json.dumps(piece(i))}\n\n".encode()
                    if exit_after is not None and i + 1 >= int(exit_after):
                        await asyncio.sleep(0.05)
                        os._exit(1)
                options = body.get("stream_options") or {}
                if options.get("include_usage"):
                    usage = {"prompt_tokens": 3, "completion_tokens": tokens,
                             "total_tokens": 3 + tokens}
                    last = {"id": "cmpl-1", "object": kind + (".chunk" if chat else ""),
                            "model": MODEL, "choices": [], "usage": usage}
                    yield f"data: {json.dumps(last)}\n\n".encode()
                yield b"data: [DONE]\n\n"
                state["completed"] += 1
            except asyncio.CancelledError:
                state["cancelled"] += 1
                raise
            finally:
                state["in_flight"] -= 1

        return StreamingResponse(events(), media_type="text/event-stream")

    @route("/v1/completions", "POST")
    async def completions(request: Request) -> Response:
        return await generate(request, chat=False)

    @route("/v1/chat/completions", "POST")
    async def chat_completions(request: Request) -> Response:
        return await generate(request, chat=True)

    @route("/admin/faults", "POST")
    async def add_fault(request: Request) -> Response:
        if not authorized(request):
            return error(401, "invalid admin token", "invalid_request_error")
        body = await request.json()
        if body.get("kind") not in ("latency", "error-burst", "crash", "gpu-xid"):
            return error(400, "kind: unknown fault kind", "invalid_request_error")
        state["faults"].append(body)
        if body["kind"] == "crash":
            threading.Timer(0.1, lambda: os._exit(1)).start()
        return JSONResponse({"faults": state["faults"]})

    @route("/admin/faults", "DELETE")
    async def clear_faults(request: Request) -> Response:
        if not authorized(request):
            return error(401, "invalid admin token", "invalid_request_error")
        state["faults"] = []
        return JSONResponse({"faults": []})

    @route("/admin/drain", "POST")
    async def drain(request: Request) -> Response:
        if not authorized(request):
            return error(401, "invalid admin token", "invalid_request_error")
        state["draining"] = True
        return JSONResponse({"draining": True})

    @route("/admin/undrain", "POST")
    async def undrain(request: Request) -> Response:
        if not authorized(request):
            return error(401, "invalid admin token", "invalid_request_error")
        state["draining"] = False
        return JSONResponse({"draining": False})

    @route("/admin/profile", "POST")
    async def profile(request: Request) -> Response:
        if not authorized(request):
            return error(401, "invalid admin token", "invalid_request_error")
        body = await request.json()
        steps = body.get("steps")
        if not isinstance(steps, int) or steps < 1:
            return error(400, "steps: must be a positive integer", "invalid_request_error")
        return JSONResponse({"node": name, "steps": steps,
                             "ops": [{"name": "aten::mm", "calls": steps, "share": 1.0}]})

    @route("/_test/stats", "GET")
    async def stats(_: Request) -> Response:
        return JSONResponse({k: v for k, v in state.items()} | {"pid": os.getpid(),
                                                                 "time": time.time()})

    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--exit-code", type=int, default=None, help="exit at once with this code")
    args, _ = parser.parse_known_args()
    token = os.environ.get("INFEROPS_ADMIN_TOKEN")
    if not token:
        print("INFEROPS_ADMIN_TOKEN is not set", file=sys.stderr)
        sys.exit(2)
    if args.exit_code is not None:
        print(f"{args.name}: exiting with code {args.exit_code} as asked", file=sys.stderr)
        sys.exit(args.exit_code)
    time.sleep(args.startup_delay)
    print(f"{args.name}: stand-in node on {args.host}:{args.port} argv={sys.argv[1:]}", flush=True)
    uvicorn.run(build_app(args.name, token), host=args.host, port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
