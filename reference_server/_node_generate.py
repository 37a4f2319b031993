"""/v1/completions and /v1/chat/completions: validate, queue on the engine, answer or stream.

A streamed answer waits for its first token before the headers go out, so any failure before
that (a fault, an engine error) is a plain JSON error a router may retry elsewhere. Every
request's outcome is recorded in the node's request metrics, whatever its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from exporters import RequestOutcome

from . import _openai_schema as oai
from ._node_runtime import Node
from ._node_tracing import NodeRequestTrace, NodeTracing
from ._sequence import Delta, RequestHandle, SamplingParams

logger = logging.getLogger("reference_server.node")


def error_response(error: oai.ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code)


def record_simple(node: Node, request: Request, status: int, started: float,
                  trace: NodeRequestTrace | None = None) -> None:
    node.record(RequestOutcome(
        handler=request.url.path, method=request.method, status_code=status,
        e2e_latency_s=time.monotonic() - started,
        trace_id=None if trace is None else trace.trace_id,
    ))
    if trace is not None:
        trace.finish(status)


def fault_gate(node: Node) -> None:
    """The error-burst fault: this share of new /v1 requests fail; a dead engine fails all."""
    if node.faults.should_fail():
        raise oai.ApiError(500, "injected fault: error burst", type="server_error")
    if (dead := node.engine.faults.dead_reason) is not None:
        raise oai.ApiError(500, f"the engine is dead: {dead}", type="server_error")


async def handle_generate(node: Node, request: Request, *, chat: bool,
                          tracing: NodeTracing | None = None) -> Response:
    started = time.monotonic()
    trace = None if tracing is None else tracing.start(request)
    try:
        fault_gate(node)
        data = oai.parse_json_object(await request.body())
        body: oai.CompletionRequest | oai.ChatCompletionRequest
        if chat:
            body = oai.validate(oai.ChatCompletionRequest, data)
        else:
            body = oai.validate(oai.CompletionRequest, data)
        prompt, params = _prepare(node, body, chat=chat)
        if node.faults.latency_s > 0:
            await asyncio.sleep(node.faults.latency_s)
        handle = node.engine.submit(prompt, params)
    except oai.ApiError as error:
        record_simple(node, request, error.status_code, started, trace)
        return error_response(error)
    except Exception:
        logger.exception("%s failed before generation", request.url.path)
        record_simple(node, request, 500, started, trace)
        return error_response(oai.ApiError(500, "internal error", type="server_error"))
    run = _Generation(node, request, handle, started, chat=chat,
                      include_usage=bool(body.stream_options and body.stream_options.include_usage),
                      trace=trace)
    if body.stream:
        return await run.stream()
    return await run.complete()


def _prepare(
    node: Node, body: oai.CompletionRequest | oai.ChatCompletionRequest, *, chat: bool
) -> tuple[list[int], SamplingParams]:
    if body.model is not None and body.model != node.model_name:
        raise oai.ApiError(404, f"The model `{body.model}` does not exist.",
                           type="not_found_error", param="model")
    body.check_supported()
    stop = body.stop_strings()
    prompt_param = "messages" if chat else "prompt"
    text = body.prompt_text()
    prompt = node.tokenizer.encode(text)
    context = node.context_len
    if len(prompt) >= context:
        raise oai.ApiError(
            400,
            f"{prompt_param}: the prompt is {len(prompt)} tokens; this model's context is "
            f"{context} tokens and at least 1 must be left for the completion",
            param=prompt_param,
        )
    free = context - len(prompt)
    max_tokens = body.max_tokens
    field = "max_tokens"
    if isinstance(body, oai.ChatCompletionRequest) and body.max_completion_tokens is not None:
        max_tokens, field = body.max_completion_tokens, "max_completion_tokens"
    if max_tokens is None:
        max_tokens = min(node.config.default_max_tokens, free)
    if max_tokens > free:
        raise oai.ApiError(
            400,
            f"{field}: {max_tokens} is more than the {free} tokens left in the context "
            f"({context} tokens, of which the prompt takes {len(prompt)})",
            param=field,
        )
    params = SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        stop=stop,
    )
    return prompt, params


class _Generation:
    def __init__(self, node: Node, request: Request, handle: RequestHandle, started: float, *,
                 chat: bool, include_usage: bool, trace: NodeRequestTrace | None = None) -> None:
        self.node = node
        self.trace = trace
        self.request = request
        self.handle = handle
        self.started = started
        self.chat = chat
        self.include_usage = include_usage
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _record(self, status: int, finished_reason: str | None) -> None:
        h = self.handle
        first = h.first_token_at_s
        self.node.record(RequestOutcome(
            handler=self.request.url.path, method=self.request.method, status_code=status,
            e2e_latency_s=time.monotonic() - self.started,
            time_to_first_token_s=None if first is None else first - self.started,
            queue_time_s=h.queue_time_s,
            prompt_tokens=h.prompt_tokens,
            generation_tokens=h.completion_tokens,
            finished_reason=finished_reason,
            inter_token_latencies_s=h.inter_token_latencies_s(),
            trace_id=None if self.trace is None else self.trace.trace_id,
        ))
        if self.trace is not None:
            self.trace.finish(status, h)

    def _usage(self) -> dict[str, int]:
        return oai.usage(self.handle.prompt_tokens, self.handle.completion_tokens)

    def _failed(self, delta: Delta) -> JSONResponse:
        logger.error("generation failed: %s", delta.error)
        self._record(500, None)
        return error_response(oai.ApiError(500, f"generation failed: {delta.error}",
                                           type="server_error"))

    async def _until_disconnect(self) -> None:
        """Cancel the request when the client goes away (the body is already read, so the
        next ASGI message is the disconnect)."""
        while True:
            message = await self.request.receive()
            if message["type"] == "http.disconnect":
                self.handle.cancel()
                return

    async def _next_watched(self, watcher: asyncio.Future[None]) -> Delta | None:
        """The next delta, or None when the client went away first."""
        getter = asyncio.ensure_future(self.handle.next_delta())
        both: set[asyncio.Future[Any]] = {watcher, getter}
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    def _gone(self) -> Response:
        """The client disconnected before its answer: 499, as nginx records it."""
        self._record(499, None)
        return Response(status_code=499)

    async def complete(self) -> Response:
        parts: list[str] = []
        watcher = asyncio.ensure_future(self._until_disconnect())
        try:
            while True:
                delta = await self._next_watched(watcher)
                if delta is None:
                    return self._gone()
                if delta.error is not None:
                    return self._failed(delta)
                parts.append(delta.text)
                if delta.finish_reason is not None:
                    break
        finally:
            watcher.cancel()
            self.handle.cancel()
        text, reason = "".join(parts), delta.finish_reason
        self._record(200, reason)
        if self.chat:
            body = oai.chat_body(self.id, self.created, self.node.model_name, text, reason,
                                 self._usage())
        else:
            body = oai.completion_body(self.id, self.created, self.node.model_name, text, reason,
                                       self._usage())
        return JSONResponse(body)

    async def stream(self) -> Response:
        watcher = asyncio.ensure_future(self._until_disconnect())
        try:
            first = await self._next_watched(watcher)
        finally:
            watcher.cancel()
        if first is None:
            self.handle.cancel()
            return self._gone()
        if first.error is not None:
            self.handle.cancel()
            return self._failed(first)
        return StreamingResponse(
            self._events(first), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _chunk(self, text: str | None, finish_reason: str | None, *, role: bool = False
               ) -> dict[str, Any]:
        model = self.node.model_name
        if not self.chat:
            return oai.completion_body(self.id, self.created, model, text or "", finish_reason,
                                       None)
        delta: dict[str, Any] = {"role": "assistant"} if role else {}
        if text is not None:
            delta["content"] = text
        return oai.chat_chunk(self.id, self.created, model, delta, finish_reason)

    async def _events(self, first: Delta) -> AsyncIterator[bytes]:
        reason: str | None = None
        try:
            if self.chat:
                yield oai.sse(self._chunk("", None, role=True))
            delta = first
            while True:
                if delta.error is not None:
                    logger.error("generation failed mid-stream: %s", delta.error)
                    yield oai.sse(oai.ApiError(500, f"generation failed: {delta.error}",
                                               type="server_error").body())
                    return
                if delta.finish_reason is not None:
                    if delta.text:
                        yield oai.sse(self._chunk(delta.text, None))
                    yield oai.sse(self._chunk(None if self.chat else "", delta.finish_reason))
                    if self.include_usage:
                        obj = "chat.completion.chunk" if self.chat else "text_completion"
                        yield oai.sse(oai.usage_chunk(self.id, self.created, self.node.model_name,
                                                      obj, self._usage()))
                    yield oai.SSE_DONE
                    reason = delta.finish_reason
                    return
                if delta.text:
                    yield oai.sse(self._chunk(delta.text, None))
                delta = await self.handle.next_delta()
        finally:
            self.handle.cancel()
            with contextlib.suppress(Exception):
                self._record(200, reason)
