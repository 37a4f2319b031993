"""Test doubles of the alerting tests (not collected: no `test_` prefix).

`ScriptedSource` is a `collectors.MetricSource` that answers each (expression, time) with the
samples the test gave it, so rule semantics are tested without a store; `RecordingNotifier`
keeps what it was sent; `WebhookServer` is a real HTTP server on 127.0.0.1 that answers
scripted status codes and records every request; `throwaway_postgres` starts a PostgreSQL
server of its own."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from collectors import InstantSample, RangeSeries

FIXTURE = Path(__file__).parent / "fixtures" / "alertmanager-0.25-webhook.json"
"""A real Alertmanager 0.25 webhook body (route group_by [alertname], receiver 'webhook')."""


def sample(value: float, at_s: float = 0.0, **labels: str) -> InstantSample:
    return InstantSample(labels=labels, value=value, timestamp_s=at_s)


class ScriptedSource:
    """Answers `query(expr, at_s)` from a script; an exception in the script is raised."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, float], list[InstantSample] | Exception] = {}
        self.queries: list[tuple[str, float]] = []

    def script(
        self, expr: str, answers: Mapping[float, Sequence[InstantSample] | Exception]
    ) -> None:
        for at_s, answer in answers.items():
            self._answers[(expr, float(at_s))] = (
                answer if isinstance(answer, Exception) else list(answer)
            )

    def query(self, expr: str, at_s: float) -> list[InstantSample]:
        self.queries.append((expr, at_s))
        answer = self._answers.get((expr, float(at_s)), [])
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> list[RangeSeries]:
        raise NotImplementedError("the alert engine only runs instant queries")


class RecordingNotifier:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def notify(self, payload: Mapping[str, Any]) -> None:
        self.payloads.append(dict(payload))


class RaisingNotifier:
    def __init__(self) -> None:
        self.calls = 0

    def notify(self, payload: Mapping[str, Any]) -> None:
        self.calls += 1
        raise RuntimeError("this receiver is broken")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookServer:
    """Answers each POST with the next scripted status (then 200), after `delay_s` for
    the requests whose index is in `slow`."""

    statuses: list[int] = field(default_factory=list)
    slow: set[int] = field(default_factory=set)
    delay_s: float = 0.0
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/inferops"

    def start(self) -> WebhookServer:
        recorder = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with lock:
                    index = len(recorder.requests)
                    recorder.requests.append(
                        RecordedRequest("POST", self.path, dict(self.headers.items()), body)
                    )
                    status = recorder.statuses[index] if index < len(recorder.statuses) else 200
                if index in recorder.slow:
                    time.sleep(recorder.delay_s)
                answer = b'{"status":"ok"}' if status < 400 else b'{"error":"scripted"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a receiver that starts later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def running(server: WebhookServer) -> Iterator[WebhookServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server of its own in a temporary directory, for the length of the block;
    yields its SQLAlchemy URL. Raises `LookupError` when PostgreSQL cannot be started here."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise LookupError("PostgreSQL is not installed (initdb, pg_ctl)")
    prefix: list[str] = []
    directory = Path(tempfile.mkdtemp(prefix="inferops-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            shutil.rmtree(directory, ignore_errors=True)
            raise LookupError("running as root without a 'postgres' user to run PostgreSQL as")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    data = directory / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "inferops", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(directory / "log"),
             "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off",
             "start"],
            check=True, capture_output=True, timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(directory, ignore_errors=True)
        raise LookupError(f"PostgreSQL did not start: {error}") from None
    try:
        yield f"postgresql+psycopg://inferops@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True, timeout=60, check=False,
        )
        shutil.rmtree(directory, ignore_errors=True)
