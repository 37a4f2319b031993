"""An event stream relayed from a node to the client, chunk by chunk as it arrives.

`RequestProxy` decides where a request goes and retries before the first byte; once a
stream's first byte is in hand, `RelayResponse` carries it to the client and, however the
relay ends (completed, broken by the node, cut by a drain, left by the client), releases the
node, meters the usage chunk and records the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ._api_keys import ApiKey
from ._exceptions import UpstreamError
from ._gateway_access import take_usage_events
from ._router_pool import PooledNode
from ._router_tracing import RouterRequestTrace
from ._upstream_pool import UpstreamResponse

if TYPE_CHECKING:
    from ._router_proxy import RequestProxy

logger = logging.getLogger("reference_server.router")

NODE_HEADER = "x-inferops-node"
"""Names the node that answered, on every relayed answer."""

CLIENT_CLOSED = 499
"""Recorded (never sent) when the client went away before its answer was complete."""

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})
_NOT_RELAYED = HOP_BY_HOP | {"date", "server"}


@dataclass
class Streamed:
    node: PooledNode
    response: UpstreamResponse
    first: bytes


@dataclass
class Caller:
    """Who asked (the gateway's key, when keys are required) and how to meter the answer."""

    key: ApiKey | None = None
    strip_usage: bool = False  # the usage chunk was asked for by the gateway, not the client
    trace: RouterRequestTrace | None = None  # its spans, when the router traces


class RelayResponse(StreamingResponse):
    """An event stream relayed as it arrives; closes the node's answer, releases the node,
    meters the usage chunk and records the request however the relay ends. An immediate
    drain of the node cuts the relay: the client sees the stream end (no [DONE])."""

    def __init__(self, proxy: RequestProxy, streamed: Streamed, *, handler: str, method: str,
                 started: float, who: Caller) -> None:
        self._proxy = proxy
        self._streamed = streamed
        self._handler = handler
        self._method = method
        self._started = started
        self._who = who
        self._usage: tuple[int, int] | None = None
        self._ttft_s: float | None = None
        self._completed = False
        self._broken: str | None = None
        self._cut = False
        super().__init__(self._relay(), status_code=streamed.response.status_code,
                         headers=relay_headers(streamed.response, streamed.node))

    async def _relay(self) -> AsyncIterator[bytes]:
        metering = self._who.key is not None
        if self._streamed.first:
            self._ttft_s = time.perf_counter() - self._started
            yield self._checked(self._streamed.first) if metering else self._streamed.first
        try:
            response = self._streamed.response
            while chunk := await response.next_chunk():
                if self._ttft_s is None:
                    self._ttft_s = time.perf_counter() - self._started
                if metering:
                    chunk = self._checked(chunk)
                    if not chunk:
                        continue
                yield chunk
        except UpstreamError as error:
            self._broken = describe(error)
            self._proxy._pool.failed(self._streamed.node, "read")
            logger.warning("%s broke a stream after bytes were relayed (%s); not retried",
                           self._streamed.node.name, self._broken)
            return
        self._completed = True

    def _checked(self, chunk: bytes) -> bytes:
        chunk, usage = take_usage_events(chunk, self._who.strip_usage)
        if usage is not None:
            self._usage = usage
        return chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        node = self._streamed.node
        task = asyncio.current_task()
        ended = False

        async def tracked(message: dict[str, object]) -> None:
            nonlocal ended
            if message["type"] == "http.response.body" and not message.get("more_body"):
                ended = True
            await send(message)

        def cancel() -> None:
            self._cut = True
            if task is not None:
                task.cancel()

        node.cancellers.add(cancel)
        try:
            try:
                await super().__call__(scope, receive, tracked)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                if not self._cut or task is None:
                    raise
                task.uncancel()
                logger.info("cut a stream on %s (drained immediately)", node.name)
                if not ended:
                    with contextlib.suppress(Exception):
                        await send({"type": "http.response.body", "body": b"",
                                    "more_body": False})
        finally:
            node.cancellers.discard(cancel)
            with anyio.CancelScope(shield=True):
                await self._streamed.response.aclose()
            self._proxy._pool.release(node)
            status = self._streamed.response.status_code
            if self._cut:
                status = 503  # the router ended the stream early
                self._proxy._cut.labels(node=node.name, what="stream").inc()
            elif self._broken is not None:
                status = 502  # the client got a truncated stream: a server error
            elif not self._completed:
                status = CLIENT_CLOSED
            gateway = self._proxy._gateway
            if self._who.key is not None and gateway is not None and self._usage is not None:
                gateway.meter(self._who.key, self._usage)
            self._proxy._record(self._handler, self._method, status, self._started,
                                self._ttft_s, who=self._who)


def relay_headers(response: UpstreamResponse, node: PooledNode) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in response.headers:
        if key not in _NOT_RELAYED:
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    headers[NODE_HEADER] = node.name
    return headers


def describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
