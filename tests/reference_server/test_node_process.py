"""`python -m reference_server.node` as the fleet starts it: a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "process-test-token-7c1e"
TINY_ARGS = ("--n-layers", "2", "--d-model", "64", "--context-len", "128",
             "--kv-cache-tokens", "1024", "--gpu-backend", "sim", "--device", "cpu")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def node_env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "INFEROPS_ADMIN_TOKEN"}
    env["PYTHONUNBUFFERED"] = "1"
    if token is not None:
        env["INFEROPS_ADMIN_TOKEN"] = token
    return env


def run_node(*args: str, token: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_server.node", *args], cwd=REPO, env=node_env(token),
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    log = tmp_path / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reference_server.node", "--name", "node-7", "--port",
             str(port), *TINY_ARGS],
            cwd=REPO, env=node_env(TOKEN), stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the node exited ({process.returncode}): {log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the node did not become healthy: {log.read_text()}")
            time.sleep(0.1)
        yield process, url, log
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_node_refuses_to_start_without_an_admin_token() -> None:
    result = run_node("--port", str(free_port()), token=None)
    assert result.returncode == 2
    assert "INFEROPS_ADMIN_TOKEN" in result.stderr


def test_node_rejects_a_kv_budget_below_one_context() -> None:
    result = run_node("--kv-cache-tokens", "10", "--device", "cpu", token=TOKEN)
    assert result.returncode == 2
    assert "--kv-cache-tokens (10) must hold at least one full context" in result.stderr


def test_crash_fault_exits_the_process_with_status_1(
    node_process: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, url, log = node_process
    response = httpx.post(f"{url}/v1/completions", json={"prompt": "hi", "max_tokens": 4},
                          timeout=30)
    assert response.status_code == 200
    assert httpx.get(f"{url}/health").json()["name"] == "node-7"
    response = httpx.post(f"{url}/admin/faults", json={"kind": "crash"},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"faults": [{"kind": "crash"}]}
    assert process.wait(timeout=15) == 1
    text = log.read_text()
    assert "fault injected" in text and "crash" in text
    assert TOKEN not in text


def test_node_stops_cleanly_on_sigterm(
    node_process: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, url, log = node_process
    response = httpx.post(f"{url}/admin/drain", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.json() == {"draining": True}
    process.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    text = log.read_text()
    assert "node-7: draining" in text and "node-7: stopped" in text
    assert TOKEN not in text
