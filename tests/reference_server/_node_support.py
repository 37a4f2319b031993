"""A real node served by uvicorn on a free 127.0.0.1 port in a thread, for node tests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from served_app import serve

from reference_server._node_app import create_node_app
from reference_server._node_runtime import Node

ADMIN_TOKEN = "test-admin-token-3f9a"


@dataclass
class ServedNode:
    node: Node
    url: str
    client: httpx.Client
    admin: httpx.Client

    def scrape(self) -> str:
        response = self.client.get("/metrics")
        assert response.status_code == 200
        return response.text

    def metric(self, name: str, **labels: str) -> float:
        return metric_values(self.scrape(), name, **labels)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_values(text: str, name: str, **labels: str) -> float:
    """The sum of the exposition's samples named exactly `name` whose labels include `labels`
    (read line by line: prometheus_client's parser renames dcgm's upper-case `_TOTAL`
    counters)."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        found = dict(_LABEL.findall(match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


@contextmanager
def serve_node(node: Node) -> Iterator[ServedNode]:
    with serve(create_node_app(node, exit_process=False), lifespan="on",
               start_timeout_s=30) as url, httpx.Client(base_url=url, timeout=30) as client, \
            httpx.Client(base_url=url, timeout=30,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        yield ServedNode(node, url, client, admin)


def wait_until(check: object, *, what: str, timeout_s: float = 20.0) -> None:
    """Poll `check()` until it is true; fail naming `what` after `timeout_s` (a wait, not a
    timing assertion: it only bounds how long a broken build takes to fail)."""
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)
