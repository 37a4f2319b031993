"""http_sd: target groups fetched from a real HTTP endpoint, the last good set kept on error."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType

import pytest

from collectors import DiscoveryError, HttpDiscovery, TargetGroup, parse_http_target_groups


class Endpoint:
    """A real HTTP server on 127.0.0.1 whose answer (status, body) the test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"[]"
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sd/targets"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def answer(self, groups: object, status: int = 200) -> None:
        self.status, self.body = status, json.dumps(groups).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.stop()


NODES = [
    {
        "targets": ["127.0.0.1:18001"],
        "labels": {
            "node": "node-0",
            "model_name": "inferops-tiny",
            "__meta_inferops_status": "serving",
            "__meta_inferops_pid": "4242",
        },
    },
    {"targets": ["127.0.0.1:18002"], "labels": {"node": "node-1", "__scheme__": "https"}},
]


def test_target_groups_are_read_as_prometheus_reads_them(endpoint: Endpoint) -> None:
    endpoint.answer(NODES)
    discovery = HttpDiscovery(endpoint.url, refresh_interval_s=1.0, timeout_s=2.0)
    try:
        assert discovery.refresh() is True
        assert discovery.groups == (
            TargetGroup(
                ("127.0.0.1:18001",),
                MappingProxyType({"node": "node-0", "model_name": "inferops-tiny"}),
                f"{endpoint.url}[0]",
            ),
            TargetGroup(
                ("127.0.0.1:18002",),
                MappingProxyType({"node": "node-1", "__scheme__": "https"}),
                f"{endpoint.url}[1]",
            ),
        )
        assert discovery.error is None
        assert discovery.refresh() is False  # the same answer again: no change
    finally:
        discovery.close()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b'{"error": "boom"}', "answered HTTP 500, expected 200"),
        (200, b"[{", "line 1 column 3: not valid JSON"),
        (200, b'{"targets": []}', "expected a list of target groups, got dict"),
        (200, b'[{"targets": ["no-port"]}]', "[0]: targets: expected host:port, got 'no-port'"),
        (200, b'[{"targets": [], "labels": {"a": 1}}]', "[0]: labels: value of 'a' must be"),
        (200, b"x" * 300, "answer is larger than 256 bytes"),
    ],
)
def test_a_bad_answer_keeps_the_last_good_groups_and_says_why(
    endpoint: Endpoint,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    error: str,
) -> None:
    endpoint.answer(NODES[:1])
    discovery = HttpDiscovery(endpoint.url, max_body_bytes=256)
    try:
        discovery.refresh()
        good = discovery.groups
        endpoint.status, endpoint.body = status, body
        with caplog.at_level(logging.ERROR, "inferops.collectors.http_discovery"):
            assert discovery.refresh() is False
        assert discovery.groups == good
        assert discovery.error is not None and discovery.error.startswith(endpoint.url)
        assert error in discovery.error
        assert [r.getMessage() for r in caplog.records] == [
            f"http_sd {discovery.error}; keeping the last good target groups (1)"
        ]
    finally:
        discovery.close()


def test_an_unreachable_endpoint_keeps_the_last_good_groups(endpoint: Endpoint) -> None:
    endpoint.answer(NODES[:1])
    discovery = HttpDiscovery(endpoint.url, timeout_s=2.0)
    try:
        discovery.refresh()
        endpoint.stop()
        assert discovery.refresh() is False
        assert [g.targets for g in discovery.groups] == [("127.0.0.1:18001",)]
        assert discovery.error is not None
        assert discovery.error.startswith(f"{endpoint.url}: cannot fetch: ")
    finally:
        discovery.close()


def test_a_silent_endpoint_times_out() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/sd"
        discovery = HttpDiscovery(url, timeout_s=0.2)
        try:
            assert discovery.refresh() is False
            assert discovery.error == f"{url}: did not answer in time"
        finally:
            discovery.close()


async def test_run_reports_each_change_once(endpoint: Endpoint) -> None:
    endpoint.answer(NODES[:1])
    discovery = HttpDiscovery(endpoint.url, refresh_interval_s=0.02)
    changes: list[tuple[str, ...]] = []

    async def on_change(groups: tuple[TargetGroup, ...]) -> None:
        changes.append(tuple(t for g in groups for t in g.targets))

    running = asyncio.create_task(discovery.run(on_change))
    try:
        for _ in range(200):
            if changes:
                break
            await asyncio.sleep(0.02)
        endpoint.answer(NODES)
        for _ in range(200):
            if len(changes) == 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # more refreshes of an unchanged answer report nothing
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        discovery.close()
    assert changes == [("127.0.0.1:18001",), ("127.0.0.1:18001", "127.0.0.1:18002")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://x/sd"}, "http_sd url must be an http(s) URL, got 'ftp://x/sd'"),
        ({"url": "http://x/sd", "refresh_interval_s": 0.0}, "refresh_interval_s must be"),
        ({"url": "http://x/sd", "timeout_s": float("nan")}, "timeout_s must be"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HttpDiscovery(**kwargs)  # type: ignore[arg-type]


def test_parse_names_the_url_and_group() -> None:
    with pytest.raises(DiscoveryError) as raised:
        parse_http_target_groups('[{"targets": [], "extra": 1}]', url="http://r/sd")
    assert str(raised.value) == (
        "http://r/sd[0]: unknown field 'extra' (expected targets, labels)"
    )


def test_credentials_in_the_url_are_never_shown(endpoint: Endpoint) -> None:
    address = endpoint.url.removeprefix("http://")
    endpoint.stop()  # nothing listens there any more
    discovery = HttpDiscovery(f"http://sd-user:s3cret@{address}", timeout_s=2.0)
    try:
        assert discovery.refresh() is False
        assert discovery.error is not None
        assert discovery.error.startswith(f"http://{address}: cannot fetch: ")
        assert "s3cret" not in discovery.error and "sd-user" not in discovery.error
    finally:
        discovery.close()
