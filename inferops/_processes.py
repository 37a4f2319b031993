"""Child processes the demo starts (the fleet, the dashboard), stopped whatever happens."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from ._exceptions import DemoError


def free_port_block(count: int, *, host: str = "127.0.0.1", start: int = 18000) -> int:
    """The first port P such that P .. P+count-1 are all free on `host`."""
    for base in range(start, 60000, count + 1):
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise DemoError(f"no block of {count} free ports on {host}")


class ChildProcess:
    """A child in its own process group, with its output in a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()


def inferops_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "inferops", *args]


def wait_http_ok(
    url: str, *, timeout_s: float, child: ChildProcess, ready: str = "answer"
) -> httpx.Response:
    """Poll `url` until it answers 200, failing early (with the log) if the child died."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not child.running():
            raise DemoError(
                f"{child.name} exited with code {child.process.returncode} before it could "
                f"{ready}; last lines of {child.log_path}:\n{child.tail()}"
            )
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return response
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            last_error = type(error).__name__
        time.sleep(0.5)
    raise DemoError(
        f"{child.name} did not {ready} at {url} within {timeout_s:.0f} s ({last_error}); "
        f"last lines of {child.log_path}:\n{child.tail()}"
    )
