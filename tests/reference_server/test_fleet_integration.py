"""`inferops fleet up` for real: torch nodes behind the router, completions through it, a
cycle through the admin API, and a SIGTERM that leaves no node process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _router_support import CLIENT, free_port_block, wait_until

from remediation import NodeStatus, ReferenceFleetDriver

pytestmark = pytest.mark.integration

TOKEN = "fleet-integration-token-5d2a"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port_block(3)
    log_path = tmp_path / "fleet.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inferops", "fleet", "up", "--nodes", "2", "--port", str(port),
             "--gpu-backend", "sim", "--device", "cpu"],
            env={**{k: v for k, v in os.environ.items() if k != "INFEROPS_API_KEYS"},
                 "INFEROPS_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            yield process, port, log_path
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fleet_up_serves_cycles_and_stops_cleanly(
    fleet: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    process, port, log_path = fleet
    url = f"http://127.0.0.1:{port}"

    def healthy_nodes() -> int:
        assert process.poll() is None, log_path.read_text(errors="replace")
        try:
            return int(CLIENT.get(f"{url}/health", timeout=2.0).json()["healthy_nodes"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1

    wait_until(lambda: healthy_nodes() == 2, 150.0, "2 healthy nodes", interval_s=0.5)
    printed = re.search(r"INFEROPS_API_KEYS is not set and no --api-keys-file; generated a "
                        r"client API key for this run: (sk-inferops-\S+)$",
                        log_path.read_text(errors="replace"), re.MULTILINE)
    assert printed is not None, log_path.read_text(errors="replace")
    key = {"Authorization": f"Bearer {printed.group(1)}"}
    denied = CLIENT.post(f"{url}/v1/completions", timeout=60.0, json={"prompt": "x"})
    assert denied.status_code == 401

    answer = CLIENT.post(f"{url}/v1/completions", timeout=60.0, headers=key, json={
        "model": "inferops-tiny", "prompt": "The on-call engineer", "max_tokens": 6})
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["completion_tokens"] == 6

    with CLIENT.stream("POST", f"{url}/v1/chat/completions", timeout=60.0, headers=key, json={
        "model": "inferops-tiny", "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 5, "stream": True,
    }) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [line for line in stream.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert len(events) >= 3

    metrics = CLIENT.get(f"{url}/metrics").text
    assert 'http_requests_total{handler="/v1/completions",method="POST",status="2xx"} 1.0' in (
        metrics)
    assert 'inferops_router_node_healthy{node="node-1"} 1.0' in metrics
    assert 'inferops_gateway_tokens_total{api_key_name="key-' in metrics
    assert printed.group(1) not in metrics

    output = log_path.read_text(errors="replace")
    pids = {name: int(pid) for name, pid in
            re.findall(r"^(node-\d) serving on \S+ \(pid (\d+)\)$", output, re.MULTILINE)}
    assert set(pids) == {"node-0", "node-1"}, output

    with ReferenceFleetDriver(url, admin_token=TOKEN, cycle_timeout_s=150.0) as driver:
        driver.cycle("node-1")
        states = {state.name: state for state in driver.nodes()}
    assert states["node-1"].status == NodeStatus.SERVING and states["node-1"].healthy
    assert not alive(pids["node-1"])  # the cycle replaced the process
    after_cycle = CLIENT.post(f"{url}/v1/completions", timeout=60.0, headers=key, json={
        "prompt": "again", "max_tokens": 2})
    assert after_cycle.status_code == 200

    live = [int(pid) for pid in re.findall(r"started node-\d \(pid (\d+)\)",
                                            log_path.read_text(errors="replace"))]
    assert len(live) == 3  # node-0, node-1, and node-1 again
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, log_path.read_text(errors="replace")
    assert not any(alive(pid) for pid in live), "a node process outlived the fleet"
    final = log_path.read_text(errors="replace")
    assert "Fleet stopped (SIGTERM); all nodes stopped" in final
    assert TOKEN not in final
