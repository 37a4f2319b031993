"""The router's HTTP/1.1 client to its nodes: keep-alive connections over asyncio streams, h11.

httpx spent ~40 % of the router's CPU per relayed request (a profile under load); the router
needs far less of a client: one origin per node, HTTP/1.1, bodies already in bytes, answers
relayed as raw bytes. So this pool keeps idle connections per origin (most recently used
first, closed after `keepalive_expiry_s` idle), writes a request in one `write`, and hands the
body back as it arrives, every `Data` event already buffered joined into one chunk (an event
stream is relayed in as few writes as the node allows, never parsed).

A pooled connection the node closed while it sat idle is noticed before the first byte of
the answer (EOF or reset with nothing read) and the request is sent again on a new
connection, transparently: nothing reached the node's handler. Every wait has its timeout:
connect (`connect_s`), each read (`read_s`), each write (`write_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from ._exceptions import (
    UpstreamConnectError,
    UpstreamConnectTimeout,
    UpstreamReadError,
    UpstreamReadTimeout,
)

__all__ = ["UpstreamPool", "UpstreamResponse", "UpstreamTimeouts"]

_READ_SIZE = 262144


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamTimeouts:
    """How long the pool waits for each step, in seconds."""

    connect_s: float = 1.0
    read_s: float = 300.0
    """The most time between two reads of an answer (its head included)."""
    write_s: float = 30.0
    keepalive_expiry_s: float = 2.0
    """An idle connection older than this is closed instead of reused (a node closes its
    own idle connections after a few seconds: uvicorn's default is 5)."""


class _Connection:
    __slots__ = ("h11", "idle_since_s", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since_s = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()


class _Stale(Exception):
    """A reused connection was closed by the node before it answered a byte."""


class UpstreamResponse:
    """An answer's status and headers; its body comes with `next_chunk`/`aiter_raw`/`read`.
    `aclose` must be called: it returns a fully read connection to the pool, else closes it."""

    def __init__(self, pool: UpstreamPool, origin: tuple[str, int], connection: _Connection,
                 status_code: int, headers: list[tuple[str, str]]) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: _Connection | None = connection
        self.status_code = status_code
        self.headers = headers
        """(lower-case name, value) pairs, as the node sent them."""
        self._complete = False

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def next_chunk(self) -> bytes:
        """The body bytes buffered so far (waiting for some if none are); b"" at the end."""
        connection = self._connection
        if connection is None or self._complete:
            return b""
        parts: list[bytes] = []
        while True:
            try:
                event = connection.h11.next_event()
            except h11.RemoteProtocolError as error:
                raise UpstreamReadError(f"malformed answer: {error}") from None
            if event is h11.NEED_DATA:
                if parts:
                    return b"".join(parts)
                connection.h11.receive_data(await self._pool._read(connection))
            elif type(event) is h11.Data:
                parts.append(bytes(event.data))
            elif type(event) is h11.EndOfMessage:
                self._complete = True
                self._pool._checkin(self._origin, connection)
                self._connection = None
                return b"".join(parts)
            else:
                raise UpstreamReadError(f"unexpected {type(event).__name__} in an answer body")

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        while chunk := await self.next_chunk():
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # not read to its end: never reused


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to nodes, per origin (`http://host:port`)."""

    def __init__(self, timeouts: UpstreamTimeouts | None = None, *,
                 max_idle_per_origin: int = 200) -> None:
        self.timeouts = timeouts if timeouts is not None else UpstreamTimeouts()
        self._max_idle = max_idle_per_origin
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._origins: dict[str, tuple[str, int]] = {}
        self.opened = 0
        """Connections opened so far (reuse shows as requests > opened)."""

    def idle_count(self, base_url: str) -> int:
        return len(self._idle.get(self._origin(base_url), ()))

    def _origin(self, base_url: str) -> tuple[str, int]:
        origin = self._origins.get(base_url)
        if origin is None:
            parts = urlsplit(base_url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"node url: must be http://host:port, got {base_url!r}")
            origin = (parts.hostname, parts.port or 80)
            self._origins[base_url] = origin
        return origin

    async def send(self, base_url: str, method: str, target: str,
                   headers: list[tuple[str, str]], body: bytes) -> UpstreamResponse:
        """Send one request; returns once the answer's head arrived. Raises an
        `UpstreamError` subclass: connect (timeout), read (timeout)."""
        origin = self._origin(base_url)
        host, port = origin
        sent = [("host", f"{host}:{port}"), *headers]
        if body or method not in ("GET", "HEAD"):
            sent.append(("content-length", str(len(body))))
        while True:
            connection, reused = self._checkout(origin)
            if connection is None:
                connection = await self._connect(origin)
            try:
                return await self._exchange(origin, connection, method, target, sent, body,
                                            reused)
            except _Stale:
                connection.close()  # closed by the node while idle: send again on a new one
            except BaseException:
                connection.close()
                raise

    async def _exchange(self, origin: tuple[str, int], connection: _Connection, method: str,
                        target: str, headers: list[tuple[str, str]], body: bytes,
                        reused: bool) -> UpstreamResponse:
        state = connection.h11
        try:
            data = state.send(h11.Request(method=method, target=target, headers=headers)) or b""
            if body:
                data += state.send(h11.Data(data=body)) or b""
            data += state.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as error:
            raise UpstreamReadError(f"cannot send this request: {error}") from None
        try:
            connection.writer.write(data)
            transport = connection.writer.transport
            if transport.get_write_buffer_size() > 65536:
                async with asyncio.timeout(self.timeouts.write_s):
                    await connection.writer.drain()
        except TimeoutError:
            raise UpstreamReadTimeout(
                f"could not send the request within {self.timeouts.write_s:g} s") from None
        except OSError as error:
            if reused:
                raise _Stale from None
            raise UpstreamReadError(f"sending failed: {error}") from None
        received = False
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as error:
                if reused and not received:
                    raise _Stale from None
                raise UpstreamReadError(f"malformed answer: {error}") from None
            if event is h11.NEED_DATA:
                try:
                    chunk = await self._read(connection)
                except UpstreamReadError:
                    if reused and not received:
                        raise _Stale from None
                    raise
                if not chunk and reused and not received:
                    raise _Stale
                received = received or bool(chunk)
                state.receive_data(chunk)
            elif type(event) is h11.Response:
                answer_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                                  for k, v in event.headers]
                return UpstreamResponse(self, origin, connection, event.status_code,
                                        answer_headers)
            elif type(event) is h11.InformationalResponse:
                continue
            else:
                raise UpstreamReadError(f"the node closed the connection before answering "
                                        f"({type(event).__name__})")

    async def _read(self, connection: _Connection) -> bytes:
        try:
            async with asyncio.timeout(self.timeouts.read_s):
                return await connection.reader.read(_READ_SIZE)
        except TimeoutError:
            raise UpstreamReadTimeout(
                f"no data from the node within {self.timeouts.read_s:g} s") from None
        except OSError as error:
            raise UpstreamReadError(f"reading failed: {error}") from None

    async def _connect(self, origin: tuple[str, int]) -> _Connection:
        host, port = origin
        try:
            async with asyncio.timeout(self.timeouts.connect_s):
                reader, writer = await asyncio.open_connection(host, port, limit=_READ_SIZE)
        except TimeoutError:
            raise UpstreamConnectTimeout(f"{host}:{port} did not accept a connection within "
                                         f"{self.timeouts.connect_s:g} s") from None
        except OSError as error:
            raise UpstreamConnectError(f"cannot connect to {host}:{port}: {error}") from None
        self.opened += 1
        return _Connection(reader, writer)

    def _checkout(self, origin: tuple[str, int]) -> tuple[_Connection | None, bool]:
        idle = self._idle.get(origin)
        if not idle:
            return None, False
        expired_before = time.monotonic() - self.timeouts.keepalive_expiry_s
        while idle:
            connection = idle.pop()
            if connection.idle_since_s >= expired_before and connection.usable:
                return connection, True
            connection.close()
        return None, False

    def _checkin(self, origin: tuple[str, int], connection: _Connection) -> None:
        state = connection.h11
        if state.our_state is not h11.DONE or state.their_state is not h11.DONE:
            connection.close()  # the node or the request said `Connection: close`
            return
        try:
            state.start_next_cycle()
        except h11.LocalProtocolError:
            connection.close()
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle or not connection.usable:
            connection.close()
            return
        connection.idle_since_s = time.monotonic()
        idle.append(connection)

    async def aclose(self) -> None:
        """Close every idle connection (those lent out close with their answers)."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
