"""What the router adds on loopback, against calling the node directly.

A minimal upstream (raw asyncio HTTP/1.1, keep-alive; `/v1/completions` answers a small JSON
body at once, or with `"stream": true` an SSE stream of `events` events, each written as its
own chunk) stands in for a node, so only the router's own cost is measured. The router
(`Router` + `create_router_app` under uvicorn, no API keys) runs in its own process pinned to
one core; the upstream and the client share the other. The client is a blocking keep-alive
socket client (no HTTP library in the measured path):

- non-streaming: N sequential small requests, direct and through the router in alternating
  blocks (drift on a shared machine hits both sides); added p50/p99 = router - direct;
- streaming TTFB: the same for the time to the first SSE event of an 8-event stream;
- relay throughput: `streams` concurrent streams of `events` events each through the router;
  events/s relayed, the router on one core.

Targets (issue 3): <= 1 ms p50 and <= 3 ms p99 added, >= 30k relayed SSE events/s.
Run `python -m bench router_overhead [--quick]`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ._common import Options, Result, percentile

NAME = "router_overhead"
HOST = "127.0.0.1"
TOKEN = "bench-router-overhead-token"
SMALL_JSON = json.dumps({"id": "cmpl-1", "object": "text_completion", "model": "inferops-tiny",
                         "choices": [{"index": 0, "text": " ok", "finish_reason": "length"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                                   "total_tokens": 4}}).encode()
EVENT = (b'data: {"id":"cmpl-1","object":"text_completion","model":"inferops-tiny",'
         b'"choices":[{"index":0,"text":" tok","finish_reason":null}]}\n\n')
DONE = b"data: [DONE]\n\n"


# -- the upstream: a stand-in node that answers instantly ----------------------------------

class _Upstream(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self._name = name
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._streaming: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < head_end + 4 + length:
                return
            body = self._buffer[head_end + 4:head_end + 4 + length]
            self._buffer = self._buffer[head_end + 4 + length:]
            self._answer(head.split(" ", 2)[1], body)

    def _answer(self, path: str, body: bytes) -> None:
        assert self._transport is not None
        if path == "/health":
            payload = json.dumps({"status": "ok", "name": self._name}).encode()
            self._send(b"application/json", payload)
            return
        request = json.loads(body) if body else {}
        if not request.get("stream"):
            self._send(b"application/json", SMALL_JSON)
            return
        events = int(request.get("events", 8))
        self._transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                              b"transfer-encoding: chunked\r\n\r\n")
        self._streaming = asyncio.ensure_future(self._stream(events))

    async def _stream(self, events: int) -> None:
        assert self._transport is not None
        chunk = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)
        for i in range(events):
            self._transport.write(chunk)
            if i % 16 == 15:
                await asyncio.sleep(0)  # let other streams and reads in, as a node would
        self._transport.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(DONE), DONE))

    def _send(self, content_type: bytes, payload: bytes) -> None:
        assert self._transport is not None
        self._transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type
                              + b"\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)


def _serve_upstream(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Upstream("node-0"), HOST, port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _serve_router(port: int, upstream_port: int) -> None:
    import logging

    import uvicorn

    from reference_server import NodeSpec, Router, create_router_app

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # the router on one core
    logging.basicConfig(level=logging.WARNING)
    # a busy box must not fail the upstream's health check mid-run (503: no healthy node)
    router = Router([NodeSpec("node-0", HOST, upstream_port)], admin_token=TOKEN,
                    health_interval_s=2.0, health_timeout_s=30.0)
    uvicorn.run(create_router_app(router), host=HOST, port=port, log_level="warning",
                access_log=False)


# -- the client: blocking keep-alive sockets, no HTTP library in the measured path ---------

class _Connection:
    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection((HOST, port), timeout=30)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._port = port
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def _request(self, body: bytes) -> None:
        self._sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: %s:%d\r\n"
                           b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                           % (HOST.encode(), self._port, len(body), body))

    def _read_head(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if " 200 " not in lines[0] + " ":
            raise RuntimeError(f"the server answered {lines[0]!r}")
        return {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}

    def _fill(self) -> None:
        data = self._sock.recv(262144)
        if not data:
            raise RuntimeError("the server closed the connection")
        self._buffer += data

    def small(self, body: bytes) -> float:
        """Seconds until the whole small answer arrived."""
        started = time.perf_counter()
        self._request(body)
        headers = self._read_head()
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self._buffer) < length:
                self._fill()
            self._buffer = self._buffer[length:]
        else:
            self._read_chunked(lambda _: None)
        return time.perf_counter() - started

    def stream(self, body: bytes) -> tuple[float, float, int]:
        """(seconds to the first event, seconds to the end, events received)."""
        started = time.perf_counter()
        first: list[float] = []
        count = [0]

        def on_data(data: bytes) -> None:
            if not first and b"data: " in data:
                first.append(time.perf_counter() - started)
            count[0] += len(data)

        self._request(body)
        self._read_head()
        self._read_chunked(on_data)
        return first[0], time.perf_counter() - started, (count[0] - len(DONE)) // len(EVENT)

    def _read_chunked(self, on_data: Any) -> None:
        while True:
            while b"\r\n" not in self._buffer:
                self._fill()
            size_line, _, self._buffer = self._buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self._buffer) < size + 2:
                self._fill()
            if size == 0:
                self._buffer = self._buffer[2:]
                return
            on_data(self._buffer[:size])
            self._buffer = self._buffer[size + 2:]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process used so far: the router's cost per request
    without the scheduling delay a busy machine adds to wall-clock numbers."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a benchmark server exited with {process.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after 60 s")


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.router_overhead", *args],
                            stdin=subprocess.DEVNULL)


def _alternating(direct: _Connection, routed: _Connection, measure: Any, total: int,
                 block: int = 50) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(0, total, block):
        theirs += [measure(direct) for _ in range(block)]
        ours += [measure(routed) for _ in range(block)]
    return theirs, ours


def _relay_rate(port: int, streams: int, events: int) -> tuple[float, int]:
    body = json.dumps({"model": "inferops-tiny", "prompt": "x", "stream": True,
                       "events": events}).encode()
    connections = [_Connection(port) for _ in range(streams)]
    received = [0] * streams
    errors: list[BaseException] = []

    def one(index: int) -> None:
        try:
            received[index] = connections[index].stream(body)[2]
        except BaseException as error:  # reported after the join
            errors.append(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    for connection in connections:
        connection.close()
    if errors:
        raise RuntimeError(f"a relayed stream failed: {errors[0]}")
    total = sum(received)
    return total / wall_s, total


def run(options: Options) -> Result:
    requests = 600 if options.quick else 3000
    streams, events = (4, 5000) if options.quick else (8, 20000)
    upstream_port, router_port = _free_port(), _free_port()
    upstream = _spawn("--upstream", str(upstream_port))
    router = _spawn("--router", str(router_port), str(upstream_port))
    try:
        _wait_listening(upstream_port, upstream)
        _wait_listening(router_port, router)
        time.sleep(1.5)  # the router's first health check marks the node serving
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})  # client and upstream stay off the router's core
        small = json.dumps({"model": "inferops-tiny", "prompt": "hi", "max_tokens": 1}).encode()
        stream8 = json.dumps({"model": "inferops-tiny", "prompt": "hi", "stream": True,
                              "events": 8}).encode()
        direct, routed = _Connection(upstream_port), _Connection(router_port)
        for _ in range(200):  # warm both paths (connection pools, code paths)
            direct.small(small)
            routed.small(small)
            routed.stream(stream8)
        cpu_before = _cpu_s(router.pid)
        plain_direct, plain_routed = _alternating(direct, routed, lambda c: c.small(small),
                                                  requests)
        cpu_small_ms = (_cpu_s(router.pid) - cpu_before) * 1000 / len(plain_routed)
        ttfb_direct, ttfb_routed = _alternating(direct, routed, lambda c: c.stream(stream8)[0],
                                                requests)
        direct.close()
        routed.close()
        _relay_rate(router_port, streams, events // 10)  # warm-up
        cpu_before = _cpu_s(router.pid)
        rate, relayed = _relay_rate(router_port, streams, events)
        cpu_event_us = (_cpu_s(router.pid) - cpu_before) * 1e6 / relayed
        direct_rate, _ = _relay_rate(upstream_port, streams, events)
    finally:
        for process in (router, upstream):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def ms(values: list[float], q: float) -> float:
        return percentile(values, q) * 1000

    added = {
        "small_p50_ms": ms(plain_routed, 50) - ms(plain_direct, 50),
        "small_p99_ms": ms(plain_routed, 99) - ms(plain_direct, 99),
        "stream_ttfb_p50_ms": ms(ttfb_routed, 50) - ms(ttfb_direct, 50),
        "stream_ttfb_p99_ms": ms(ttfb_routed, 99) - ms(ttfb_direct, 99),
    }
    results: dict[str, Any] = {
        "small_direct_ms": {"p50": ms(plain_direct, 50), "p99": ms(plain_direct, 99)},
        "small_routed_ms": {"p50": ms(plain_routed, 50), "p99": ms(plain_routed, 99)},
        "stream_ttfb_direct_ms": {"p50": ms(ttfb_direct, 50), "p99": ms(ttfb_direct, 99)},
        "stream_ttfb_routed_ms": {"p50": ms(ttfb_routed, 50), "p99": ms(ttfb_routed, 99)},
        "added_ms": added,
        "relayed_events_per_s": rate,
        "router_cpu_ms_per_small_request": cpu_small_ms,
        "router_cpu_us_per_relayed_event": cpu_event_us,
        "relayed_events": relayed,
        "direct_events_per_s": direct_rate,
        "targets": {"added_p50_ms": 1.0, "added_p99_ms": 3.0, "relayed_events_per_s": 30000},
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    table = [
        ("small request added p50 / p99",
         f"{added['small_p50_ms']:.3f} / {added['small_p99_ms']:.3f} ms  (target <= 1 / 3)"),
        ("  direct p50 / p99", f"{ms(plain_direct, 50):.3f} / {ms(plain_direct, 99):.3f} ms"),
        ("stream TTFB added p50 / p99",
         f"{added['stream_ttfb_p50_ms']:.3f} / {added['stream_ttfb_p99_ms']:.3f} ms"),
        ("  direct p50 / p99", f"{ms(ttfb_direct, 50):.3f} / {ms(ttfb_direct, 99):.3f} ms"),
        ("relayed SSE events/s (router on 1 core)", f"{rate:,.0f}  (target >= 30,000)"),
        ("  direct events/s (same client)", f"{direct_rate:,.0f}"),
        ("router CPU per small request / per event",
         f"{cpu_small_ms:.2f} ms / {cpu_event_us:.1f} us"),
    ]
    return Result(
        params={"requests_per_side": requests, "streams": streams, "events_per_stream": events,
                "router_cores": 1, "client": "blocking keep-alive sockets",
                "upstream": "raw asyncio HTTP/1.1"},
        results=results, table=table,
    )


if __name__ == "__main__":
    if sys.argv[1] == "--upstream":
        _serve_upstream(int(sys.argv[2]))
    elif sys.argv[1] == "--router":
        _serve_router(int(sys.argv[2]), int(sys.argv[3]))
