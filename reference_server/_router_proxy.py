"""Relaying `/v1/*` to a node: pick, forward, retry once before the first byte, relay.

Bodies go through untouched: the router never parses a request it forwards (only the 503
it answers itself names the requested model) and never parses a chunk it relays. An
event stream is relayed chunk by chunk as the node sends it; any other answer is read
whole and relayed. An attempt that fails before any byte reached the client (connect
error, read error before the first chunk, a 5xx answer) is retried once on another node;
once bytes went out, a failing node ends the stream early (the client sees no [DONE]).
A client that goes away cancels the request to the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import httpx
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from exporters import RequestMetrics, RequestOutcome

from ._router_pool import NodePool, PooledNode

logger = logging.getLogger("reference_server.router")

NODE_HEADER = "x-inferops-node"
"""Names the node that answered, on every relayed answer."""

CLIENT_CLOSED = 499
"""Recorded (never sent) when the client went away before its answer was complete."""

_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})
_NOT_RELAYED = _HOP_BY_HOP | {"date", "server"}
_HANDLERS = frozenset({"/v1/completions", "/v1/chat/completions", "/v1/models"})


def openai_error(status_code: int, message: str, error_type: str, *,
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in OpenAI's shape, as the nodes answer theirs."""
    return JSONResponse(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}},
        status_code=status_code, headers=headers,
    )


@dataclass
class _Failure:
    node: PooledNode
    reason: str  # retries_total's label: connect | read | timeout | 5xx
    detail: str
    answer: Response | None = None  # a 5xx answer to relay if no retry can do better


@dataclass
class _Streamed:
    node: PooledNode
    response: httpx.Response
    chunks: AsyncIterator[bytes]
    first: bytes


class RequestProxy:
    def __init__(
        self, pool: NodePool, client: httpx.AsyncClient, *, model_name: str,
        metrics: RequestMetrics, retries: Counter,
    ) -> None:
        self._pool = pool
        self._client = client
        self._model_name = model_name
        self._metrics = metrics
        self._retries = retries

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        handler = request.url.path if request.url.path in _HANDLERS else "/v1/{path}"
        body = await request.body()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k not in _HOP_BY_HOP]
        if "accept-encoding" not in request.headers:
            headers.append(("accept-encoding", "identity"))  # relay bytes as the node sends them
        attempts = asyncio.ensure_future(self._attempts(request.method, target, headers, body))
        gone = asyncio.ensure_future(_client_gone(request))
        try:
            await asyncio.wait({attempts, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the server is stopping: so does the request to the node
            gone.cancel()
            if not attempts.done():
                attempts.cancel()
            elif not attempts.cancelled() and attempts.exception() is None:
                result = attempts.result()
                if isinstance(result, _Streamed):  # never handed to a response: close it here
                    with anyio.CancelScope(shield=True):
                        await result.response.aclose()
                    self._pool.release(result.node)
            raise
        gone.cancel()
        if not attempts.done():  # the client went away first: stop the node's work too
            attempts.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await attempts
            self._record(handler, request.method, CLIENT_CLOSED, started)
            return Response(status_code=CLIENT_CLOSED)
        result = attempts.result()
        if isinstance(result, _Streamed):
            return _RelayResponse(self, result, handler=handler, method=request.method,
                                  started=started)
        if result is None:
            result = self._no_node(body, [])
        elif isinstance(result, list):
            result = self._no_node(body, result)
        self._record(handler, request.method, result.status_code, started)
        return result

    async def _attempts(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Response | _Streamed | list[_Failure] | None:
        failures: list[_Failure] = []
        for attempt in range(2):
            node = self._pool.pick(exclude={f.node.name for f in failures})
            if node is None:
                break
            if attempt == 1:
                first = failures[0]
                self._retries.labels(node=first.node.name, reason=first.reason).inc()
                logger.debug("retrying %s %s on %s: %s %s", method, target, node.name,
                            first.node.name, first.detail)
            outcome = await self._try(node, method, target, headers, body)
            if not isinstance(outcome, _Failure):
                return outcome
            failures.append(outcome)
        for failure in reversed(failures):  # a 5xx answer beats "no node"
            if failure.answer is not None:
                return failure.answer
        return failures or None

    async def _try(
        self, node: PooledNode, method: str, target: str,
        headers: list[tuple[str, str]], body: bytes,
    ) -> Response | _Streamed | _Failure:
        self._pool.acquire(node)
        handed_over = False
        response: httpx.Response | None = None
        try:
            request = self._client.build_request(method, node.url + target, headers=headers,
                                                 content=body)
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException as error:
                connect = isinstance(error, httpx.ConnectTimeout)
                if connect:
                    self._pool.set_health(node, False, f"proxied request: {_describe(error)}")
                return _Failure(node, "connect" if connect else "timeout", _describe(error))
            except httpx.TransportError as error:
                connect = isinstance(error, httpx.ConnectError)
                self._pool.set_health(node, False, f"proxied request: {_describe(error)}")
                return _Failure(node, "connect" if connect else "read", _describe(error))
            relayed = _relay_headers(response, node)
            try:
                if response.status_code >= 500:
                    content = b"".join([chunk async for chunk in response.aiter_raw()])
                    answer = Response(content, status_code=response.status_code, headers=relayed)
                    return _Failure(node, "5xx", f"answered {response.status_code}", answer)
                if response.headers.get("content-type", "").startswith("text/event-stream"):
                    chunks = response.aiter_raw()
                    first = await anext(chunks, b"")
                    handed_over = True
                    return _Streamed(node, response, chunks, first)
                content = b"".join([chunk async for chunk in response.aiter_raw()])
                return Response(content, status_code=response.status_code, headers=relayed)
            except httpx.TimeoutException as error:
                return _Failure(node, "timeout", _describe(error))
            except httpx.TransportError as error:
                return _Failure(node, "read", _describe(error))
        finally:
            if not handed_over:
                if response is not None:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
                self._pool.release(node)

    def _no_node(self, body: bytes, failures: list[_Failure]) -> Response:
        model = self._model_name
        with contextlib.suppress(ValueError, AttributeError):
            requested = json.loads(body).get("model")
            if isinstance(requested, str) and requested:
                model = requested
        message = f"no healthy node is serving model {model!r}"
        if failures:
            message += " (" + "; ".join(f"{f.node.name}: {f.detail}" for f in failures) + ")"
        return openai_error(503, message, "server_error")

    def _record(self, handler: str, method: str, status: int, started: float,
                ttft_s: float | None = None) -> None:
        generation = handler != "/v1/models" and handler != "/v1/{path}"
        self._metrics.record(RequestOutcome(
            handler=handler, method=method, status_code=status,
            e2e_latency_s=time.perf_counter() - started if generation and status < 400 else None,
            time_to_first_token_s=ttft_s,
        ))


class _RelayResponse(StreamingResponse):
    """An event stream relayed as it arrives; closes the node's answer, releases the node
    and records the request however the relay ends."""

    def __init__(self, proxy: RequestProxy, streamed: _Streamed, *, handler: str, method: str,
                 started: float) -> None:
        self._proxy = proxy
        self._streamed = streamed
        self._handler = handler
        self._method = method
        self._started = started
        self._ttft_s: float | None = None
        self._completed = False
        self._broken: str | None = None
        super().__init__(self._relay(), status_code=streamed.response.status_code,
                         headers=_relay_headers(streamed.response, streamed.node))

    async def _relay(self) -> AsyncIterator[bytes]:
        if self._streamed.first:
            self._ttft_s = time.perf_counter() - self._started
            yield self._streamed.first
        try:
            async for chunk in self._streamed.chunks:
                if self._ttft_s is None:
                    self._ttft_s = time.perf_counter() - self._started
                yield chunk
        except httpx.HTTPError as error:
            self._broken = _describe(error)
            logger.warning("%s broke a stream after bytes were relayed (%s); not retried",
                           self._streamed.node.name, self._broken)
            return
        self._completed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._streamed.response.aclose()
            self._proxy._pool.release(self._streamed.node)
            status = self._streamed.response.status_code
            if self._broken is not None:
                status = 502  # the client got a truncated stream: a server error
            elif not self._completed:
                status = CLIENT_CLOSED
            self._proxy._record(self._handler, self._method, status, self._started, self._ttft_s)


async def _client_gone(request: Request) -> None:
    """Returns once the client disconnects (the request body was already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _relay_headers(response: httpx.Response, node: PooledNode) -> dict[str, str]:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _NOT_RELAYED}
    headers[NODE_HEADER] = node.name
    return headers


def _describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
