"""The router's HTTP/1.1 client to its nodes: keep-alive connections over asyncio streams.

httpx spent ~40 % of the router's CPU per relayed request (a profile under load); the router
needs far less of a client: one origin per node, HTTP/1.1, bodies already in bytes, answers
relayed as raw bytes. So this pool keeps idle connections per origin (most recently used
first, closed after `keepalive_expiry_s` idle), writes a request in one `write`, and hands the
body back as it arrives, all the body bytes already buffered as one chunk (an event stream is
relayed in as few writes as the node allows, its events never parsed). h11 was tried first:
its per-event objects were most of the router's CPU per relayed SSE chunk, so the few framing
rules the router meets (content-length, chunked, read-until-close, 1xx, HEAD/204/304) are
decoded here on the buffered bytes.

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
    __slots__ = ("buffer", "idle_since_s", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.idle_since_s = 0.0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    @property
    def usable(self) -> bool:
        return not self.buffer and not self.writer.is_closing() and not self.reader.at_eof()


class _Stale(Exception):
    """A reused connection was closed by the node before it answered a byte."""


_LENGTH, _CHUNKED, _UNTIL_CLOSE, _NONE = range(4)
_MAX_HEAD_BYTES = 65536
_MAX_SIZE_LINE_BYTES = 1024


class UpstreamResponse:
    """An answer's status and headers; its body comes with `next_chunk`/`aiter_raw`/`read`.
    `aclose` must be called: it returns a fully read connection to the pool, else closes it.

    The body is decoded here (content-length, chunked, or until the node closes): a chunked
    body is taken apart on the buffered bytes without an event object per chunk, which
    was h11's cost per relayed SSE event."""

    def __init__(self, pool: UpstreamPool, origin: tuple[str, int], connection: _Connection,
                 status_code: int, headers: list[tuple[str, str]], framing: int,
                 length: int, reusable: bool) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: _Connection | None = connection
        self.status_code = status_code
        self.headers = headers
        """(lower-case name, value) pairs, as the node sent them."""
        self._framing = framing
        self._left = length  # body bytes (content-length) or chunk bytes still to come
        self._reusable = reusable
        self._chunk_state = 0  # 0: size line next, 1: in data, 2: CRLF after data, 3: trailers
        if framing == _NONE or (framing == _LENGTH and length == 0):
            self._finish()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def _finish(self) -> None:
        connection, self._connection = self._connection, None
        self._framing = _NONE
        if connection is not None:
            if self._reusable:
                self._pool._checkin(self._origin, connection)
            else:
                connection.close()

    async def next_chunk(self) -> bytes:
        """The body bytes buffered so far (waiting for some if none are); b"" at the end."""
        while (connection := self._connection) is not None:
            buffer = connection.buffer
            if self._framing == _CHUNKED:
                data = self._take_chunks(buffer)
            elif self._framing == _LENGTH:
                data = bytes(buffer[:self._left])
                del buffer[:len(data)]
                self._left -= len(data)
                if self._left == 0:
                    self._finish()
            else:  # until the node closes the connection
                data = bytes(buffer)
                buffer.clear()
            if data:
                return data
            if self._connection is None:
                return b""
            more = await self._pool._read(connection)
            if not more:
                if self._framing == _UNTIL_CLOSE:
                    self._finish()
                    return b""
                raise UpstreamReadError("the node closed the connection in the middle of "
                                        "an answer")
            buffer += more
        return b""

    def _take_chunks(self, buffer: bytearray) -> bytes:
        parts: list[bytes] = []
        while True:
            state = self._chunk_state
            if state == 1:
                if not buffer:
                    break
                data = bytes(buffer[:self._left])
                del buffer[:len(data)]
                parts.append(data)
                self._left -= len(data)
                if self._left == 0:
                    self._chunk_state = 2
            elif state == 2:
                if len(buffer) < 2:
                    break
                if buffer[:2] != b"\r\n":
                    raise UpstreamReadError("malformed chunked body: no CRLF after a chunk")
                del buffer[:2]
                self._chunk_state = 0
            elif state == 0:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_SIZE_LINE_BYTES:
                        raise UpstreamReadError("malformed chunked body: size line too long")
                    break
                try:
                    size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise UpstreamReadError(
                        f"malformed chunked body: size line {bytes(buffer[:end])[:40]!r}"
                    ) from None
                del buffer[:end + 2]
                if size < 0:
                    raise UpstreamReadError("malformed chunked body: negative size")
                self._left = size
                self._chunk_state = 1 if size else 3
            else:  # trailers, ended by an empty line
                if buffer[:2] == b"\r\n":
                    del buffer[:2]
                else:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > _MAX_HEAD_BYTES:
                            raise UpstreamReadError("malformed chunked body: trailers too long")
                        break
                    del buffer[:end + 4]
                self._finish()
                break
        return b"".join(parts)

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
        head = [f"{method} {target} HTTP/1.1\r\n"]
        for name, value in headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise UpstreamReadError(f"cannot send header {name!r}: a line break in it")
            head.append(f"{name}: {value}\r\n")
        head.append("\r\n")
        try:
            connection.writer.write("".join(head).encode("latin-1") + body)
            if connection.writer.transport.get_write_buffer_size() > 65536:
                async with asyncio.timeout(self.timeouts.write_s):
                    await connection.writer.drain()
        except TimeoutError:
            raise UpstreamReadTimeout(
                f"could not send the request within {self.timeouts.write_s:g} s") from None
        except UnicodeEncodeError as error:
            raise UpstreamReadError(f"cannot send a header: {error}") from None
        except OSError as error:
            if reused:
                raise _Stale from None
            raise UpstreamReadError(f"sending failed: {error}") from None
        buffer = connection.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD_BYTES:
                    raise UpstreamReadError(f"answer head over {_MAX_HEAD_BYTES} bytes")
                try:
                    more = await self._read(connection)
                except UpstreamReadError:
                    if reused and not buffer:
                        raise _Stale from None
                    raise
                if not more:
                    if reused and not buffer:
                        raise _Stale
                    raise UpstreamReadError("the node closed the connection before answering")
                buffer += more
                continue
            lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            del buffer[:end + 4]
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise UpstreamReadError(f"malformed status line {lines[0][:60]!r}")
            status = int(code)
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer (100 Continue): the real one follows
            answer_headers: list[tuple[str, str]] = []
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon or not name or name != name.strip():
                    raise UpstreamReadError(f"malformed header line {line[:60]!r}")
                answer_headers.append((name.lower(), value.strip()))
            return self._answer(origin, connection, method, version, status, answer_headers)

    def _answer(self, origin: tuple[str, int], connection: _Connection, method: str,
                version: str, status: int, headers: list[tuple[str, str]]) -> UpstreamResponse:
        """How the body is framed (RFC 9112 section 6.3) and whether the connection is
        reusable after it."""
        tokens = {t.strip().lower() for k, v in headers if k == "connection"
                  for t in v.split(",")}
        reusable = version == "HTTP/1.1" and "close" not in tokens
        encodings = [v.lower() for k, v in headers if k == "transfer-encoding"]
        lengths = {v for k, v in headers if k == "content-length"}
        framing, length = _UNTIL_CLOSE, 0
        if method == "HEAD" or status in (204, 304) or status < 200:
            framing = _NONE
        elif encodings:
            if not encodings[-1].rstrip().endswith("chunked"):
                reusable = False  # read until close
            else:
                framing = _CHUNKED
        elif lengths:
            value = lengths.pop() if len(lengths) == 1 else ""
            if not value.isdigit():
                raise UpstreamReadError(f"malformed content-length {sorted(lengths)!r}")
            framing, length = _LENGTH, int(value)
        if framing == _UNTIL_CLOSE:
            reusable = False
        return UpstreamResponse(self, origin, connection, status, headers, framing, length,
                                reusable)

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
