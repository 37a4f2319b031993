"""Relaying `/v1/*` to a node: pick, forward, retry once before the first byte, relay.

Bodies go through untouched: the router never parses a request it forwards (only the 503
it answers itself names the requested model) and never parses a chunk it relays. An
event stream is relayed chunk by chunk as the node sends it; any other answer is read
whole and relayed. An attempt that fails before any byte reached the client (connect
error, read error before the first chunk, a 5xx answer, a stream without a first byte
within the first-byte timeout) is retried once on another node; once bytes went out, a
failing node ends the stream early (the client sees no [DONE]). Every attempt's outcome
feeds the pool's outlier detector, whose ejection of a node also moves the attempts still
waiting for that node's first byte. A client that goes away cancels the request to the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from exporters import RequestMetrics, RequestOutcome

from ._api_keys import ApiKey
from ._exceptions import (
    UpstreamConnectError,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamReadTimeout,
)
from ._gateway_access import (
    Gateway,
    RequestFacts,
    read_request,
    usage_of,
    with_usage_requested,
)
from ._openai_schema import openai_error
from ._relay_stream import (
    CLIENT_CLOSED,
    HOP_BY_HOP,
    Caller,
    RelayResponse,
    Streamed,
    describe,
    relay_headers,
)
from ._router_pool import NodePool, PooledNode
from ._router_tracing import ProxyTracing, RouterAttemptTrace, RouterRequestTrace
from ._upstream_pool import UpstreamPool, UpstreamResponse

logger = logging.getLogger("reference_server.router")

_HANDLERS = frozenset({"/v1/completions", "/v1/chat/completions", "/v1/models"})
_CUT_BY_THE_ROUTER = frozenset({"drained", "ejected"})
"""Failed attempts that say nothing about the node's health (the outlier detector skips them)."""


@dataclass
class _Failure:
    node: PooledNode
    reason: str  # retries_total's label: connect | read | timeout | 5xx
    detail: str
    answer: Response | None = None  # a 5xx answer to relay if no retry can do better


class RequestProxy:
    def __init__(
        self, pool: NodePool, upstream: UpstreamPool, *, model_name: str,
        metrics: RequestMetrics, retries: Counter, cut: Counter,
        gateway: Gateway | None = None, first_byte_timeout_s: float = 10.0,
        tracing: ProxyTracing | None = None,
    ) -> None:
        self._pool = pool
        self._tracing = tracing
        self._first_byte_timeout_s = first_byte_timeout_s
        self._upstream = upstream
        self._model_name = model_name
        self._metrics = metrics
        self._retries = retries
        self._cut = cut
        self._gateway = gateway

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        path: str = request.scope["path"]  # not request.url: it builds a whole URL
        handler = path if path in _HANDLERS else "/v1/{path}"
        who = Caller(trace=None if self._tracing is None
                      else self._tracing.start(request, handler))
        hop = HOP_BY_HOP
        if self._gateway is not None:
            checked = self._gateway.check(request.headers.get("authorization"))
            if not isinstance(checked, ApiKey):
                self._record(handler, request.method, checked.status_code, started, who=who)
                return checked
            who.key = checked
            hop = HOP_BY_HOP | {"authorization"}  # a client's key is not the node's business
        body = await request.body()
        facts, parsed = (read_request(body, request.headers) if request.method == "POST"
                         else (RequestFacts(session=request.headers.get("x-session-id")), None))
        if who.key is not None and facts.stream and not facts.wants_usage and parsed is not None:
            body = with_usage_requested(parsed)
            who.strip_usage = True
        query: bytes = request.scope.get("query_string", b"")
        target = request.scope.get("raw_path", path.encode()).decode("latin-1") + (
            f"?{query.decode('latin-1')}" if query else "")
        headers = [(k, v) for k, v in request.headers.items() if k not in hop]
        if "accept-encoding" not in request.headers:
            headers.append(("accept-encoding", "identity"))  # relay bytes as the node sends them
        try:
            return await self._relay(request, handler, who, facts, target, headers, body, started)
        except BaseException:
            if who.key is not None and self._gateway is not None:
                self._gateway.record(who.key, CLIENT_CLOSED)
            if who.trace is not None:
                who.trace.finish(CLIENT_CLOSED)
            raise

    async def _relay(
        self, request: Request, handler: str, who: Caller, facts: RequestFacts, target: str,
        headers: list[tuple[str, str]], body: bytes, started: float,
    ) -> Response:
        attempts = asyncio.ensure_future(
            self._attempts(request.method, target, headers, body, facts, who.trace))
        gone = asyncio.ensure_future(_client_gone(request))
        try:
            await asyncio.wait({attempts, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the server is stopping: so does the request to the node
            gone.cancel()
            if not attempts.done():
                attempts.cancel()
            elif not attempts.cancelled() and attempts.exception() is None:
                result = attempts.result()
                if isinstance(result, Streamed):  # never handed to a response: close it here
                    with anyio.CancelScope(shield=True):
                        await result.response.aclose()
                    self._pool.release(result.node)
            raise
        gone.cancel()
        if not attempts.done():  # the client went away first: stop the node's work too
            attempts.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await attempts
            self._record(handler, request.method, CLIENT_CLOSED, started, who=who)
            return Response(status_code=CLIENT_CLOSED)
        result = attempts.result()
        if isinstance(result, Streamed):
            return RelayResponse(self, result, handler=handler, method=request.method,
                                  started=started, who=who)
        if result is None:
            result = self._no_node(facts, [])
        elif isinstance(result, list):
            result = self._no_node(facts, result)
        if who.key is not None and self._gateway is not None and result.status_code == 200:
            usage = usage_of(bytes(result.body))
            if usage is not None:
                self._gateway.meter(who.key, usage)
        self._record(handler, request.method, result.status_code, started, who=who)
        return result

    async def _attempts(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
        facts: RequestFacts, trace: RouterRequestTrace | None = None,
    ) -> Response | Streamed | list[_Failure] | None:
        failures: list[_Failure] = []
        for attempt in range(2):
            node = self._pool.pick(exclude={f.node.name for f in failures}, model=facts.model,
                                   session=facts.session)
            if node is None:
                break
            if attempt == 1:
                first = failures[0]
                self._retries.labels(node=first.node.name, reason=first.reason).inc()
                logger.debug("retrying %s %s on %s: %s %s", method, target, node.name,
                            first.node.name, first.detail)
            sent, tried = headers, None
            if trace is not None:  # this attempt's traceparent, on a copy of the headers
                sent = [*headers]
                tried = trace.attempt(node.name, method, node.url + target, facts.model, sent)
            outcome = await self._try(node, method, target, sent, body, facts.stream)
            if tried is not None:
                _traced(tried, outcome)
            if not isinstance(outcome, _Failure):
                self._pool.succeeded(node)
                return outcome
            if outcome.reason not in _CUT_BY_THE_ROUTER:
                self._pool.failed(node, outcome.reason)
            failures.append(outcome)
        for failure in reversed(failures):  # a 5xx answer beats "no node"
            if failure.answer is not None:
                return failure.answer
        return failures or None

    async def _try(
        self, node: PooledNode, method: str, target: str,
        headers: list[tuple[str, str]], body: bytes, stream: bool = False,
    ) -> Response | Streamed | _Failure:
        """One attempt on `node`. A stream must send its first byte within the first-byte
        timeout; an ejection of the node moves the attempt (still before any byte)."""
        self._pool.acquire(node)
        handed_over = False
        response: UpstreamResponse | None = None
        task = asyncio.current_task()
        cut: str | None = None  # why the router itself cancelled this attempt

        def cancel_for(why: str) -> Callable[[], None]:
            def cancel() -> None:
                nonlocal cut
                cut = why
                if task is not None:
                    task.cancel()
            return cancel

        cancel, move = cancel_for("drained"), cancel_for("ejected")
        node.cancellers.add(cancel)
        node.waiting.add(move)
        try:
            async with asyncio.timeout(self._first_byte_timeout_s if stream else None):
                try:
                    response = await self._upstream.send(node.url, method, target, headers, body)
                except UpstreamConnectTimeout as error:
                    self._pool.set_health(node, False, f"proxied request: {describe(error)}")
                    return _Failure(node, "connect", describe(error))
                except UpstreamReadTimeout as error:
                    return _Failure(node, "timeout", describe(error))
                except UpstreamError as error:
                    connect = isinstance(error, UpstreamConnectError)
                    self._pool.set_health(node, False, f"proxied request: {describe(error)}")
                    return _Failure(node, "connect" if connect else "read", describe(error))
                relayed = relay_headers(response, node)
                try:
                    if response.status_code >= 500:
                        answer = Response(await response.read(), status_code=response.status_code,
                                          headers=relayed)
                        return _Failure(node, "5xx", f"answered {response.status_code}", answer)
                    if (response.header("content-type") or "").startswith("text/event-stream"):
                        first = await response.next_chunk()
                        handed_over = True
                        return Streamed(node, response, first)
                    return Response(await response.read(), status_code=response.status_code,
                                    headers=relayed)
                except UpstreamReadTimeout as error:
                    return _Failure(node, "timeout", describe(error))
                except UpstreamError as error:
                    return _Failure(node, "read", describe(error))
        except TimeoutError:
            return _Failure(node, "first_byte_timeout",
                            f"no first byte within {self._first_byte_timeout_s:g} s")
        except asyncio.CancelledError:
            if cut is None or task is None:
                raise
            task.uncancel()  # an immediate drain or an ejection, before any byte: another
            if cut == "ejected":  # node may answer
                return _Failure(node, "ejected", "ejected while waiting for its first byte")
            self._cut.labels(node=node.name, what="retried").inc()
            return _Failure(node, "drained", "drained immediately")
        finally:
            node.cancellers.discard(cancel)
            node.waiting.discard(move)
            if not handed_over:
                if response is not None:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
                self._pool.release(node)

    def _no_node(self, facts: RequestFacts, failures: list[_Failure]) -> Response:
        model = facts.model or self._model_name
        message = f"no healthy node is serving model {model!r}"
        if failures:
            message += " (" + "; ".join(f"{f.node.name}: {f.detail}" for f in failures) + ")"
        return openai_error(503, message, "server_error")

    def _record(self, handler: str, method: str, status: int, started: float,
                ttft_s: float | None = None, *, who: Caller | None = None) -> None:
        if who is not None and who.key is not None and self._gateway is not None:
            self._gateway.record(who.key, status)
        generation = handler != "/v1/models" and handler != "/v1/{path}"
        self._metrics.record(RequestOutcome(
            handler=handler, method=method, status_code=status,
            e2e_latency_s=time.perf_counter() - started if generation and status < 400 else None,
            time_to_first_token_s=ttft_s,
            trace_id=None if who is None or who.trace is None else who.trace.trace_id,
        ))
        if who is not None and who.trace is not None:
            who.trace.finish(status)


def _traced(tried: RouterAttemptTrace, outcome: Response | Streamed | _Failure) -> None:
    if isinstance(outcome, _Failure):
        tried.failed(outcome.reason, outcome.detail,
                     None if outcome.answer is None else outcome.answer.status_code)
    elif isinstance(outcome, Streamed):
        tried.answered(outcome.response.status_code, streaming=True)
    else:
        tried.answered(outcome.status_code, streaming=False)


async def _client_gone(request: Request) -> None:
    """Returns once the client disconnects (the request body was already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
