"""The router's upstream pool against a scripted raw HTTP/1.1 server on 127.0.0.1.

The server answers each request with the bytes a test gives it (so every framing the pool
must decode is exact), records what it received on which connection, and can close a
connection after an answer the way a node's idle timeout does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from reference_server._exceptions import (
    UpstreamConnectError,
    UpstreamReadError,
    UpstreamReadTimeout,
)
from reference_server._upstream_pool import UpstreamPool, UpstreamTimeouts

JSON_OK = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n"
           b'{"ok":true}')

@dataclass
class Scripted:
    """A raw server: `answers[i]` is written for the i-th request (the last one repeats)."""

    answers: list[bytes]
    close_after_answer: bool = False
    never_answer: bool = False
    received: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    """(connection number, request head, body) per request."""
    connections: int = 0
    closed_by_client: list[int] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client.append(number)
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.received.append((number, head, body))
                if self.never_answer:
                    if not await reader.read(1):
                        self.closed_by_client.append(number)
                    return
                answer = self.answers[min(len(self.received), len(self.answers)) - 1]
                if b"<release>" in answer:  # send the part before it, wait for the test
                    first, _, rest = answer.partition(b"<release>")
                    writer.write(first)
                    await writer.drain()
                    await self.release.wait()
                    answer = rest
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    return
        except asyncio.CancelledError:
            return  # the test's loop is closing
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def scripted(*answers: bytes, close_after_answer: bool = False,
                   never_answer: bool = False) -> AsyncIterator[Scripted]:
    server_state = Scripted(list(answers), close_after_answer=close_after_answer,
                            never_answer=never_answer)
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    try:
        yield server_state
    finally:
        server_state.release.set()
        server.close()


def base(server: Scripted) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_a_kept_alive_connection_carries_the_next_request() -> None:
    pool = UpstreamPool()
    async with scripted(JSON_OK) as server:
        bodies = []
        for prompt in (b'{"prompt":"a"}', b'{"prompt":"b"}'):
            answer = await pool.send(base(server), "POST", "/v1/completions",
                                     [("content-type", "application/json")], prompt)
            bodies.append((answer.status_code, answer.header("content-type"), await answer.read()))
            await answer.aclose()
        assert bodies == [(200, "application/json", b'{"ok":true}')] * 2
        assert [number for number, _, _ in server.received] == [1, 1]
        assert server.received[1][1] == (
            b"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
            b"content-type: application/json\r\ncontent-length: 14\r\n\r\n" % server.port)
        assert server.received[1][2] == b'{"prompt":"b"}'
        assert pool.opened == 1
        assert pool.idle_count(base(server)) == 1
        await pool.aclose()


async def test_a_pooled_connection_the_node_closed_is_replaced_before_the_first_byte() -> None:
    pool = UpstreamPool()
    async with scripted(JSON_OK, close_after_answer=True) as server:
        first = await pool.send(base(server), "GET", "/v1/models", [], b"")
        assert await first.read() == b'{"ok":true}'
        assert pool.idle_count(base(server)) == 1
        await asyncio.sleep(0)  # (the server's close may or may not have arrived: both work)
        second = await pool.send(base(server), "GET", "/v1/models", [], b"")
        assert (second.status_code, await second.read()) == (200, b'{"ok":true}')
        assert [number for number, _, _ in server.received] == [1, 2]
        assert pool.opened == 2
        await pool.aclose()


async def test_an_idle_connection_older_than_the_keepalive_expiry_is_not_reused() -> None:
    pool = UpstreamPool(UpstreamTimeouts(keepalive_expiry_s=0.0))
    async with scripted(JSON_OK) as server:
        for _ in range(2):
            answer = await pool.send(base(server), "GET", "/v1/models", [], b"")
            assert await answer.read() == b'{"ok":true}'
        assert [number for number, _, _ in server.received] == [1, 2]
        await pool.aclose()


@pytest.mark.parametrize(("raw", "status", "headers", "body", "reused"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Node: n0\r\n\r\nhello",
     200, [("content-length", "5"), ("x-node", "n0")], b"hello", True),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
     200, [("transfer-encoding", "chunked")], b"hello, world", True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n",
     200, [("transfer-encoding", "chunked")], b"abc", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n"
     b"content-length: 4\r\n\r\nbusy",
     503, [("content-length", "4")], b"busy", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, [], b"", True),
    (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi",
     200, [("connection", "close"), ("content-length", "2")], b"hi", False),
    (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the node closes",
     200, [("content-type", "text/plain")], b"until the node closes", False),
], ids=["content-length", "chunked-with-extension", "chunked-with-trailer",
        "interim-100-then-503", "no-content", "connection-close", "read-until-close"])
async def test_answer_framings_are_decoded_exactly(
        raw: bytes, status: int, headers: list[tuple[str, str]], body: bytes,
        reused: bool) -> None:
    pool = UpstreamPool()
    until_close = b"content-length" not in raw.lower() and b"chunked" not in raw.lower()
    async with scripted(raw, close_after_answer=until_close and status != 204) as server:
        answer = await pool.send(base(server), "GET", "/v1/models", [], b"")
        assert (answer.status_code, answer.headers, await answer.read()) == (
            status, headers, body)
        assert pool.idle_count(base(server)) == (1 if reused else 0)
        await pool.aclose()


async def test_a_stream_is_handed_over_as_it_arrives_not_when_it_ends() -> None:
    pool = UpstreamPool()
    stream = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
              b"transfer-encoding: chunked\r\n\r\n"
              b"d\r\ndata: first\n\n\r\n<release>"
              b"e\r\ndata: second\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    async with scripted(stream) as server:
        answer = await pool.send(base(server), "POST", "/v1/completions", [], b"{}")
        assert await answer.next_chunk() == b"data: first\n\n"  # the rest is not sent yet
        server.release.set()
        rest = b""
        while chunk := await answer.next_chunk():
            rest += chunk
        assert rest == b"data: second\n\ndata: [DONE]\n\n"
        assert pool.idle_count(base(server)) == 1
        await pool.aclose()


async def test_a_node_that_never_answers_times_out_on_read() -> None:
    pool = UpstreamPool(UpstreamTimeouts(read_s=0.2))
    async with scripted(JSON_OK, never_answer=True) as server:
        with pytest.raises(UpstreamReadTimeout) as caught:
            await pool.send(base(server), "GET", "/v1/models", [], b"")
        assert str(caught.value) == "no data from the node within 0.2 s"
        assert pool.idle_count(base(server)) == 0
        await pool.aclose()


async def test_a_refused_connection_names_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(UpstreamConnectError) as caught:
            await UpstreamPool().send(f"http://127.0.0.1:{port}", "GET", "/health", [], b"")
    assert str(caught.value).startswith(f"cannot connect to 127.0.0.1:{port}: ")


@pytest.mark.parametrize(("raw", "message"), [
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
     "malformed chunked body: size line b'zz'"),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcXX",
     "malformed chunked body: no CRLF after a chunk"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
     "the node closed the connection in the middle of an answer"),
    (b"SPDY/3 200 OK\r\n\r\n", "malformed status line 'SPDY/3 200 OK'"),
])
async def test_a_malformed_answer_is_a_read_error_naming_what_is_wrong(
        raw: bytes, message: str) -> None:
    pool = UpstreamPool()
    async with scripted(raw, close_after_answer=True) as server:
        with pytest.raises(UpstreamReadError) as caught:
            answer = await pool.send(base(server), "GET", "/v1/models", [], b"")
            await answer.read()
        assert str(caught.value) == message
        assert pool.idle_count(base(server)) == 0
        await pool.aclose()


async def test_cancelling_a_request_closes_its_connection_to_the_node() -> None:
    pool = UpstreamPool()
    async with scripted(JSON_OK, never_answer=True) as server:
        sending = asyncio.ensure_future(pool.send(base(server), "POST", "/v1/completions", [],
                                                  b'{"stream":true}'))
        while not server.received:
            await asyncio.sleep(0.01)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        for _ in range(200):
            if server.closed_by_client:
                break
            await asyncio.sleep(0.01)
        assert server.closed_by_client == [1]  # the node sees its client go away
        assert pool.idle_count(base(server)) == 0
        await pool.aclose()


async def test_an_answer_closed_before_its_end_is_never_reused() -> None:
    pool = UpstreamPool()
    stream = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
              b"3\r\none\r\n<release>3\r\ntwo\r\n0\r\n\r\n")
    async with scripted(stream, JSON_OK) as server:
        answer = await pool.send(base(server), "POST", "/v1/completions", [], b"{}")
        assert await answer.next_chunk() == b"one"
        await answer.aclose()
        server.release.set()
        again = await pool.send(base(server), "GET", "/v1/models", [], b"")
        assert await again.read() == b'{"ok":true}'
        assert [number for number, _, _ in server.received] == [1, 2]
        await pool.aclose()
